"""APNs adapter against an HTTP/2 TLS fake: exact request, JWT, payload, and error mapping."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import jwt
import pytest
import pytest_asyncio

from sentinel_app.notify.apns import APNsChannel
from sentinel_app.notify.base import ChannelDisabled, ChannelKind
from tests.notify.conftest import APNsKey, message
from tests.notify.fakes.apns import FakeAPNs
from tests.notify.fakes.http import free_port
from tests.notify.fakes.tls import LoopbackTLS

pytestmark = pytest.mark.asyncio

TOKEN = "a" * 64

ChannelFactory = Callable[..., APNsChannel]


@pytest_asyncio.fixture
async def make_channel(
    apns_fake: FakeAPNs, apns_key: APNsKey, loopback_tls: LoopbackTLS
) -> AsyncIterator[ChannelFactory]:
    made: list[APNsChannel] = []

    def make(**overrides: object) -> APNsChannel:
        options: dict[str, object] = {
            "key_id": apns_key.key_id,
            "team_id": apns_key.team_id,
            "topic": apns_key.topic,
            "host": apns_fake.host,
            "port": apns_fake.port,
            "ssl_context": loopback_tls.client_context(),
        }
        options.update(overrides)
        channel = APNsChannel.from_key_file(apns_key.key_file, **options)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.aclose()


async def test_alert_request_headers_jwt_and_payload(
    make_channel: ChannelFactory, apns_fake: FakeAPNs, apns_key: APNsKey
) -> None:
    before = int(time.time())
    result = await make_channel().send(message(ChannelKind.APNS, TOKEN))

    assert result.status == "sent" and not result.permanent
    (request,) = apns_fake.requests
    headers = request.headers
    assert headers[":method"] == "POST"
    assert headers[":path"] == f"/3/device/{TOKEN}"
    assert headers["apns-id"] == result.provider_id  # echoed by APNs
    assert headers["apns-topic"] == apns_key.topic
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-collapse-id"] == "sentinel-alert-42"
    assert before + 3600 <= int(headers["apns-expiration"]) <= int(time.time()) + 3600
    # ES256 provider token: kid = key id, iss = team id, verified with the public key.
    encoded = headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(encoded) == {"alg": "ES256", "kid": apns_key.key_id, "typ": "JWT"}
    claims = jwt.decode(encoded, apns_key.public_pem, algorithms=["ES256"])
    assert claims["iss"] == apns_key.team_id and before - 1 <= claims["iat"] <= time.time()
    assert request.body == {
        "aps": {
            "alert": {"title": "Disk full on db-1", "body": "/var is 98% full"},
            "category": "SENTINEL_ALERT",
            "thread-id": "sentinel-alert-42",
            "mutable-content": 1,
            "interruption-level": "time-sensitive",
            "sound": "default",
        },
        "alert_id": 42,
        "severity": "critical",
        "actions": {
            "acknowledge": "https://sentinel.example.com/api/v1/notify/act/ack-token",
            "resolve": "https://sentinel.example.com/api/v1/notify/act/res-token",
        },
    }


async def test_important_alert_is_critical_with_critical_sound(
    make_channel: ChannelFactory, apns_fake: FakeAPNs
) -> None:
    msg = message(ChannelKind.APNS, TOKEN, important=True, collapse_id="incident-7")
    result = await make_channel().send(msg)

    assert result.status == "sent"
    (request,) = apns_fake.requests
    aps = request.body["aps"]
    assert aps["interruption-level"] == "critical"
    assert aps["sound"] == {"critical": 1, "name": "default", "volume": 1.0}
    assert request.headers["apns-collapse-id"] == "incident-7"


async def test_one_connection_serves_several_sends(make_channel: ChannelFactory, apns_fake: FakeAPNs) -> None:
    channel = make_channel()
    results = [await channel.send(message(ChannelKind.APNS, TOKEN, alert_id=i)) for i in range(3)]
    assert [r.status for r in results] == ["sent"] * 3
    assert len({r.provider_id for r in results}) == 3
    assert [r.body["alert_id"] for r in apns_fake.requests] == [0, 1, 2]


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (410, "Unregistered", "invalid_target"),
        (400, "BadDeviceToken", "invalid_target"),
        (400, "DeviceTokenNotForTopic", "invalid_target"),
        (400, "BadCollapseId", "failed"),
        (413, "PayloadTooLarge", "failed"),
        (429, "TooManyRequests", "retry"),
        (500, "InternalServerError", "retry"),
        (503, "ServiceUnavailable", "retry"),
    ],
)
async def test_error_answers_are_classified(
    make_channel: ChannelFactory, apns_fake: FakeAPNs, status: int, reason: str, expected: str
) -> None:
    apns_fake.rules[TOKEN] = (status, reason)
    result = await make_channel().send(message(ChannelKind.APNS, TOKEN))

    assert result.status == expected
    assert result.provider_status == f"{status} {reason}"
    assert result.permanent is (expected != "retry")
    assert apns_fake.requests[0].answered == status


async def test_wrong_key_id_is_rejected_by_apns_and_fails(
    make_channel: ChannelFactory, apns_fake: FakeAPNs
) -> None:
    result = await make_channel(key_id="OTHERKEY99").send(message(ChannelKind.APNS, TOKEN))
    assert result.status == "failed"
    assert result.provider_status == "403 InvalidProviderToken"


async def test_unreachable_host_is_retry(apns_key: APNsKey, loopback_tls: LoopbackTLS) -> None:
    channel = APNsChannel.from_key_file(
        apns_key.key_file,
        key_id=apns_key.key_id,
        team_id=apns_key.team_id,
        topic=apns_key.topic,
        host="127.0.0.1",
        port=free_port(),
        ssl_context=loopback_tls.client_context(),
        timeout=0.5,
        max_connection_attempts=1,
    )
    try:
        result = await channel.send(message(ChannelKind.APNS, TOKEN))
    finally:
        await channel.aclose()
    assert result.status == "retry" and not result.permanent


async def test_missing_or_bad_key_disables(apns_key: APNsKey) -> None:
    with pytest.raises(ChannelDisabled, match="cannot read key file"):
        APNsChannel.from_key_file("/nonexistent/AuthKey.p8", key_id="K", team_id="T", topic="t")
    with pytest.raises(ChannelDisabled, match="required"):
        APNsChannel(key=apns_key.private_pem, key_id="", team_id="T", topic="t")
    with pytest.raises(ChannelDisabled, match="not a PEM"):
        APNsChannel(key="not a key", key_id="K", team_id="T", topic="t")
