"""Firebase Cloud Messaging (HTTP v1) through firebase-admin's messaging module.

One firebase-admin app per channel (named, so several can coexist). firebase-admin has no
emulator switch for messaging: `_point_service` is the one small function that touches its
internals — the send URL (to reach a loopback fake) and the async HTTP client (so that the
outbox dispatcher, not the library, owns retries and back-off). OAuth tokens are refreshed in a
worker thread before sending, because google-auth refreshes with blocking `requests` calls.
`UNREGISTERED` (404) and `SENDER_ID_MISMATCH` mean the registration token is dead → `invalid_target`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import firebase_admin
import google.auth.exceptions
import google.auth.transport.requests
from firebase_admin import credentials as fb_credentials
from firebase_admin import exceptions as fb_exceptions
from firebase_admin import messaging

from sentinel_app.notify.base import (
    ChannelDisabled,
    ChannelKind,
    DeliveryResult,
    OutgoingMessage,
    classify_exception,
    classify_http_status,
    describe,
    log_result,
    parse_retry_after,
    unbuildable,
)

__all__ = [
    "CRITICAL_CHANNEL_ID",
    "DEFAULT_CHANNEL_ID",
    "FCM_BASE_URL",
    "FCMChannel",
    "build_message",
    "classify_fcm_error",
]

FCM_BASE_URL = "https://fcm.googleapis.com"
CRITICAL_CHANNEL_ID = "sentinel_critical"
DEFAULT_CHANNEL_ID = "sentinel_alerts"
CATEGORY = "SENTINEL_ALERT"

_app_names = itertools.count(1)


def build_message(
    message: OutgoingMessage,
    *,
    ttl_seconds: int | None = 3600,
    critical_channel_id: str = CRITICAL_CHANNEL_ID,
    default_channel_id: str = DEFAULT_CHANNEL_ID,
) -> messaging.Message:
    """A high-priority Android message; alert id, actions and severity travel in `data`."""
    channel_id = critical_channel_id if message.important else default_channel_id
    data: dict[str, str] = {
        "alert_id": "" if message.alert_id is None else str(message.alert_id),
        "title": message.title,
        "body": message.body,
        "severity": message.severity,
        "important": "1" if message.important else "0",
        "collapse_id": message.group_key,
        "category": CATEGORY,
        "channel_id": channel_id,
        "actions": json.dumps(dict(message.actions), sort_keys=True),
    }
    for intent, value in message.actions.items():
        data[f"action_{intent}"] = value
    if "status" in message.extra:
        data["status"] = str(message.extra["status"])
    android = messaging.AndroidConfig(
        priority="high",
        collapse_key=message.group_key,
        ttl=ttl_seconds,
        notification=messaging.AndroidNotification(
            title=message.title,
            body=message.body,
            channel_id=channel_id,
            tag=message.group_key,
            priority="max" if message.important else "high",
            default_sound=True,
            visibility="public",
        ),
    )
    built = messaging.Message(data=data, android=android)
    # The stored address is an FCM registration token, which is what the v1 API's `token`
    # field means; set it after construction (the constructor warns about `token`).
    built.token = message.target
    return built


def classify_fcm_error(exc: BaseException) -> DeliveryResult:
    """Map a firebase-admin exception to a delivery result."""
    if isinstance(exc, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        code = "UNREGISTERED" if isinstance(exc, messaging.UnregisteredError) else "SENDER_ID_MISMATCH"
        return DeliveryResult.invalid_target(f"FCM {code}: {exc}", provider_status=code)
    if isinstance(exc, messaging.ThirdPartyAuthError):
        return DeliveryResult.failed(
            f"FCM THIRD_PARTY_AUTH_ERROR: {exc}", provider_status="THIRD_PARTY_AUTH_ERROR"
        )
    if isinstance(exc, fb_exceptions.FirebaseError):
        response = exc.http_response
        code = str(exc.code)
        if isinstance(exc, messaging.QuotaExceededError):
            code = "QUOTA_EXCEEDED"
        if response is not None:
            return classify_http_status(
                response.status_code,
                f"FCM {code}: {exc}",
                provider_status=f"{response.status_code} {code}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if isinstance(
            exc,
            fb_exceptions.InvalidArgumentError
            | fb_exceptions.PermissionDeniedError
            | fb_exceptions.UnauthenticatedError,
        ):
            return DeliveryResult.failed(f"FCM {code}: {exc}", provider_status=code)
        return DeliveryResult.retry(f"FCM {code}: {exc}", provider_status=code)
    return classify_exception(exc, what="FCM")


def _point_service(app: firebase_admin.App, *, base_url: str, timeout: float, retries: int) -> Any:
    """The only touch of firebase-admin internals: send URL and async HTTP client of `app`."""
    from firebase_admin import _http_client
    from firebase_admin._retry import HttpxRetry

    service = messaging._get_messaging_service(app)
    for attribute in ("_fcm_url", "_async_client", "_credential"):
        if not hasattr(service, attribute):  # pragma: no cover - guards a firebase-admin upgrade
            raise RuntimeError(f"firebase-admin changed: messaging service has no {attribute}")
    service._fcm_url = f"{base_url.rstrip('/')}/v1/projects/{app.project_id}/messages:send"
    service._async_client = _http_client.HttpxAsyncClient(
        credential=service._credential,
        timeout=timeout,
        retry_config=HttpxRetry(max_retries=retries, status_forcelist=[500, 503], backoff_factor=0.5),
    )
    return service


class FCMChannel:
    """Push to Android devices. `target` is the FCM registration token."""

    kind = ChannelKind.FCM

    def __init__(
        self,
        *,
        credential: fb_credentials.Base,
        project_id: str | None = None,
        base_url: str = FCM_BASE_URL,
        timeout: float = 10.0,
        library_retries: int = 0,
        ttl_seconds: int | None = 3600,
        critical_channel_id: str = CRITICAL_CHANNEL_ID,
        default_channel_id: str = DEFAULT_CHANNEL_ID,
    ) -> None:
        options: dict[str, Any] = {"httpTimeout": timeout}
        if project_id:
            options["projectId"] = project_id
        self._app = firebase_admin.initialize_app(
            credential, options=options, name=f"sentinel-fcm-{os.getpid()}-{next(_app_names)}"
        )
        if not self._app.project_id:
            firebase_admin.delete_app(self._app)
            raise ChannelDisabled(
                "fcm", "no project id (set SENTINEL_FCM_PROJECT_ID or use a service-account file)"
            )
        self.project_id: str = self._app.project_id
        self._base_url = base_url
        self.timeout = timeout
        self._retries = library_retries
        self._ttl = ttl_seconds
        self._critical_channel_id = critical_channel_id
        self._default_channel_id = default_channel_id
        self._service: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refresh_lock: asyncio.Lock | None = None
        self._closed = False

    @classmethod
    def from_service_account(cls, info: str | Path | Mapping[str, Any], **kwargs: Any) -> FCMChannel:
        """A channel from a service-account JSON file or dict; unusable ones disable the channel."""
        source = dict(info) if isinstance(info, Mapping) else str(info)
        try:
            credential = fb_credentials.Certificate(source)
        except (OSError, ValueError) as exc:
            raise ChannelDisabled("fcm", f"unusable service-account credentials: {describe(exc)}") from exc
        return cls(credential=credential, **kwargs)

    def build_message(self, message: OutgoingMessage) -> messaging.Message:
        return build_message(
            message,
            ttl_seconds=self._ttl,
            critical_channel_id=self._critical_channel_id,
            default_channel_id=self._default_channel_id,
        )

    async def _ready_service(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._service is None or self._loop is not loop:
            # httpx connection pools belong to one loop: a new loop gets a new client.
            self._service = _point_service(
                self._app, base_url=self._base_url, timeout=self.timeout, retries=self._retries
            )
            self._loop = loop
            self._refresh_lock = asyncio.Lock()
        credential = self._service._credential
        assert self._refresh_lock is not None
        async with self._refresh_lock:
            if not credential.valid:
                await asyncio.to_thread(credential.refresh, google.auth.transport.requests.Request())
        return self._service

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            built = self.build_message(message)
        except Exception as exc:
            return log_result(self.kind, message, unbuildable("FCM", exc))
        try:
            async with asyncio.timeout(self.timeout):
                await self._ready_service()
                batch = await messaging.send_each_async([built], app=self._app)
        except asyncio.CancelledError:
            raise
        except google.auth.exceptions.RefreshError as exc:
            retryable = bool(getattr(exc, "retryable", False))
            error = f"FCM OAuth token refresh failed: {exc}"
            result = (
                DeliveryResult.retry(error, provider_status="oauth")
                if retryable
                else DeliveryResult.failed(error, provider_status="oauth")
            )
        except google.auth.exceptions.TransportError as exc:
            result = DeliveryResult.retry(
                f"FCM OAuth token endpoint unreachable: {exc}", provider_status="oauth"
            )
        except fb_exceptions.FirebaseError as exc:
            result = classify_fcm_error(exc)
        except Exception as exc:
            result = classify_exception(exc, what="FCM")
        else:
            response = batch.responses[0]
            if response.success:
                result = DeliveryResult.sent(response.message_id or "")
            else:
                result = classify_fcm_error(response.exception or RuntimeError("FCM send failed"))
        return log_result(self.kind, message, result)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        service, self._service = self._service, None
        if service is not None:
            with contextlib.suppress(RuntimeError):  # a client bound to a loop that is gone
                await service._async_client.aclose()
        # delete_app closes services with asyncio.run(), which cannot run inside this loop.
        await asyncio.to_thread(firebase_admin.delete_app, self._app)
