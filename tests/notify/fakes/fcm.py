"""A fake FCM HTTP v1 API with its own OAuth token endpoint.

`POST /token` takes the service account's JWT-bearer assertion (RS256, audience Google's token
endpoint, scope cloud-platform or firebase.messaging), verifies it with the public key and
issues an access token; `POST /v1/projects/<id>/messages:send` requires that token (unless
`anonymous`) and answers like FCM, with `FcmError` details for UNREGISTERED and friends.
"""

from __future__ import annotations

import itertools
from typing import Any

import jwt

from tests.notify.fakes.http import FakeHTTPServer, Recorded, Reply

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
# FCM v1 accepts either scope.
MESSAGING_SCOPES = frozenset(
    {"https://www.googleapis.com/auth/firebase.messaging", "https://www.googleapis.com/auth/cloud-platform"}
)

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def fcm_error(status: int, fcm_code: str | None = None, message: str = "error") -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if fcm_code:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
        ]
    return {"error": error}


class FakeFCM(FakeHTTPServer):
    def __init__(
        self, *, project_id: str, client_email: str = "", public_key_pem: bytes = b"", anonymous: bool = False
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.client_email = client_email
        self.public_key_pem = public_key_pem
        self.anonymous = anonymous
        # registration token → Reply (status, body, headers)
        self.rules: dict[str, Reply] = {}
        self.token_grants: list[dict[str, Any]] = []
        self.token_endpoint_status = 200
        self._issued: set[str] = set()
        self._ids = itertools.count(1000)

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def sends(self) -> list[Recorded]:
        return self.received(":send")

    def handle(self, request: Recorded) -> Reply:
        if request.path == "/token":
            return self._token(request)
        if request.path == f"/v1/projects/{self.project_id}/messages:send" and request.method == "POST":
            return self._send(request)
        return Reply(404, fcm_error(404, message="no such endpoint"))

    def _token(self, request: Recorded) -> Reply:
        if self.token_endpoint_status != 200:
            return Reply(self.token_endpoint_status, {"error": "temporarily_unavailable"})
        form = request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.public_key_pem,
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=self.client_email,
                options={"require": ["iat", "exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            return Reply(400, {"error": "invalid_grant", "error_description": str(exc)})
        if not MESSAGING_SCOPES & set(str(claims.get("scope", "")).split()):
            return Reply(400, {"error": "invalid_scope"})
        self.token_grants.append(claims)
        token = f"ya29.fake-{next(self._ids)}"
        self._issued.add(token)
        return Reply(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _send(self, request: Recorded) -> Reply:
        if not self.anonymous:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token not in self._issued:
                return Reply(401, fcm_error(401, message="Request had invalid authentication credentials."))
        message = request.json().get("message", {})
        target = message.get("token") or message.get("fid") or ""
        if target in self.rules:
            return self.rules[target]
        return Reply(200, {"name": f"projects/{self.project_id}/messages/{next(self._ids)}"})
