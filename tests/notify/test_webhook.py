"""Outgoing webhook adapter against a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from sentinel_app.notify.base import ChannelKind
from sentinel_app.notify.webhook import WebhookChannel, verify_signature, webhook_signing_secret
from tests.notify.conftest import message
from tests.notify.fakes.http import Reply, free_port
from tests.notify.fakes.webhook import FakeWebhookReceiver

pytestmark = pytest.mark.asyncio

SECRET = "whsec_test_secret"


@pytest_asyncio.fixture
async def webhook() -> AsyncIterator[WebhookChannel]:
    channel = WebhookChannel(secret=SECRET, timeout=2.0)
    yield channel
    await channel.aclose()


async def test_signed_json_post(webhook: WebhookChannel, webhook_receiver: FakeWebhookReceiver) -> None:
    before = int(time.time())
    msg = message(
        ChannelKind.WEBHOOK,
        webhook_receiver.hook_url,
        important=True,
        extra={"event": "alert.triggered", "delivery_id": "notif-77", "status": "firing"},
    )
    result = await webhook.send(msg)

    assert result.status == "sent" and result.provider_id == "notif-77"
    (request,) = webhook_receiver.requests
    assert request.method == "POST" and request.path == "/hooks/sentinel"
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "Fangorn-Sentinel-Webhook/1"
    assert headers["x-sentinel-event"] == "alert.triggered"
    assert headers["x-sentinel-delivery"] == "notif-77"
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert headers["x-sentinel-signature"] == expected
    assert verify_signature(SECRET, request.body, headers["x-sentinel-signature"])
    body = request.json()
    assert int(headers["x-sentinel-timestamp"]) == body["timestamp"]
    assert before <= body["timestamp"] <= time.time()
    assert body["sent_at"].endswith("Z")
    assert body["event"] == "alert.triggered" and body["delivery_id"] == "notif-77"
    assert body["alert"] == {
        "id": 42,
        "title": "Disk full on db-1",
        "body": "/var is 98% full",
        "severity": "critical",
        "important": True,
        "status": "firing",
    }
    assert body["actions"]["acknowledge"].endswith("/ack-token")


async def test_per_target_secret_and_chosen_events(
    webhook: WebhookChannel, webhook_receiver: FakeWebhookReceiver
) -> None:
    msg = message(
        ChannelKind.WEBHOOK,
        webhook_receiver.hook_url,
        extra={"event": "alert.resolved", "signing_secret": "per-target", "events": ["alert.resolved"]},
    )
    assert webhook.wants(msg)
    assert (await webhook.send(msg)).status == "sent"
    (request,) = webhook_receiver.requests
    assert verify_signature("per-target", request.body, request.headers["x-sentinel-signature"])
    assert not verify_signature(SECRET, request.body, request.headers["x-sentinel-signature"])

    # An event the target did not choose is not sent at all.
    unwanted = message(
        ChannelKind.WEBHOOK,
        webhook_receiver.hook_url,
        extra={"event": "alert.acknowledged", "events": ["alert.resolved"]},
    )
    assert not webhook.wants(unwanted)
    result = await webhook.send(unwanted)
    assert result.status == "failed" and result.provider_status == "not_subscribed"
    assert len(webhook_receiver.requests) == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(500, "boom"), "retry"),
        (Reply(502, "bad gateway"), "retry"),
        (Reply(429, "slow down", {"Retry-After": "12"}), "retry"),
        (Reply(408, "timeout"), "retry"),
        (Reply(410, "gone"), "invalid_target"),
        (Reply(404, "no such hook"), "failed"),
        (Reply(401, "unauthorized"), "failed"),
        (Reply(302, "", {"Location": "http://169.254.169.254/"}), "failed"),
    ],
)
async def test_answers_are_classified(
    webhook: WebhookChannel, webhook_receiver: FakeWebhookReceiver, reply: Reply, expected: str
) -> None:
    webhook_receiver.replies.append(reply)
    result = await webhook.send(message(ChannelKind.WEBHOOK, webhook_receiver.hook_url))
    assert result.status == expected
    assert result.provider_status == str(reply.status)
    assert len(webhook_receiver.requests) == 1  # redirects are not followed
    if reply.status == 429:
        assert result.retry_after == 12


async def test_timeout_and_unreachable_are_retry(webhook_receiver: FakeWebhookReceiver) -> None:
    channel = WebhookChannel(secret=SECRET, timeout=0.3)
    webhook_receiver.replies.append(Reply(200, "late", delay=1.0))
    try:
        slow = await channel.send(message(ChannelKind.WEBHOOK, webhook_receiver.hook_url))
        down = await channel.send(message(ChannelKind.WEBHOOK, f"http://127.0.0.1:{free_port()}/hook"))
    finally:
        await channel.aclose()
    assert slow.status == "retry" and slow.provider_status == "timeout"
    assert down.status == "retry" and down.provider_status == "connection"


async def test_non_http_target_is_invalid(webhook: WebhookChannel) -> None:
    result = await webhook.send(message(ChannelKind.WEBHOOK, "ftp://example.com/hook"))
    assert result.status == "invalid_target"


async def test_default_secret_is_derived_from_server_secret() -> None:
    first = webhook_signing_secret("server-secret")
    assert first == webhook_signing_secret("server-secret")
    assert first != webhook_signing_secret("other-secret")
    assert first.startswith("whsec_")
