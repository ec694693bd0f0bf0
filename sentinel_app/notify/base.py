"""The contract every notification channel adapter follows, and how outcomes are classified.

An adapter turns one `OutgoingMessage` into one provider request and answers with one
`DeliveryResult`. `send` never raises for a delivery problem (only `asyncio.CancelledError`
passes through): network trouble, provider errors and bugs in a payload all come back as a
result the outbox dispatcher can act on without knowing the provider:

| status           | meaning                                   | dispatcher                        |
| ---------------- | ----------------------------------------- | --------------------------------- |
| `sent`           | the provider accepted it (`provider_id`)  | mark sent, store provider id      |
| `retry`          | 5xx, 429, timeout, connection error       | back off (`retry_after` if given) |
| `failed`         | permanent 4xx, bad config, disabled       | mark failed, keep `error`         |
| `invalid_target` | dead device token / unknown address       | mark failed, deactivate target    |
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from sentinel_app.models.notifications import Channel as ChannelKind
from sentinel_app.models.notifications import NotificationStatus

__all__ = [
    "INTENTS",
    "ChannelDisabled",
    "ChannelKind",
    "DeliveryResult",
    "DeliveryStatus",
    "DisabledChannel",
    "InboundIntent",
    "InboundRejected",
    "Intent",
    "OutgoingMessage",
    "classify_exception",
    "classify_http_status",
    "describe",
    "log_result",
    "parse_retry_after",
    "redact",
    "unbuildable",
]

logger = logging.getLogger("sentinel_app.notify")

DeliveryStatus = Literal["sent", "failed", "retry", "invalid_target"]
Intent = Literal["acknowledge", "resolve", "escalate"]
INTENTS: tuple[Intent, ...] = ("acknowledge", "resolve", "escalate")


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one target on one channel, as the dispatcher hands it to an adapter.

    `target` is the channel's address: a device token (apns/fcm), an E.164 phone number
    (sms/voice), an email address, a Slack channel or user id, or a webhook URL.
    `actions` maps an intent (`acknowledge`, `resolve`, `escalate`) to a signed link or an id.
    `extra` carries channel-specific options, see docs/notifications.md.
    """

    channel: ChannelKind
    target: str
    alert_id: int | None
    title: str
    body: str = ""
    severity: str = "critical"
    important: bool = False
    collapse_id: str | None = None
    actions: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def group_key(self) -> str:
        """The collapse / thread key: `collapse_id`, else one per alert."""
        if self.collapse_id:
            return self.collapse_id
        if self.alert_id is not None:
            return f"sentinel-alert-{self.alert_id}"
        return "sentinel"

    def to_payload(self) -> dict[str, Any]:
        """The JSON stored in `Notification.payload` (target, channel and importance live in columns)."""
        return {
            "alert_id": self.alert_id,
            "title": self.title,
            "body": self.body,
            "severity": self.severity,
            "collapse_id": self.collapse_id,
            "actions": dict(self.actions),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_payload(
        cls, channel: str, target: str, payload: Mapping[str, Any], *, important: bool = False
    ) -> OutgoingMessage:
        """Rebuild a message from an outbox row's columns and `payload` (inverse of `to_payload`)."""
        alert_id = payload.get("alert_id")
        return cls(
            channel=ChannelKind(channel),
            target=target,
            alert_id=int(alert_id) if alert_id is not None else None,
            title=str(payload.get("title") or ""),
            body=str(payload.get("body") or ""),
            severity=str(payload.get("severity") or "critical"),
            important=important,
            collapse_id=payload.get("collapse_id") or None,
            actions=dict(payload.get("actions") or {}),
            extra=dict(payload.get("extra") or {}),
        )


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one send.

    `permanent` is True when trying again cannot help (`failed`, `invalid_target`);
    `provider_status` is the provider's own code (e.g. `410 Unregistered`, `21211`,
    `channel_not_found`) for `Notification.provider_status`; `retry_after` is the provider's
    hint in seconds, when it gave one.
    """

    status: DeliveryStatus
    provider_id: str = ""
    error: str = ""
    permanent: bool = False
    provider_status: str = ""
    retry_after: float | None = None

    @classmethod
    def sent(cls, provider_id: str, provider_status: str = "") -> DeliveryResult:
        return cls("sent", provider_id=provider_id, provider_status=provider_status)

    @classmethod
    def retry(
        cls, error: str, *, provider_status: str = "", retry_after: float | None = None
    ) -> DeliveryResult:
        return cls("retry", error=error, provider_status=provider_status, retry_after=retry_after)

    @classmethod
    def failed(cls, error: str, *, provider_status: str = "") -> DeliveryResult:
        return cls("failed", error=error, permanent=True, provider_status=provider_status)

    @classmethod
    def invalid_target(cls, error: str, *, provider_status: str = "") -> DeliveryResult:
        return cls("invalid_target", error=error, permanent=True, provider_status=provider_status)

    @property
    def ok(self) -> bool:
        return self.status == "sent"

    @property
    def outbox_status(self) -> NotificationStatus | None:
        """The outbox row status this result leads to (None: schedule another attempt)."""
        if self.status == "sent":
            return NotificationStatus.SENT
        if self.status == "retry":
            return None
        return NotificationStatus.FAILED


@runtime_checkable
class Channel(Protocol):
    """A notification channel adapter: one thin module per provider."""

    kind: ChannelKind

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        """Deliver `message` once; never raises for delivery problems."""
        ...

    async def aclose(self) -> None:
        """Release connections and sessions."""
        ...


class ChannelDisabled(Exception):
    """A channel cannot work: credentials are missing or unusable. Never fatal for the app."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"{channel} disabled: {reason}")
        self.channel = channel
        self.reason = reason


