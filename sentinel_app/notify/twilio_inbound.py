"""Callbacks from Twilio: verify the request signature, then read SMS replies and key presses.

Twilio signs each webhook with the account auth token over the exact URL it requested plus the
sorted POST parameters (`X-Twilio-Signature`, HMAC-SHA1; HMAC-SHA256 when the request names it in
`X-Twilio-Webhooks-Signature-Settings`). Behind a proxy, rebuild the URL from the public base URL
(`settings.base_url` + path + query) — the URL the app sees locally would not verify.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from sentinel_app.notify.base import ChannelKind, InboundIntent, InboundRejected, Intent
from sentinel_app.notify.twilio_sms import DEFAULT_REPLY_CODES, ReplyCodes
from sentinel_app.notify.twilio_voice import DEFAULT_DIGITS

__all__ = [
    "GATHER_PATH",
    "SMS_PATH",
    "STATUS_PATH",
    "is_valid_twilio_request",
    "parse_gather",
    "parse_inbound_sms",
    "parse_sms_reply",
    "sms_reply_twiml",
    "verify_twilio_request",
    "voice_reply_twiml",
]

# Where the API is expected to mount the callbacks (relative to settings.base_url).
SMS_PATH = "/api/v1/notify/twilio/sms"
GATHER_PATH = "/api/v1/notify/twilio/voice/gather"
STATUS_PATH = "/api/v1/notify/twilio/status"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def is_valid_twilio_request(auth_token: str, url: str, params: Any, headers: Mapping[str, str]) -> bool:
    """Whether the request carries a valid Twilio signature for `url` and the form `params`."""
    signature = _header(headers, SIGNATURE_HEADER)
    if not signature or not auth_token:
        return False
    algorithm = get_signature_algorithm(_header(headers, SIGNATURE_SETTINGS_HEADER))
    return bool(RequestValidator(auth_token).validate(url, params, signature, algorithm))


def verify_twilio_request(auth_token: str, url: str, params: Any, headers: Mapping[str, str]) -> None:
    """Raise `InboundRejected` ("missing_signature" / "bad_signature") unless Twilio signed it."""
    if not _header(headers, SIGNATURE_HEADER):
        raise InboundRejected("missing_signature", "no X-Twilio-Signature header")
    if not is_valid_twilio_request(auth_token, url, params, headers):
        raise InboundRejected("bad_signature", "Twilio signature does not match")


def _first(params: Any, name: str) -> str:
    value = params.get(name, "") if hasattr(params, "get") else ""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value or "")


def parse_sms_reply(text: str, codes: ReplyCodes = DEFAULT_REPLY_CODES) -> tuple[Intent, str | None] | None:
    """(intent, ref) of a reply such as `1r` → ("resolve", "1"); None if it is not a reply code."""
    return codes.parse(text)


def parse_inbound_sms(params: Any, codes: ReplyCodes = DEFAULT_REPLY_CODES) -> InboundIntent:
    """An inbound SMS webhook's form → intent; `InboundRejected("unknown_reply")` otherwise.

    `ref` is the per-person reference the sender was given; resolve it to an alert with the
    sender number (`actor`). A reply without a number has `ref=None` ("the latest alert").
    """
    text = _first(params, "Body")
    parsed = codes.parse(text)
    if parsed is None:
        raise InboundRejected("unknown_reply", f"not a reply code: {text[:40]!r}")
    intent, ref = parsed
    return InboundIntent(
        intent=intent,
        channel=ChannelKind.SMS,
        ref=ref,
        actor=_first(params, "From"),
        details={"message_sid": _first(params, "MessageSid"), "to": _first(params, "To")},
    )


def parse_gather(params: Any, url: str, digits: Mapping[str, Intent] = DEFAULT_DIGITS) -> InboundIntent:
    """A `<Gather>` callback → intent; alert id and ref come from the (signed) action URL's query.

    On the outbound calls we place, Twilio's `To` is the person called.
    """
    pressed = _first(params, "Digits").strip()
    intent = digits.get(pressed)
    if intent is None:
        raise InboundRejected("unknown_digit", f"no action for digit {pressed!r}")
    query = parse_qs(urlsplit(url).query)
    alert_id_text = (query.get("alert_id") or [""])[0]
    alert_id = int(alert_id_text) if alert_id_text.isascii() and alert_id_text.isdigit() else None
    return InboundIntent(
        intent=intent,
        channel=ChannelKind.VOICE,
        alert_id=alert_id,
        ref=(query.get("ref") or [""])[0] or None,
        actor=_first(params, "To"),
        details={"call_sid": _first(params, "CallSid"), "digits": pressed},
    )


def sms_reply_twiml(text: str) -> str:
    """A `<Response><Message>` answering the sender of an inbound SMS."""
    response = MessagingResponse()
    response.message(text)
    return str(response)


def voice_reply_twiml(text: str) -> str:
    """A `<Response><Say>…</Say><Hangup/>` answering a key press."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)
