"""Twilio SMS and voice adapters against a fake Twilio REST API."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio

from sentinel_app.notify.base import ChannelKind
from sentinel_app.notify.twilio_sms import ReplyCodes, TwilioSMSChannel, build_sms_body
from sentinel_app.notify.twilio_voice import TwilioVoiceChannel
from tests.notify.conftest import TWILIO_SID, TWILIO_TOKEN, message
from tests.notify.fakes.http import free_port
from tests.notify.fakes.twilio import FakeTwilio

pytestmark = [
    pytest.mark.asyncio,
    # twilio's aiohttp client still uses aiohttp's deprecated BasicAuth; not ours to fix.
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

PHONE = "+15555550100"
FROM = "+15555550199"
STATUS_URL = "https://sentinel.example.com/api/v1/notify/twilio/status"
GATHER_URL = "https://sentinel.example.com/api/v1/notify/twilio/voice/gather"


@pytest_asyncio.fixture
async def sms(twilio_fake: FakeTwilio) -> AsyncIterator[TwilioSMSChannel]:
    channel = TwilioSMSChannel(
        account_sid=TWILIO_SID,
        auth_token=TWILIO_TOKEN,
        from_number=FROM,
        base_url=twilio_fake.url,
        status_callback=STATUS_URL,
    )
    yield channel
    await channel.aclose()


@pytest_asyncio.fixture
async def voice(twilio_fake: FakeTwilio) -> AsyncIterator[TwilioVoiceChannel]:
    channel = TwilioVoiceChannel(
        account_sid=TWILIO_SID,
        auth_token=TWILIO_TOKEN,
        from_number=FROM,
        gather_url=GATHER_URL,
        base_url=twilio_fake.url,
        status_callback=STATUS_URL,
    )
    yield channel
    await channel.aclose()


async def test_sms_form_fields_and_reply_codes(sms: TwilioSMSChannel, twilio_fake: FakeTwilio) -> None:
    result = await sms.send(message(ChannelKind.SMS, PHONE, extra={"reply_ref": "1"}))

    assert result.status == "sent" and result.provider_id.startswith("SM")
    assert result.provider_status == "queued"
    (request,) = twilio_fake.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert (
        request.headers["authorization"]
        == "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    )
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "To": PHONE,
        "From": FROM,
        "Body": "[CRITICAL] Disk full on db-1\n/var is 98% full\nReply 1a to ack, 1r to resolve",
        "StatusCallback": STATUS_URL,
    }


async def test_sms_body_scheme_and_length() -> None:
    codes = ReplyCodes(acknowledge="k", resolve="x")
    long_message = message(ChannelKind.SMS, PHONE, title="T" * 500, extra={"reply_ref": "12"})
    body = build_sms_body(long_message, codes=codes, max_length=160)
    assert len(body) <= 160
    assert body.endswith("\nReply 12k to ack, 12x to resolve")
    assert "…" in body
    # Without a ref the alert id is the reference; links only when asked for.
    linked = build_sms_body(message(ChannelKind.SMS, PHONE), include_links=True)
    assert "Reply 42a to ack, 42r to resolve" in linked
    assert linked.endswith("Ack: https://sentinel.example.com/api/v1/notify/act/ack-token")


async def test_voice_call_with_gather_twiml(voice: TwilioVoiceChannel, twilio_fake: FakeTwilio) -> None:
    result = await voice.send(message(ChannelKind.VOICE, PHONE, extra={"reply_ref": "3"}))

    assert result.status == "sent" and result.provider_id.startswith("CA")
    (request,) = twilio_fake.requests
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Calls.json"
    form = request.form()
    assert form["To"] == PHONE and form["From"] == FROM
    assert form["StatusCallback"] == STATUS_URL
    assert form["Timeout"] == "30"
    root = ET.fromstring(form["Twiml"])
    assert root.tag == "Response"
    gather = root.find("Gather")
    assert gather is not None
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["method"] == "POST"
    action = urlsplit(gather.attrib["action"])
    assert f"{action.scheme}://{action.netloc}{action.path}" == GATHER_URL
    assert parse_qs(action.query) == {"alert_id": ["42"], "ref": ["3"]}
    said = [say.text for say in gather.findall("Say")]
    assert said[:2] == [
        "Fangorn Sentinel alert. critical. Disk full on db-1. /var is 98% full",
        "Press 1 to acknowledge, 2 to escalate.",
    ]
    assert len(said) == 6  # read three times
    assert [child.tag for child in root][1:] == ["Say", "Hangup"]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ((400, 21211, "The 'To' number +15555550100 is not a valid phone number."), "invalid_target"),
        ((400, 21610, "Attempt to send to unsubscribed recipient"), "invalid_target"),
        ((400, 21606, "The 'From' phone number is not a valid, SMS-capable number"), "failed"),
        ((401, 20003, "Authenticate"), "failed"),
        ((429, 20429, "Too Many Requests"), "retry"),
        ((500, 20500, "Internal Server Error"), "retry"),
        ((503, 20503, "Service unavailable"), "retry"),
    ],
)
async def test_sms_errors_are_classified(
    sms: TwilioSMSChannel, twilio_fake: FakeTwilio, rule: tuple[int, int, str], expected: str
) -> None:
    twilio_fake.rules[PHONE] = rule
    result = await sms.send(message(ChannelKind.SMS, PHONE))
    assert result.status == expected
    assert result.provider_status == str(rule[1])
    assert result.permanent is (expected != "retry")


async def test_voice_invalid_number_and_wrong_credentials(
    twilio_fake: FakeTwilio, voice: TwilioVoiceChannel
) -> None:
    twilio_fake.rules[PHONE] = (400, 13224, "Invalid 'To' number")
    assert (await voice.send(message(ChannelKind.VOICE, PHONE))).status == "invalid_target"

    wrong = TwilioVoiceChannel(
        account_sid=TWILIO_SID,
        auth_token="wrong",
        from_number=FROM,
        gather_url=GATHER_URL,
        base_url=twilio_fake.url,
    )
    try:
        result = await wrong.send(message(ChannelKind.VOICE, "+15555550111"))
    finally:
        await wrong.aclose()
    assert result.status == "failed" and result.provider_status == "20003"


async def test_unreachable_twilio_is_retry() -> None:
    channel = TwilioSMSChannel(
        account_sid=TWILIO_SID,
        auth_token=TWILIO_TOKEN,
        from_number=FROM,
        base_url=f"http://127.0.0.1:{free_port()}",
    )
    try:
        result = await channel.send(message(ChannelKind.SMS, PHONE))
    finally:
        await channel.aclose()
    assert result.status == "retry" and result.provider_status == "connection"
