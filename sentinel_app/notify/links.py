"""Signed, expiring, single-use action links for email and SMS ("Acknowledge", "Resolve").

A token is `v1.<alert>.<action>.<user>.<expiry>.<nonce>.<mac>`, where `mac` is an HMAC-SHA256
(key derived from the server secret) over everything before it. Verification checks the shape,
the MAC (constant time), then the expiry, and returns a `LinkIntent` or a `LinkRejection`.

Single use needs storage, so it is the caller's job: after a successful `verify`, record
`intent.nonce` atomically (e.g. INSERT into a table with a UNIQUE nonce column and
`expires_at`, so rows can be pruned after expiry); a conflict means the link was already used.
`verify(..., is_used=...)` can run the lookup for a friendlier early answer, but only the
atomic insert is authoritative.

Mail scanners open links in emails: serve GET with a confirmation page and act on POST only.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from sentinel_app.notify.base import ChannelKind, InboundIntent, Intent

__all__ = ["LINK_PATH", "ActionLinks", "LinkIntent", "LinkRejection", "SignedLink"]

LINK_PATH = "/api/v1/notify/act"
DEFAULT_TTL = dt.timedelta(hours=12)
_CODES: Mapping[Intent, str] = {"acknowledge": "a", "resolve": "r", "escalate": "e"}
_INTENTS: Mapping[str, Intent] = {code: intent for intent, code in _CODES.items()}
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_MAC = re.compile(r"[A-Za-z0-9_-]{43}")
_NUMBER = re.compile(r"[0-9]{1,18}")

RejectionReason = Literal["malformed", "bad_signature", "expired", "already_used"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class SignedLink:
    url: str
    token: str
    alert_id: int
    intent: Intent
    nonce: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class LinkIntent:
    """A valid link: who may do what to which alert; record `nonce` to make it single-use."""

    alert_id: int
    intent: Intent
    user_id: int | None
    nonce: str
    expires_at: dt.datetime

    def as_inbound(self, channel: ChannelKind = ChannelKind.EMAIL) -> InboundIntent:
        return InboundIntent(
            intent=self.intent,
            channel=channel,
            alert_id=self.alert_id,
            actor="" if self.user_id is None else str(self.user_id),
            details={"nonce": self.nonce},
        )


@dataclass(frozen=True)
class LinkRejection:
    reason: RejectionReason


class ActionLinks:
    """Makes and checks action links under `base_url` + `path`."""

    def __init__(
        self, secret: str, base_url: str, *, path: str = LINK_PATH, ttl: dt.timedelta = DEFAULT_TTL
    ) -> None:
        if not secret:
            raise ValueError("a server secret is required to sign links")
        self._key = hmac.new(secret.encode(), b"sentinel/action-link/v1", hashlib.sha256).digest()
        self.base_url = base_url.rstrip("/")
        self.path = "/" + path.strip("/")
        self.ttl = ttl

    def _mac(self, signed: str) -> str:
        return _b64(hmac.new(self._key, signed.encode(), hashlib.sha256).digest())

    def make(
        self,
        alert_id: int,
        intent: Intent,
        *,
        now: dt.datetime,
        user_id: int | None = None,
        ttl: dt.timedelta | None = None,
    ) -> SignedLink:
        """A fresh link (new nonce) valid until `now + ttl`."""
        if intent not in _CODES:
            raise ValueError(f"unknown link action {intent!r}")
        expires_at = (now + (ttl or self.ttl)).astimezone(dt.UTC).replace(microsecond=0)
        nonce = secrets.token_urlsafe(16)
        user = "-" if user_id is None else str(int(user_id))
        signed = f"v1.{int(alert_id)}.{_CODES[intent]}.{user}.{int(expires_at.timestamp())}.{nonce}"
        token = f"{signed}.{self._mac(signed)}"
        return SignedLink(
            url=f"{self.base_url}{self.path}/{token}",
            token=token,
            alert_id=int(alert_id),
            intent=intent,
            nonce=nonce,
            expires_at=expires_at,
        )

    def actions_for(
        self,
        alert_id: int,
        *,
        now: dt.datetime,
        user_id: int | None = None,
        intents: Iterable[Intent] = ("acknowledge", "resolve"),
    ) -> dict[str, str]:
        """`{"acknowledge": url, "resolve": url}` for `OutgoingMessage.actions`."""
        return {intent: self.make(alert_id, intent, now=now, user_id=user_id).url for intent in intents}

    def verify(
        self, token: str, *, now: dt.datetime, is_used: Callable[[str], bool] | None = None
    ) -> LinkIntent | LinkRejection:
        """The link's intent, or why it is refused: malformed, bad_signature, expired, already_used."""
        token = token.strip().rsplit("/", 1)[-1]
        parts = token.split(".")
        if len(parts) != 7 or parts[0] != "v1":
            return LinkRejection("malformed")
        _, alert_text, code, user_text, expiry_text, nonce, mac = parts
        if (
            not _NUMBER.fullmatch(alert_text)
            or code not in _INTENTS
            or not (user_text == "-" or _NUMBER.fullmatch(user_text))
            or not _NUMBER.fullmatch(expiry_text)
            or not _NONCE.fullmatch(nonce)
            or not _MAC.fullmatch(mac)
        ):
            return LinkRejection("malformed")
        signed = token.rsplit(".", 1)[0]
        if not hmac.compare_digest(self._mac(signed), mac):
            return LinkRejection("bad_signature")
        expires_at = dt.datetime.fromtimestamp(int(expiry_text), dt.UTC)
        if now >= expires_at:
            return LinkRejection("expired")
        if is_used is not None and is_used(nonce):
            return LinkRejection("already_used")
        return LinkIntent(
            alert_id=int(alert_text),
            intent=_INTENTS[code],
            user_id=None if user_text == "-" else int(user_text),
            nonce=nonce,
            expires_at=expires_at,
        )
