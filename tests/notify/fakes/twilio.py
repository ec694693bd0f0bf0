"""A fake Twilio REST API (2010-04-01): Messages.json and Calls.json with HTTP Basic auth.

Requests are form-encoded like Twilio's; answers are Twilio resources (201) or Twilio's
error JSON (`code`, `message`, `more_info`, `status`). `rules[To] = (status, code, message)`.
"""

from __future__ import annotations

import base64
import itertools
from email.utils import formatdate
from typing import Any

from tests.notify.fakes.http import FakeHTTPServer, Recorded, Reply


def twilio_error(status: int, code: int, message: str) -> Reply:
    return Reply(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class FakeTwilio(FakeHTTPServer):
    def __init__(self, *, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.rules: dict[str, tuple[int, int, str]] = {}
        self._ids = itertools.count(1)

    @property
    def base(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}"

    def handle(self, request: Recorded) -> Reply:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return twilio_error(401, 20003, "Authenticate")
        if request.method != "POST":
            return twilio_error(405, 20004, "Method not allowed")
        form = request.form()
        to = form.get("To", "")
        if request.path == f"{self.base}/Messages.json":
            if not (to and form.get("From") and form.get("Body")):
                return twilio_error(400, 21604, "A 'To' phone number, 'From' and 'Body' are required.")
            if to in self.rules:
                return twilio_error(*self.rules[to])
            return Reply(
                201, self._resource("SM", "Messages", form, {"body": form["Body"], "num_segments": "1"})
            )
        if request.path == f"{self.base}/Calls.json":
            if not (to and form.get("From") and (form.get("Twiml") or form.get("Url"))):
                return twilio_error(400, 21205, "Url or Twiml parameter is required.")
            if to in self.rules:
                return twilio_error(*self.rules[to])
            return Reply(201, self._resource("CA", "Calls", form, {"direction": "outbound-api"}))
        return twilio_error(404, 20404, "The requested resource was not found")

    def _resource(self, prefix: str, kind: str, form: dict[str, str], more: dict[str, Any]) -> dict[str, Any]:
        sid = f"{prefix}{next(self._ids):032x}"
        now = formatdate(usegmt=True)
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form.get("To"),
            "from": form.get("From"),
            "status": "queued",
            "date_created": now,
            "date_updated": now,
            "api_version": "2010-04-01",
            "uri": f"{self.base}/{kind}/{sid}.json",
            **more,
        }
