"""Twilio callbacks: signature verification, SMS reply codes and key presses."""

from __future__ import annotations

import pytest
from twilio.request_validator import HMAC_SHA256, RequestValidator

from sentinel_app.notify.base import ChannelKind, InboundRejected
from sentinel_app.notify.twilio_inbound import (
    is_valid_twilio_request,
    parse_gather,
    parse_inbound_sms,
    parse_sms_reply,
    sms_reply_twiml,
    verify_twilio_request,
    voice_reply_twiml,
)
from sentinel_app.notify.twilio_sms import ReplyCodes

AUTH_TOKEN = "12345678901234567890123456789012"
SMS_URL = "https://sentinel.example.com/api/v1/notify/twilio/sms"
GATHER_URL = "https://sentinel.example.com/api/v1/notify/twilio/voice/gather?alert_id=42&ref=3"

SMS_FORM = {
    "MessageSid": "SM" + "a" * 32,
    "AccountSid": "AC" + "b" * 32,
    "From": "+15555550100",
    "To": "+15555550199",
    "Body": "1r",
    "NumMedia": "0",
}
GATHER_FORM = {
    "CallSid": "CA" + "c" * 32,
    "From": "+15555550199",
    "To": "+15555550100",
    "Digits": "1",
    "CallStatus": "in-progress",
}


def twilio_signed(url: str, form: dict[str, str], *, algorithm: str | None = None) -> dict[str, str]:
    """Headers Twilio would send: the signature computed the way Twilio computes it."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form, algorithm)
    headers = {"X-Twilio-Signature": signature}
    if algorithm:
        headers["X-Twilio-Webhooks-Signature-Settings"] = f"key=sharedkey_1,algorithm={algorithm}"
    return headers


def test_valid_signature_is_accepted() -> None:
    headers = twilio_signed(SMS_URL, SMS_FORM)
    verify_twilio_request(AUTH_TOKEN, SMS_URL, SMS_FORM, headers)
    assert is_valid_twilio_request(AUTH_TOKEN, SMS_URL, SMS_FORM, {k.lower(): v for k, v in headers.items()})
    # HMAC-SHA256 when the settings header asks for it.
    verify_twilio_request(
        AUTH_TOKEN, SMS_URL, SMS_FORM, twilio_signed(SMS_URL, SMS_FORM, algorithm=HMAC_SHA256)
    )


@pytest.mark.parametrize(
    ("url", "form", "token"),
    [
        (SMS_URL, {**SMS_FORM, "Body": "1a"}, AUTH_TOKEN),  # body changed in transit
        (SMS_URL + "?x=1", SMS_FORM, AUTH_TOKEN),  # different URL
        (SMS_URL, SMS_FORM, "another-auth-token-0000000000000"),  # not our account
    ],
)
def test_invalid_signature_is_rejected(url: str, form: dict[str, str], token: str) -> None:
    headers = twilio_signed(SMS_URL, SMS_FORM)
    with pytest.raises(InboundRejected) as rejected:
        verify_twilio_request(token, url, form, headers)
    assert rejected.value.reason == "bad_signature"


def test_missing_signature_is_rejected() -> None:
    with pytest.raises(InboundRejected) as rejected:
        verify_twilio_request(AUTH_TOKEN, SMS_URL, SMS_FORM, {})
    assert rejected.value.reason == "missing_signature"


def test_sms_reply_1r_resolves() -> None:
    headers = twilio_signed(SMS_URL, SMS_FORM)
    verify_twilio_request(AUTH_TOKEN, SMS_URL, SMS_FORM, headers)
    intent = parse_inbound_sms(SMS_FORM)
    assert intent.intent == "resolve"
    assert intent.channel == ChannelKind.SMS
    assert intent.ref == "1"
    assert intent.actor == "+15555550100"
    assert intent.details["message_sid"] == SMS_FORM["MessageSid"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1a", ("acknowledge", "1")),
        (" 1A ", ("acknowledge", "1")),
        ("12 r", ("resolve", "12")),
        ("ack 7", ("acknowledge", "7")),
        ("Resolve", ("resolve", None)),
        ("e", ("escalate", None)),
        ("1a.", ("acknowledge", "1")),
        ("hello", None),
        ("1a2", None),
        ("", None),
        ("STOP", None),
    ],
)
def test_reply_code_parsing(text: str, expected: tuple[str, str | None] | None) -> None:
    assert parse_sms_reply(text) == expected


def test_custom_code_scheme() -> None:
    codes = ReplyCodes(acknowledge="k", resolve="x", escalate="z")
    assert parse_sms_reply("4k", codes) == ("acknowledge", "4")
    assert parse_sms_reply("4x", codes) == ("resolve", "4")
    assert parse_sms_reply("4a", codes) is None


def test_unknown_sms_is_rejected() -> None:
    with pytest.raises(InboundRejected) as rejected:
        parse_inbound_sms({**SMS_FORM, "Body": "who is this?"})
    assert rejected.value.reason == "unknown_reply"


def test_gather_digit_1_acknowledges() -> None:
    verify_twilio_request(AUTH_TOKEN, GATHER_URL, GATHER_FORM, twilio_signed(GATHER_URL, GATHER_FORM))
    intent = parse_gather(GATHER_FORM, GATHER_URL)
    assert intent.intent == "acknowledge"
    assert intent.channel == ChannelKind.VOICE
    assert intent.alert_id == 42 and intent.ref == "3"
    assert intent.actor == "+15555550100"  # the person we called
    assert intent.details == {"call_sid": GATHER_FORM["CallSid"], "digits": "1"}


def test_gather_other_digits() -> None:
    assert parse_gather({**GATHER_FORM, "Digits": "2"}, GATHER_URL).intent == "escalate"
    with pytest.raises(InboundRejected) as rejected:
        parse_gather({**GATHER_FORM, "Digits": "9"}, GATHER_URL)
    assert rejected.value.reason == "unknown_digit"
    # A tampered alert id in the action URL no longer matches Twilio's signature.
    tampered = GATHER_URL.replace("alert_id=42", "alert_id=43")
    with pytest.raises(InboundRejected):
        verify_twilio_request(AUTH_TOKEN, tampered, GATHER_FORM, twilio_signed(GATHER_URL, GATHER_FORM))


def test_reply_twiml() -> None:
    assert sms_reply_twiml("Resolved #42 <ok>") == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Resolved #42 &lt;ok&gt;</Message></Response>'
    )
    assert voice_reply_twiml("Acknowledged.") == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Acknowledged.</Say><Hangup /></Response>'
    )
