"""Slack interactivity callbacks: signature and freshness checks, then button parsing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from sentinel_app.notify.base import ChannelKind, InboundRejected
from sentinel_app.notify.slack_inbound import parse_interaction, verify_slack_request

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_712_345_678


def block_actions(action_id: str = "sentinel_acknowledge", value: str = "42") -> dict[str, Any]:
    """The `payload` Slack posts when someone presses one of our buttons."""
    return {
        "type": "block_actions",
        "user": {"id": "U0RESPONDER", "username": "ada", "team_id": "T0TEAM"},
        "team": {"id": "T0TEAM", "domain": "example"},
        "channel": {"id": "C0123ALERTS", "name": "alerts"},
        "container": {"type": "message", "message_ts": "1712345100.000100", "channel_id": "C0123ALERTS"},
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/abc",
        "trigger_id": "1.2.3",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "sentinel_alert_actions",
                "value": value,
                "action_ts": "1712345678.000200",
            }
        ],
    }


def signed(
    payload: dict[str, Any], *, timestamp: int = NOW, secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    """Body and headers exactly as Slack sends and signs them."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
    }


def test_signed_acknowledge_parses() -> None:
    body, headers = signed(block_actions())
    intent = parse_interaction(SECRET, body, headers, now=NOW + 10)
    assert intent.intent == "acknowledge"
    assert intent.channel == ChannelKind.SLACK
    assert intent.alert_id == 42
    assert intent.actor == "U0RESPONDER"
    assert intent.details == {
        "team_id": "T0TEAM",
        "channel_id": "C0123ALERTS",
        "message_ts": "1712345100.000100",
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/abc",
        "action_id": "sentinel_acknowledge",
    }


def test_resolve_button_and_real_clock() -> None:
    body, headers = signed(block_actions("sentinel_resolve", "7"), timestamp=int(time.time()))
    intent = parse_interaction(SECRET, body, {k.lower(): v for k, v in headers.items()})
    assert (intent.intent, intent.alert_id) == ("resolve", 7)


@pytest.mark.parametrize(
    ("timestamp", "now"),
    [(NOW - 301, NOW), (NOW - 3600, NOW), (NOW + 400, NOW)],
)
def test_stale_or_future_timestamp_is_rejected(timestamp: int, now: int) -> None:
    body, headers = signed(block_actions(), timestamp=timestamp)  # correctly signed, but a replay
    with pytest.raises(InboundRejected) as rejected:
        parse_interaction(SECRET, body, headers, now=now)
    assert rejected.value.reason == "stale_timestamp"


def test_bad_signatures_are_rejected() -> None:
    body, headers = signed(block_actions(), secret="not-our-signing-secret")
    with pytest.raises(InboundRejected) as rejected:
        parse_interaction(SECRET, body, headers, now=NOW)
    assert rejected.value.reason == "bad_signature"

    body, headers = signed(block_actions())
    tampered = body.replace(b"42", b"43")
    with pytest.raises(InboundRejected) as rejected:
        parse_interaction(SECRET, tampered, headers, now=NOW)
    assert rejected.value.reason == "bad_signature"

    with pytest.raises(InboundRejected) as rejected:
        verify_slack_request(SECRET, body, {"X-Slack-Request-Timestamp": str(NOW)}, now=NOW)
    assert rejected.value.reason == "missing_signature"

    with pytest.raises(InboundRejected) as rejected:
        verify_slack_request(SECRET, body, {**headers, "X-Slack-Request-Timestamp": "soon"}, now=NOW)
    assert rejected.value.reason == "stale_timestamp"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({**block_actions(), "type": "view_submission"}, "not_an_alert_action"),
        (block_actions("someone_elses_button"), "not_an_alert_action"),
        (block_actions(value="DROP TABLE"), "not_an_alert_action"),
        ({**block_actions(), "actions": []}, "not_an_alert_action"),
    ],
)
def test_other_interactions_are_not_alert_actions(payload: dict[str, Any], reason: str) -> None:
    body, headers = signed(payload)
    with pytest.raises(InboundRejected) as rejected:
        parse_interaction(SECRET, body, headers, now=NOW)
    assert rejected.value.reason == reason


def test_malformed_body_is_rejected_after_signature() -> None:
    body = b"payload=%7Bnot-json"
    base = f"v0:{NOW}:".encode() + body
    headers = {
        "X-Slack-Request-Timestamp": str(NOW),
        "X-Slack-Signature": "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest(),
    }
    with pytest.raises(InboundRejected) as rejected:
        parse_interaction(SECRET, body, headers, now=NOW)
    assert rejected.value.reason == "malformed"