class DisabledChannel:
    """Stands in for a channel that is not configured; every send fails permanently."""

    def __init__(self, kind: ChannelKind, reason: str) -> None:
        self.kind = kind
        self.reason = reason

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        return DeliveryResult.failed(
            f"channel {self.kind.value} is disabled: {self.reason}", provider_status="disabled"
        )

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class InboundIntent:
    """A person's answer that arrived through a channel (button, SMS reply, key press, link)."""

    intent: Intent
    channel: ChannelKind
    alert_id: int | None = None
    # The short per-person alert reference of SMS reply codes ("1" in "1a"); None if not given.
    ref: str | None = None
    # Who answered, in the channel's terms: phone number, Slack user id, user id from a link.
    actor: str = ""
    # Provider ids worth keeping: call/message SID, Slack channel/ts/response_url, link nonce.
    details: Mapping[str, str] = field(default_factory=dict)


class InboundRejected(Exception):
    """An inbound callback that must not be acted on; `reason` is machine-readable."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


# --- classification -------------------------------------------------------------------------

RETRYABLE_HTTP = frozenset({408, 425, 429})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta seconds or HTTP date), if usable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def classify_http_status(
    status: int,
    error: str,
    *,
    provider_status: str = "",
    retry_after: float | None = None,
    gone_is_invalid_target: bool = False,
) -> DeliveryResult:
    """An HTTP error status: 5xx/408/425/429 → retry, 410 → invalid_target if asked, other → failed."""
    code = provider_status or str(status)
    if status >= 500 or status in RETRYABLE_HTTP:
        return DeliveryResult.retry(error, provider_status=code, retry_after=retry_after)
    if status == 410 and gone_is_invalid_target:
        return DeliveryResult.invalid_target(error, provider_status=code)
    return DeliveryResult.failed(error, provider_status=code)


def _retryable_exception_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [TimeoutError, OSError, httpx.TransportError]
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp comes with twilio
        pass
    else:
        types += [aiohttp.ClientConnectionError, aiohttp.ClientPayloadError]
    return tuple(types)


_RETRYABLE_EXCEPTIONS = _retryable_exception_types()


def classify_exception(exc: BaseException, *, what: str = "send") -> DeliveryResult:
    """An exception raised while talking to a provider.

    Timeouts and connection errors → retry. Anything unexpected is also `retry`: the
    dispatcher's attempt limit bounds it, and dropping a page on an unknown error is worse.
    """
    if isinstance(exc, asyncio.CancelledError):  # pragma: no cover - callers re-raise first
        raise exc
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | httpx.TimeoutException):
        return DeliveryResult.retry(f"{what} timed out", provider_status="timeout")
    if isinstance(exc, _RETRYABLE_EXCEPTIONS):
        return DeliveryResult.retry(
            f"{what}: connection error: {describe(exc)}", provider_status="connection"
        )
    return DeliveryResult.retry(f"{what}: unexpected error: {describe(exc)}", provider_status="error")


def unbuildable(what: str, exc: BaseException) -> DeliveryResult:
    """The message could not even be built (bad field for this provider): retrying cannot help."""
    return DeliveryResult.failed(
        f"could not build the {what} request: {describe(exc)}", provider_status="bad_message"
    )


def describe(exc: BaseException) -> str:
    """`Type: message` of an exception, for `DeliveryResult.error`."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def redact(target: str) -> str:
    """A target shortened for logs (addresses and tokens are personal data / secrets)."""
    if len(target) <= 6:
        return "***"
    return f"…{target[-4:]}"


def log_result(kind: ChannelKind, message: OutgoingMessage, result: DeliveryResult) -> DeliveryResult:
    """Log a non-sent result once, at the adapter (the dispatcher logs attempts and state changes)."""
    if result.status != "sent":
        logger.warning(
            "notify %s to %s for alert %s: %s (%s) %s",
            kind.value,
            redact(message.target),
            message.alert_id,
            result.status,
            result.provider_status,
            result.error,
        )
    return result
