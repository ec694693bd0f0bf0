"""A fake Slack Web API: chat.postMessage, chat.update, conversations.open and response_url.

Every method answers HTTP 200 with `{"ok": false, "error": …}` on failure, like Slack
(`ratelimited` comes as HTTP 429 with `Retry-After`). `rules[channel] = error code`;
`next_status` forces one raw HTTP status (for 5xx).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from tests.notify.fakes.http import FakeHTTPServer, Recorded, Reply


class FakeSlack(FakeHTTPServer):
    def __init__(self, *, token: str) -> None:
        super().__init__()
        self.token = token
        self.rules: dict[str, str] = {}
        self.next_status: int | None = None
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.responses: list[dict[str, Any]] = []
        self._ts = itertools.count(100)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "T1/1/abc") -> str:
        return f"{self.url}/actions/{name}"

    @staticmethod
    def args(request: Recorded) -> dict[str, Any]:
        """Arguments as Slack reads them: query string, then a form or JSON body."""
        merged: dict[str, Any] = {key: values[0] for key, values in request.query.items()}
        if request.headers.get("content-type", "").startswith("application/json"):
            merged.update(json.loads(request.body or b"{}"))
        elif request.body:
            merged.update(request.form())
        return merged

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [self.args(r) for r in self.received(f"/api/{method}")]

    def handle(self, request: Recorded) -> Reply:
        if request.path.startswith("/actions/"):
            self.responses.append(json.loads(request.body))
            return Reply(200, "ok")
        if self.next_status is not None:
            status, self.next_status = self.next_status, None
            return Reply(status, "<html>upstream error</html>", {"Content-Type": "text/html"})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        args = self.args(request)
        method = request.path.removeprefix("/api/")
        channel = str(args.get("channel") or args.get("users") or "")
        error = self.rules.get(channel)
        if error == "ratelimited":
            return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"})
        if error:
            return Reply(200, {"ok": False, "error": error})
        if method == "conversations.open":
            return Reply(200, {"ok": True, "channel": {"id": "D" + channel[1:]}})
        if method == "chat.postMessage":
            if not channel:
                return Reply(200, {"ok": False, "error": "channel_not_found"})
            ts = f"1712345{next(self._ts)}.000100"
            self.messages[(channel, ts)] = args
            return Reply(
                200, {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text")}}
            )
        if method == "chat.update":
            key = (channel, str(args.get("ts")))
            if key not in self.messages:
                return Reply(200, {"ok": False, "error": "message_not_found"})
            self.messages[key] = args
            return Reply(200, {"ok": True, "channel": channel, "ts": key[1], "text": args.get("text")})
        return Reply(200, {"ok": False, "error": "unknown_method"})
