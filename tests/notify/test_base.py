"""The shared contract: messages, results and how errors are classified."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

import httpx
import pytest

from sentinel_app.models.notifications import NotificationStatus
from sentinel_app.notify import Channel, DisabledChannel
from sentinel_app.notify.base import (
    ChannelKind,
    DeliveryResult,
    OutgoingMessage,
    classify_exception,
    classify_http_status,
    parse_retry_after,
    redact,
)
from tests.notify.conftest import message


def test_payload_round_trip_and_group_key() -> None:
    original = message(ChannelKind.EMAIL, "a@example.com", important=True, extra={"alert_url": "https://x/1"})
    payload = original.to_payload()
    assert "target" not in payload and "important" not in payload  # outbox columns
    rebuilt = OutgoingMessage.from_payload("email", "a@example.com", payload, important=True)
    assert rebuilt == original
    assert original.group_key == "sentinel-alert-42"
    assert message(ChannelKind.EMAIL, "a", collapse_id="inc-1").group_key == "inc-1"
    assert message(ChannelKind.EMAIL, "a", alert_id=None).group_key == "sentinel"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (408, "retry"),
        (429, "retry"),
        (400, "failed"),
        (401, "failed"),
        (403, "failed"),
        (404, "failed"),
        (410, "failed"),
        (422, "failed"),
    ],
)
def test_http_status_classification(status: int, expected: str) -> None:
    result = classify_http_status(status, f"HTTP {status}")
    assert result.status == expected
    assert result.permanent is (expected != "retry")
    assert result.provider_status == str(status)


def test_gone_can_mean_invalid_target() -> None:
    assert classify_http_status(410, "gone", gone_is_invalid_target=True).status == "invalid_target"


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError(),
        TimeoutError(),
        ConnectionRefusedError(111, "Connection refused"),
        OSError(113, "No route to host"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        RuntimeError("something unexpected"),
    ],
)
def test_exceptions_are_retried(exc: BaseException) -> None:
    result = classify_exception(exc, what="X")
    assert result.status == "retry" and not result.permanent
    assert result.error.startswith("X")


def test_retry_after() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    seconds = parse_retry_after(format_datetime(later, usegmt=True))
    assert seconds is not None and 80 < seconds <= 90


def test_results_map_to_outbox_states() -> None:
    assert DeliveryResult.sent("id-1").outbox_status == NotificationStatus.SENT
    assert DeliveryResult.retry("later").outbox_status is None
    assert DeliveryResult.failed("no").outbox_status == NotificationStatus.FAILED
    assert DeliveryResult.invalid_target("dead").outbox_status == NotificationStatus.FAILED
    assert DeliveryResult.invalid_target("dead").permanent


@pytest.mark.asyncio
async def test_disabled_channel_fails_permanently() -> None:
    channel = DisabledChannel(ChannelKind.APNS, "not configured")
    assert isinstance(channel, Channel)
    result = await channel.send(message(ChannelKind.APNS, "token"))
    assert result.status == "failed" and result.permanent and result.provider_status == "disabled"
    assert "not configured" in result.error


def test_redact() -> None:
    assert redact("+15555550100") == "…0100"
    assert redact("abc") == "***"
