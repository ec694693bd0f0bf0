"""Apple Push Notification service over HTTP/2 with token (.p8 key) auth, through aioapns.

aioapns binds its connection pool to the event loop it was created in, so the client is built
lazily inside the running loop (and rebuilt if a different loop sends). Host and port are class
constants of aioapns' protocol; an override swaps in a subclass (used to reach a loopback fake).
APNs answers errors as results, not exceptions: `410 Unregistered`, `400 BadDeviceToken` and
`400 DeviceTokenNotForTopic` mean the device token is dead → `invalid_target`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.connection import (
    APNsDevelopmentClientProtocol,
    APNsProductionClientProtocol,
    APNsTLSClientProtocol,
)
from aioapns.exceptions import MaxAttemptsExceeded
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sentinel_app.notify.base import (
    ChannelDisabled,
    ChannelKind,
    DeliveryResult,
    OutgoingMessage,
    classify_exception,
    log_result,
    unbuildable,
)

__all__ = ["CATEGORY", "APNsChannel", "build_payload", "classify_apns"]

CATEGORY = "SENTINEL_ALERT"
"""The notification category the iOS app registers with Acknowledge and Resolve actions."""

CRITICAL_SOUND: Mapping[str, Any] = {"critical": 1, "name": "default", "volume": 1.0}

# Reasons that mean "this token will never work again for this app".
DEAD_TOKEN_REASONS = frozenset({"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic", "ExpiredToken"})
# Reasons worth another attempt even though the status is 4xx.
RETRY_REASONS = frozenset(
    {
        "ExpiredProviderToken",
        "TooManyProviderTokenUpdates",
        "TooManyRequests",
        "IdleTimeout",
        "Shutdown",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


def build_payload(message: OutgoingMessage, *, category: str = CATEGORY) -> dict[str, Any]:
    """The APNs JSON body for `message` (alert, category, thread, critical sound when important)."""
    aps: dict[str, Any] = {
        "alert": {"title": message.title, "body": message.body},
        "category": category,
        "thread-id": message.group_key,
        "mutable-content": 1,
    }
    if message.important:
        aps["interruption-level"] = "critical"
        aps["sound"] = dict(CRITICAL_SOUND)
    else:
        aps["interruption-level"] = "time-sensitive"
        aps["sound"] = "default"
    payload: dict[str, Any] = {
        "aps": aps,
        "alert_id": message.alert_id,
        "severity": message.severity,
        "actions": dict(message.actions),
    }
    if "status" in message.extra:
        payload["status"] = message.extra["status"]
    return payload


def classify_apns(result: NotificationResult) -> DeliveryResult:
    """Map an aioapns result (status code string + reason) to a delivery result."""
    status = str(result.status)
    reason = result.description or ""
    code = f"{status} {reason}".strip()
    if result.is_successful:
        return DeliveryResult.sent(result.notification_id, provider_status=status)
    error = f"APNs {code}"
    if status == "410" or reason in DEAD_TOKEN_REASONS:
        return DeliveryResult.invalid_target(error, provider_status=code)
    if reason in RETRY_REASONS or status in {"429", "500", "503"} or status.startswith("5"):
        return DeliveryResult.retry(error, provider_status=code)
    return DeliveryResult.failed(error, provider_status=code)


def _check_signing_key(key: str) -> None:
    """APNs token auth needs the EC P-256 key of a .p8 file; anything else disables the channel."""
    try:
        loaded = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ChannelDisabled("apns", "the key is not a PEM private key (.p8)") from exc
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ChannelDisabled("apns", "the key is not an EC (ES256) private key")


def loopback_protocol(host: str, port: int, *, use_sandbox: bool = False) -> type[APNsTLSClientProtocol]:
    """An aioapns protocol class that connects to `host:port` instead of Apple."""
    base: type[APNsTLSClientProtocol] = (
        APNsDevelopmentClientProtocol if use_sandbox else APNsProductionClientProtocol
    )
    return type("SentinelAPNsProtocol", (base,), {"APNS_SERVER": host, "APNS_PORT": port})


class APNsChannel:
    """Push to iOS devices. `target` is the hex device token."""

    kind = ChannelKind.APNS

    def __init__(
        self,
        *,
        key: str,
        key_id: str,
        team_id: str,
        topic: str,
        use_sandbox: bool = False,
        host: str | None = None,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        ttl_seconds: int | None = 3600,
        category: str = CATEGORY,
        max_connections: int = 4,
        max_connection_attempts: int = 2,
    ) -> None:
        if not (key and key_id and team_id and topic):
            raise ChannelDisabled("apns", "key, key id, team id and topic are all required")
        _check_signing_key(key)
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self.topic = topic
        self._use_sandbox = use_sandbox
        self._host = host
        self._port = port
        self._ssl_context = ssl_context
        self.timeout = timeout
        self._ttl = ttl_seconds
        self.category = category
        self._max_connections = max_connections
        self._max_attempts = max_connection_attempts
        self._client: APNs | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_key_file(cls, key_file: str | Path, **kwargs: Any) -> APNsChannel:
        """Read the .p8 signing key; an unreadable or non-PEM file disables the channel."""
        try:
            key = Path(key_file).read_text()
        except OSError as exc:
            raise ChannelDisabled("apns", f"cannot read key file {key_file}: {exc.strerror}") from exc
        return cls(key=key, **kwargs)

    def _get_client(self) -> APNs:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        if self._client is not None:
            with contextlib.suppress(Exception):  # its loop may be gone already
                self._client.pool.close()

        async def _quiet(request: NotificationRequest, result: NotificationResult) -> None:
            return None  # we log classified results ourselves

        client = APNs(
            key=self._key,
            key_id=self._key_id,
            team_id=self._team_id,
            topic=self.topic,
            use_sandbox=self._use_sandbox,
            ssl_context=self._ssl_context,
            max_connections=self._max_connections,
            max_connection_attempts=self._max_attempts,
            err_func=_quiet,
        )
        if self._host is not None or self._port is not None:
            base = client.pool.protocol_class
            client.pool.protocol_class = loopback_protocol(
                self._host or base.APNS_SERVER, self._port or base.APNS_PORT, use_sandbox=self._use_sandbox
            )
        self._client, self._loop = client, loop
        return client

    def build_request(self, message: OutgoingMessage) -> NotificationRequest:
        return NotificationRequest(
            device_token=message.target,
            message=build_payload(message, category=self.category),
            time_to_live=self._ttl,
            priority=10,
            collapse_key=message.group_key[:64],
            push_type=PushType.ALERT,
        )

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            request = self.build_request(message)
        except Exception as exc:
            return log_result(self.kind, message, unbuildable("APNs", exc))
        try:
            client = self._get_client()
            async with asyncio.timeout(self.timeout):
                response = await client.send_notification(request)
        except asyncio.CancelledError:
            raise
        except MaxAttemptsExceeded:
            result = DeliveryResult.retry(
                "APNs unreachable (connection attempts exhausted)", provider_status="connection"
            )
        except Exception as exc:
            result = classify_exception(exc, what="APNs")
        else:
            result = classify_apns(response)
        return log_result(self.kind, message, result)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        same_loop = self._loop is asyncio.get_running_loop()
        self._loop = None
        if client is None:
            return
        client.pool.close()
        if same_loop:
            # Let the TLS transports finish closing (connection_lost drops them from the pool).
            for _ in range(50):
                if not client.pool.connections:
                    break
                await asyncio.sleep(0.01)
