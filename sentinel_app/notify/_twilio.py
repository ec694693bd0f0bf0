"""What the Twilio SMS and voice channels share: the async REST client and error mapping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from sentinel_app.notify.base import (
    ChannelDisabled,
    DeliveryResult,
    OutgoingMessage,
    classify_exception,
    classify_http_status,
    log_result,
)

TWILIO_API_BASE = "https://api.twilio.com"

# Error codes that mean "this number cannot be reached this way" rather than a transient or
# configuration problem: invalid number (21211, 21217, 21401, 13224), not SMS-capable (21614),
# unsubscribed by STOP (21610), unroutable (21612).
INVALID_NUMBER_CODES = frozenset({21211, 21217, 21401, 21610, 21612, 21614, 13224})


def classify_twilio_error(exc: TwilioRestException) -> DeliveryResult:
    """Map a Twilio REST error (HTTP status + Twilio code) to a delivery result."""
    code = exc.code
    provider_status = str(code) if code is not None else str(exc.status)
    error = f"Twilio {exc.status} {code or ''}: {exc.msg}".replace("  ", " ")
    if code in INVALID_NUMBER_CODES:
        return DeliveryResult.invalid_target(error, provider_status=provider_status)
    if code == 20429:
        return DeliveryResult.retry(error, provider_status=provider_status)
    return classify_http_status(int(exc.status), error, provider_status=provider_status)


class TwilioClientHolder:
    """A Twilio client with an aiohttp session per event loop, optionally aimed at another base URL."""

    def __init__(self, *, account_sid: str, auth_token: str, base_url: str | None = None) -> None:
        if not (account_sid and auth_token):
            raise ChannelDisabled("twilio", "account SID and auth token are required")
        # The Twilio client imports its REST API modules on first use, which took about a second:
        # here, when the registry is built, not inside the first send on the event loop.
        import twilio.rest.api.v2010.account  # noqa: F401

        self.account_sid = account_sid
        self._auth_token = auth_token
        self._base_url = base_url
        self._client: Any = None
        self._http: AsyncTwilioHttpClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        # aiohttp sessions belong to the loop that created them: build inside the running loop.
        self._http = AsyncTwilioHttpClient()
        client = Client(self.account_sid, self._auth_token, http_client=self._http)
        if self._base_url:
            client.api.base_url = self._base_url.rstrip("/")
            # Edge/region rewriting (TWILIO_EDGE/TWILIO_REGION) would mangle a custom host.
            client.edge = None
            client.region = None
        self._client, self._loop = client, loop
        return client

    async def aclose(self) -> None:
        http, self._http = self._http, None
        self._client = None
        self._loop = None
        if http is not None:
            await http.close()


async def deliver(
    kind: Any, message: OutgoingMessage, *, what: str, timeout: float, create: Callable[[], Awaitable[Any]]
) -> DeliveryResult:
    """Run one Twilio create call (message or call) and classify what happened."""
    try:
        async with asyncio.timeout(timeout):
            created = await create()
    except asyncio.CancelledError:
        raise
    except TwilioRestException as exc:
        result = classify_twilio_error(exc)
    except Exception as exc:
        result = classify_exception(exc, what=what)
    else:
        result = DeliveryResult.sent(created.sid or "", provider_status=str(created.status or ""))
    return log_result(kind, message, result)
