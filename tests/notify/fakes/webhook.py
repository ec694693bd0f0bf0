"""A webhook receiver: records deliveries, answers from a queue of replies (default 200)."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection

from tests.notify.fakes.http import FakeHTTPServer, Recorded, Reply

HOOK_PATH = "/hooks/sentinel"


class FakeWebhookReceiver(FakeHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.replies: deque[Reply] = deque()

    @property
    def hook_url(self) -> str:
        return f"{self.url}{HOOK_PATH}"

    def handle(self, request: Recorded) -> Reply:
        if self.replies:
            return self.replies.popleft()
        return Reply(200, {"received": True})

    def deliveries(self, ids: Collection[str] | None = None) -> dict[str, list[float]]:
        """Arrival times (`time.monotonic()`) by `X-Sentinel-Delivery` id, of `ids` or of all."""
        wanted = set(ids) if ids is not None else None
        arrivals: dict[str, list[float]] = {}
        for request in self.received():
            delivery = request.headers.get("x-sentinel-delivery", "")
            if wanted is None or delivery in wanted:
                arrivals.setdefault(delivery, []).append(request.at)
        return arrivals
