"""FCM adapter against a fake FCM v1 API with its own OAuth token endpoint."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from firebase_admin import credentials as fb_credentials
from google.auth.credentials import AnonymousCredentials

from sentinel_app.notify.base import ChannelDisabled, ChannelKind
from sentinel_app.notify.fcm import FCMChannel
from tests.notify.conftest import FCM_PROJECT, ServiceAccountKey, message
from tests.notify.fakes.fcm import MESSAGING_SCOPES, FakeFCM, fcm_error
from tests.notify.fakes.http import Reply, free_port

pytestmark = pytest.mark.asyncio

TOKEN = "fcm-registration-token-1"

ChannelFactory = Callable[..., FCMChannel]


@pytest_asyncio.fixture
async def make_channel(
    fcm_fake: FakeFCM, service_account_key: ServiceAccountKey
) -> AsyncIterator[ChannelFactory]:
    made: list[FCMChannel] = []

    def make(**overrides: object) -> FCMChannel:
        options: dict[str, object] = {"base_url": fcm_fake.url, "timeout": 5.0}
        options.update(overrides)
        channel = FCMChannel.from_service_account(service_account_key.info(fcm_fake.token_uri), **options)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.aclose()


async def test_message_request_and_oauth_token(make_channel: ChannelFactory, fcm_fake: FakeFCM) -> None:
    before = time.time()
    result = await make_channel().send(message(ChannelKind.FCM, TOKEN))

    assert result.status == "sent"
    assert result.provider_id.startswith(f"projects/{FCM_PROJECT}/messages/")
    # The service account exchanged a signed JWT for an access token at the loopback token_uri.
    (grant,) = fcm_fake.token_grants
    assert grant["iss"] == "sentinel-push@sentinel-test.iam.gserviceaccount.com"
    assert MESSAGING_SCOPES & set(grant["scope"].split())
    assert grant["iat"] >= int(before) - 1
    (send,) = fcm_fake.sends()
    assert send.path == f"/v1/projects/{FCM_PROJECT}/messages:send"
    assert send.headers["authorization"] == "Bearer ya29.fake-1000"
    assert send.headers["x-goog-api-format-version"] == "2"
    body = send.json()
    assert body == {
        "message": {
            "token": TOKEN,
            "data": {
                "alert_id": "42",
                "title": "Disk full on db-1",
                "body": "/var is 98% full",
                "severity": "critical",
                "important": "0",
                "collapse_id": "sentinel-alert-42",
                "category": "SENTINEL_ALERT",
                "channel_id": "sentinel_alerts",
                "actions": '{"acknowledge": "https://sentinel.example.com/api/v1/notify/act/ack-token", '
                '"resolve": "https://sentinel.example.com/api/v1/notify/act/res-token"}',
                "action_acknowledge": "https://sentinel.example.com/api/v1/notify/act/ack-token",
                "action_resolve": "https://sentinel.example.com/api/v1/notify/act/res-token",
            },
            "android": {
                "priority": "high",
                "collapse_key": "sentinel-alert-42",
                "ttl": "3600s",
                "notification": {
                    "title": "Disk full on db-1",
                    "body": "/var is 98% full",
                    "channel_id": "sentinel_alerts",
                    "tag": "sentinel-alert-42",
                    "notification_priority": "PRIORITY_HIGH",
                    "default_sound": True,
                    "visibility": "PUBLIC",
                },
            },
        }
    }


async def test_important_uses_critical_channel_and_token_is_reused(
    make_channel: ChannelFactory, fcm_fake: FakeFCM
) -> None:
    channel = make_channel()
    first = await channel.send(message(ChannelKind.FCM, TOKEN, important=True))
    second = await channel.send(message(ChannelKind.FCM, TOKEN, alert_id=43))

    assert first.status == second.status == "sent"
    assert len(fcm_fake.token_grants) == 1  # one OAuth token for both sends
    android = fcm_fake.sends()[0].json()["message"]["android"]
    assert android["notification"]["channel_id"] == "sentinel_critical"
    assert android["notification"]["notification_priority"] == "PRIORITY_MAX"
    assert fcm_fake.sends()[0].json()["message"]["data"]["important"] == "1"


@pytest.mark.parametrize(
    ("reply", "expected", "provider_status"),
    [
        (
            Reply(404, fcm_error(404, "UNREGISTERED", "Requested entity was not found.")),
            "invalid_target",
            "UNREGISTERED",
        ),
        (Reply(403, fcm_error(403, "SENDER_ID_MISMATCH")), "invalid_target", "SENDER_ID_MISMATCH"),
        (Reply(400, fcm_error(400, "INVALID_ARGUMENT", "bad payload")), "failed", "400 INVALID_ARGUMENT"),
        (Reply(500, fcm_error(500, "INTERNAL")), "retry", "500 INTERNAL"),
        (Reply(503, fcm_error(503, "UNAVAILABLE")), "retry", "503 UNAVAILABLE"),
        (Reply(429, fcm_error(429, "QUOTA_EXCEEDED"), {"Retry-After": "30"}), "retry", "429 QUOTA_EXCEEDED"),
    ],
)
async def test_error_answers_are_classified(
    make_channel: ChannelFactory, fcm_fake: FakeFCM, reply: Reply, expected: str, provider_status: str
) -> None:
    fcm_fake.rules[TOKEN] = reply
    result = await make_channel().send(message(ChannelKind.FCM, TOKEN))

    assert result.status == expected
    assert result.provider_status == provider_status
    assert result.permanent is (expected != "retry")
    assert len(fcm_fake.sends()) == 1  # the library did not retry on its own
    if provider_status.startswith("429"):
        assert result.retry_after == 30


async def test_unreachable_fcm_is_retry(service_account_key: ServiceAccountKey, fcm_fake: FakeFCM) -> None:
    channel = FCMChannel.from_service_account(
        service_account_key.info(fcm_fake.token_uri), base_url=f"http://127.0.0.1:{free_port()}", timeout=3.0
    )
    try:
        result = await channel.send(message(ChannelKind.FCM, TOKEN))
    finally:
        await channel.aclose()
    assert result.status == "retry"


async def test_token_endpoint_trouble(fcm_fake: FakeFCM, service_account_key: ServiceAccountKey) -> None:
    # Token endpoint unreachable → retry.
    info = service_account_key.info(f"http://127.0.0.1:{free_port()}/token")
    down = FCMChannel.from_service_account(info, base_url=fcm_fake.url, timeout=5.0)
    try:
        assert (await down.send(message(ChannelKind.FCM, TOKEN))).status == "retry"
    finally:
        await down.aclose()
    # A key the token endpoint does not accept (invalid_grant) → failed, nothing sent.
    other = ServiceAccountKey(
        service_account_key.private_pem, b"", "someone-else@example.iam.gserviceaccount.com"
    )
    rejected = FCMChannel.from_service_account(
        other.info(fcm_fake.token_uri), base_url=fcm_fake.url, timeout=5.0
    )
    try:
        result = await rejected.send(message(ChannelKind.FCM, TOKEN))
    finally:
        await rejected.aclose()
    assert result.status == "failed" and result.provider_status == "oauth"
    assert fcm_fake.sends() == []


async def test_anonymous_credentials(fcm_fake: FakeFCM) -> None:
    class Anonymous(fb_credentials.Base):
        def get_credential(self) -> AnonymousCredentials:
            return AnonymousCredentials()

    fcm_fake.anonymous = True
    channel = FCMChannel(credential=Anonymous(), project_id=FCM_PROJECT, base_url=fcm_fake.url)
    try:
        result = await channel.send(message(ChannelKind.FCM, TOKEN))
    finally:
        await channel.aclose()
    assert result.status == "sent"
    assert "authorization" not in fcm_fake.sends()[0].headers


async def test_unusable_credentials_disable() -> None:
    with pytest.raises(ChannelDisabled, match="unusable service-account"):
        FCMChannel.from_service_account({"type": "authorized_user"})
    with pytest.raises(ChannelDisabled, match="unusable service-account"):
        FCMChannel.from_service_account("/nonexistent/service-account.json")
