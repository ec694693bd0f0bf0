"""Slack interactivity callbacks: verify the signature, then read which alert button was pressed.

Slack posts `application/x-www-form-urlencoded` with one field, `payload` (JSON), and signs
`v0:<timestamp>:<raw body>` with the app's signing secret (`X-Slack-Signature`,
`X-Slack-Request-Timestamp`). Requests older than 5 minutes are replays and are rejected.
Verify the raw body bytes exactly as received, before parsing anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from sentinel_app.notify.base import ChannelKind, InboundIntent, InboundRejected, Intent
from sentinel_app.notify.slack import ACK_ACTION_ID, RESOLVE_ACTION_ID

__all__ = ["ACTIONS_PATH", "MAX_AGE_SECONDS", "parse_interaction", "verify_slack_request"]

ACTIONS_PATH = "/api/v1/notify/slack/actions"
MAX_AGE_SECONDS = 5 * 60
ACTION_INTENTS: Mapping[str, Intent] = {ACK_ACTION_ID: "acknowledge", RESOLVE_ACTION_ID: "resolve"}


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _section(payload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def verify_slack_request(
    signing_secret: str, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> None:
    """Raise `InboundRejected` unless Slack signed `body` within the last 5 minutes.

    Reasons: `missing_signature`, `stale_timestamp` (older or further in the future than
    5 minutes, or not a number), `bad_signature`.
    """
    clock_now = time.time() if now is None else now
    timestamp = _header(headers, "X-Slack-Request-Timestamp")
    signature = _header(headers, "X-Slack-Signature")
    if not timestamp or not signature:
        raise InboundRejected("missing_signature", "no Slack signature headers")
    try:
        age = abs(clock_now - int(timestamp))
    except ValueError:
        raise InboundRejected("stale_timestamp", "Slack timestamp is not a number") from None
    if age > MAX_AGE_SECONDS:
        raise InboundRejected("stale_timestamp", f"Slack request is {int(age)} s old")
    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(clock_now))
    if not verifier.is_valid_request(body, dict(headers)):
        raise InboundRejected("bad_signature", "Slack signature does not match")


def parse_interaction(
    signing_secret: str, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> InboundIntent:
    """A verified `block_actions` callback for one of our buttons → intent.

    `actor` is the Slack user id (map it to a Sentinel user); `details` has `team_id`,
    `channel_id`, `message_ts`, `response_url` (answer there, e.g. `SlackChannel.respond`) and
    `action_id`. Other reasons: `malformed`, `not_an_alert_action`.
    """
    verify_slack_request(signing_secret, body, headers, now=now)
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload: Any = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise InboundRejected("malformed", "no JSON payload field") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise InboundRejected("not_an_alert_action", "not a block_actions callback")
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    intent = ACTION_INTENTS.get(str(action.get("action_id", "")))
    value = str(action.get("value", ""))
    if intent is None or not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise InboundRejected("not_an_alert_action", "not one of Sentinel's alert buttons")
    user = _section(payload, "user")
    team = _section(payload, "team")
    channel = _section(payload, "channel")
    container = _section(payload, "container")
    return InboundIntent(
        intent=intent,
        channel=ChannelKind.SLACK,
        alert_id=int(value),
        actor=str(user.get("id", "")),
        details={
            "team_id": str(team.get("id", "") or user.get("team_id", "")),
            "channel_id": str(channel.get("id", "") or container.get("channel_id", "")),
            "message_ts": str(container.get("message_ts", "")),
            "response_url": str(payload.get("response_url", "")),
            "action_id": str(action.get("action_id", "")),
        },
    )
