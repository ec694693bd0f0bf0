"""A webhook receiver: records deliveries, answers from a queue of replies (default 200)."""

from __future__ import annotations

from collections import deque

from tests.notify.fakes.http import FakeHTTPServer, Recorded, Reply


class FakeWebhookReceiver(FakeHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.replies: deque[Reply] = deque()

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hooks/sentinel"

    def handle(self, request: Recorded) -> Reply:
        if self.replies:
            return self.replies.popleft()
        return Reply(200, {"received": True})
