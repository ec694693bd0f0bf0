"""Inbound answers: Twilio SMS replies, key presses and receipts, Slack buttons, action links.

Signatures are made the way the providers make them (Twilio's own RequestValidator, Slack's
documented v0 HMAC) over the public URL from settings, and every refusal is checked to have
changed nothing in the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, col, func, select
from twilio.request_validator import RequestValidator

from sentinel_app.db import utcnow
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.ingest.normalized import NormalizedAlert
from sentinel_app.models import (
    ActionLinkUse,
    Alert,
    AlertEvent,
    ContactMethod,
    Escalation,
    EscalationPolicy,
    EscalationStep,
    Notification,
    SmsRef,
    User,
)
from sentinel_app.notify.links import LINK_PATH, ActionLinks
from sentinel_app.notify.slack_inbound import ACTIONS_PATH
from sentinel_app.notify.twilio_inbound import GATHER_PATH, SMS_PATH, STATUS_PATH
from sentinel_app.services import alerts as alert_service
from sentinel_app.services.actor import Actor
from sentinel_app.settings import get_settings
from tests.api.conftest import World

pytestmark = pytest.mark.asyncio

TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SERVER_SECRET = "server-secret-for-inbound-tests-0123456789"
PUBLIC = "https://oncall.example.com"
PHONE = {"responder": "+15555550101", "viewer": "+15555550102", "admin": "+15555550103"}
TWILIO_NUMBER = "+15555550199"
CALL_SID = "CA" + "c" * 32
MESSAGE_SID = "SM" + "d" * 32


@dataclass
class Inbound:
    """The API world plus user ids by name and the server's link signer."""

    world: World
    users: dict[str, int]
    links: ActionLinks

    @property
    def client(self) -> httpx.AsyncClient:
        """The API client."""
        return self.world.client


@pytest_asyncio.fixture
async def inbound(world: World, settings_env: pytest.MonkeyPatch) -> Inbound:
    settings_env.setenv("SENTINEL_TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    settings_env.setenv("SENTINEL_SLACK_SIGNING_SECRET", SLACK_SECRET)
    settings_env.setenv("SENTINEL_SECRET_KEY", SERVER_SECRET)
    settings_env.setenv("SENTINEL_PUBLIC_URL", PUBLIC)
    get_settings.cache_clear()
    with Session(world.engine) as session:
        users = {u.name.lower(): u.id for u in session.exec(select(User)).all() if u.id is not None}
    return Inbound(world=world, users=users, links=ActionLinks(SERVER_SECRET, PUBLIC))


# --- helpers ---------------------------------------------------------------------------------


def _alert(ib: Inbound, title: str = "Checkout latency high", *, policy_id: int | None = None) -> int:
    with Session(ib.world.engine) as session:
        result = alert_service.upsert_firing(
            session,
            team_id=ib.world.team_id,
            integration_id=None,
            escalation_policy_id=policy_id,
            alert=NormalizedAlert(action="trigger", dedup_key=title, title=title),
            actor=Actor(label="test", channel="api"),
            now=utcnow(),
        )
        session.commit()
    assert result.alert_id is not None
    return result.alert_id


def _add(ib: Inbound, *rows: Any) -> None:
    with Session(ib.world.engine) as session:
        for row in rows:
            session.add(row)
        session.commit()


def _phone(ib: Inbound, name: str, *, verified: bool = True, kind: str = "sms") -> None:
    _add(
        ib,
        ContactMethod(
            user_id=ib.users[name], kind=kind, value=PHONE[name], verified_at=utcnow() if verified else None
        ),
    )


def _ref(ib: Inbound, name: str, ref: str, alert_id: int, *, age_minutes: int = 0) -> None:
    created = utcnow() - dt.timedelta(minutes=age_minutes)
    _add(ib, SmsRef(user_id=ib.users[name], ref=ref, alert_id=alert_id, created_at=created))


def _state(ib: Inbound, alert_id: int) -> tuple[str, list[tuple[str, str, str]]]:
    """The alert's status and its timeline as (kind, channel, actor)."""
    with Session(ib.world.engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        events = session.exec(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(col(AlertEvent.id))
        ).all()
        return alert.status, [(e.kind, e.channel, e.actor) for e in events]


def _count(ib: Inbound, table: type) -> int:
    with Session(ib.world.engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def _resolve(ib: Inbound, alert_id: int) -> None:
    with Session(ib.world.engine) as session:
        alert_service.transition(
            session,
            alert_id=alert_id,
            transition=Transition.RESOLVE,
            actor=Actor(label="test", channel="api"),
            now=utcnow(),
        )
        session.commit()


async def _twilio(
    ib: Inbound,
    path: str,
    form: dict[str, str],
    *,
    query: str = "",
    token: str = TWILIO_TOKEN,
    signed_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a form the way Twilio does, signed over the public URL (or `signed_url`)."""
    target = f"{path}?{query}" if query else path
    url = signed_url or f"{PUBLIC}{target}"
    sent_headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}
    if headers is not None:
        sent_headers = headers
    return await ib.client.post(target, data=form, headers=sent_headers)


def _sms_form(name: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": "AC" + "b" * 32,
        "From": PHONE.get(name, "+15555550999"),
        "To": TWILIO_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


def _gather_form(name: str, digits: str) -> dict[str, str]:
    return {
        "CallSid": CALL_SID,
        "AccountSid": "AC" + "b" * 32,
        "From": TWILIO_NUMBER,
        "To": PHONE[name],
        "Digits": digits,
        "CallStatus": "in-progress",
    }


def _call_row(ib: Inbound, name: str, alert_id: int, *, channel: str = "voice", sid: str = CALL_SID) -> None:
    _add(
        ib,
        Notification(
            idempotency_key=f"{alert_id}:{name}:{channel}:{sid}",
            alert_id=alert_id,
            user_id=ib.users[name],
            channel=channel,
            target=PHONE[name],
            payload={"alert_id": alert_id},
            status="sent",
            provider_id=sid,
            sent_at=utcnow(),
        ),
    )


def _slack_payload(action_id: str, alert_id: int, user: str = "U0RESPONDER") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "team_id": "T0TEAM"},
        "team": {"id": "T0TEAM", "domain": "example"},
        "channel": {"id": "C0ALERTS", "name": "alerts"},
        "container": {"type": "message", "message_ts": "1712345100.000100", "channel_id": "C0ALERTS"},
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/abc",
        "trigger_id": "1.2.3",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "sentinel_alert_actions",
                "value": str(alert_id),
                "action_ts": "1712345678.000200",
            }
        ],
    }


async def _slack(
    ib: Inbound, payload: dict[str, Any], *, timestamp: int | None = None, secret: str = SLACK_SECRET
) -> httpx.Response:
    """POST a button press signed with Slack's v0 scheme: HMAC-SHA256 of `v0:<ts>:<body>`."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature,
    }
    return await ib.client.post(ACTIONS_PATH, content=body, headers=headers)


def _slack_user(ib: Inbound, name: str, slack_id: str) -> None:
    _add(ib, ContactMethod(user_id=ib.users[name], kind="slack", value=slack_id))


# --- Slack -----------------------------------------------------------------------------------


async def test_signed_slack_button_acknowledges(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    _slack_user(inbound, "responder", "U0RESPONDER")
    reply = await _slack(inbound, _slack_payload("sentinel_acknowledge", alert_id))
    assert reply.status_code == 200
    assert reply.json() == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": f"Alert #{alert_id} acknowledged.",
    }
    status, timeline = _state(inbound, alert_id)
    assert status == "acknowledged"
    assert timeline[-1] == ("acknowledged", "slack", "Responder")
    with Session(inbound.world.engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.acknowledged_by_id == inbound.users["responder"]
    # Pressing Resolve on the same message later resolves it; pressing it again is answered kindly.
    resolved = await _slack(inbound, _slack_payload("sentinel_resolve", alert_id))
    assert resolved.json()["text"] == f"Alert #{alert_id} resolved."
    again = await _slack(inbound, _slack_payload("sentinel_resolve", alert_id))
    assert again.status_code == 200
    assert again.json()["text"] == f"Alert #{alert_id} is already resolved."
    assert _state(inbound, alert_id)[0] == "resolved"


@pytest.mark.parametrize(
    ("case", "timestamp_shift", "secret", "drop_headers"),
    [
        ("stale timestamp", -6 * 60, SLACK_SECRET, False),
        ("timestamp from the future", 6 * 60, SLACK_SECRET, False),
        ("wrong secret", 0, "not-the-signing-secret", False),
        ("no signature headers", 0, SLACK_SECRET, True),
    ],
)
async def test_slack_refusals_change_nothing(
    inbound: Inbound, case: str, timestamp_shift: int, secret: str, drop_headers: bool
) -> None:
    alert_id = _alert(inbound)
    _slack_user(inbound, "responder", "U0RESPONDER")
    before = _state(inbound, alert_id)
    payload = _slack_payload("sentinel_acknowledge", alert_id)
    if drop_headers:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        reply = await inbound.client.post(
            ACTIONS_PATH, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    else:
        reply = await _slack(inbound, payload, timestamp=int(time.time()) + timestamp_shift, secret=secret)
    assert reply.status_code == 401, case
    assert reply.json()["error"]["code"] == "unauthenticated"
    assert _state(inbound, alert_id) == before


async def test_unknown_slack_user_is_told_to_link_their_account(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    before = _state(inbound, alert_id)
    reply = await _slack(inbound, _slack_payload("sentinel_acknowledge", alert_id, user="U0STRANGER"))
    assert reply.status_code == 200
    body = reply.json()
    assert body["response_type"] == "ephemeral"
    assert "not linked" in body["text"] and "U0STRANGER" in body["text"]
    assert _state(inbound, alert_id) == before


async def test_slack_viewer_cannot_act(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    _slack_user(inbound, "viewer", "U0VIEWER")
    before = _state(inbound, alert_id)
    reply = await _slack(inbound, _slack_payload("sentinel_resolve", alert_id, user="U0VIEWER"))
    assert reply.status_code == 200
    assert "not allowed" in reply.json()["text"]
    assert _state(inbound, alert_id) == before


# --- Twilio voice ----------------------------------------------------------------------------


async def test_voice_gather_digit_1_acknowledges(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    _call_row(inbound, "responder", alert_id)
    reply = await _twilio(
        inbound, GATHER_PATH, _gather_form("responder", "1"), query=f"alert_id={alert_id}&ref=1"
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/xml")
    assert f"<Say>Alert number {alert_id} acknowledged. Goodbye.</Say><Hangup />" in reply.text
    status, timeline = _state(inbound, alert_id)
    assert status == "acknowledged"
    assert timeline[-1] == ("acknowledged", "voice", "Responder")


async def test_voice_gather_on_a_resolved_alert_says_so(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    _call_row(inbound, "responder", alert_id)
    _resolve(inbound, alert_id)
    before = _state(inbound, alert_id)
    reply = await _twilio(inbound, GATHER_PATH, _gather_form("responder", "1"), query=f"alert_id={alert_id}")
    assert reply.status_code == 200
    assert f"Alert number {alert_id} is already resolved." in reply.text
    unknown = await _twilio(
        inbound, GATHER_PATH, _gather_form("responder", "9"), query=f"alert_id={alert_id}"
    )
    assert unknown.status_code == 200 and "that key does nothing" in unknown.text
    assert _state(inbound, alert_id) == before


async def test_voice_gather_digit_2_escalates(inbound: Inbound) -> None:
    with Session(inbound.world.engine) as session:
        policy = EscalationPolicy(team_id=inbound.world.team_id, name="Default")
        session.add(policy)
        session.flush()
        assert policy.id is not None
        for position, who in enumerate(("responder", "admin")):
            session.add(
                EscalationStep(
                    policy_id=policy.id,
                    position=position,
                    kind="notify_users",
                    delay_minutes=10,
                    targets={"user_ids": [inbound.users[who]]},
                )
            )
        session.commit()
        policy_id = policy.id
    # Raising the alert starts its escalation (at step 0, not yet run: no hosts in this test).
    alert_id = _alert(inbound, policy_id=policy_id)
    _call_row(inbound, "responder", alert_id)
    reply = await _twilio(inbound, GATHER_PATH, _gather_form("responder", "2"), query=f"alert_id={alert_id}")
    assert reply.status_code == 200
    assert f"Alert number {alert_id} escalated." in reply.text
    status, timeline = _state(inbound, alert_id)
    assert status == "firing"
    assert timeline[-1] == ("escalated", "voice", "Responder")
    with Session(inbound.world.engine) as session:
        row = session.exec(select(Escalation).where(Escalation.alert_id == alert_id)).one()
        assert row.version == 1


async def test_voice_gather_before_the_call_sid_is_stored(inbound: Inbound) -> None:
    # The key press can beat the dispatcher's commit of the CallSid: the callee's verified
    # number and the alert id in the (signed) action URL identify them instead.
    alert_id = _alert(inbound)
    before = _state(inbound, alert_id)
    unmatched = await _twilio(
        inbound, GATHER_PATH, _gather_form("responder", "1"), query=f"alert_id={alert_id}"
    )
    assert unmatched.status_code == 200 and "could not be matched to an alert" in unmatched.text
    assert _state(inbound, alert_id) == before
    _phone(inbound, "responder", kind="voice")
    reply = await _twilio(inbound, GATHER_PATH, _gather_form("responder", "1"), query=f"alert_id={alert_id}")
    assert f"Alert number {alert_id} acknowledged." in reply.text
    assert _state(inbound, alert_id)[1][-1] == ("acknowledged", "voice", "Responder")


async def test_voice_gather_without_an_escalation_answers_kindly(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    _call_row(inbound, "responder", alert_id)
    before = _state(inbound, alert_id)
    reply = await _twilio(inbound, GATHER_PATH, _gather_form("responder", "2"), query=f"alert_id={alert_id}")
    assert reply.status_code == 200
    assert f"Alert number {alert_id}: cannot escalate: the alert has no escalation policy." in reply.text
    assert _state(inbound, alert_id) == before


# --- Twilio SMS ------------------------------------------------------------------------------


async def test_sms_reply_1r_resolves(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    _phone(inbound, "responder")
    _ref(inbound, "responder", "1", alert_id)
    reply = await _twilio(inbound, SMS_PATH, _sms_form("responder", "1r"))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/xml")
    assert f"<Message>Alert #{alert_id} resolved.</Message>" in reply.text
    status, timeline = _state(inbound, alert_id)
    assert status == "resolved"
    assert timeline[-1] == ("resolved", "sms", "Responder")
    again = await _twilio(inbound, SMS_PATH, _sms_form("responder", "1a"))
    assert f"Alert #{alert_id} is already resolved." in again.text


async def test_bare_sms_reply_acts_on_the_newest_open_alert(inbound: Inbound) -> None:
    oldest, newer, newest_resolved = _alert(inbound, "a"), _alert(inbound, "b"), _alert(inbound, "c")
    _phone(inbound, "responder", kind="voice")
    _ref(inbound, "responder", "1", oldest, age_minutes=30)
    _ref(inbound, "responder", "2", newer, age_minutes=20)
    _ref(inbound, "responder", "3", newest_resolved, age_minutes=10)
    _resolve(inbound, newest_resolved)
    reply = await _twilio(inbound, SMS_PATH, _sms_form("responder", "ack"))
    assert f"Alert #{newer} acknowledged." in reply.text
    assert [_state(inbound, a)[0] for a in (oldest, newer, newest_resolved)] == [
        "firing",
        "acknowledged",
        "resolved",
    ]


@pytest.mark.parametrize(
    ("sender", "verified", "body", "expected"),
    [
        ("stranger", True, "1a", "not linked to a Fangorn Sentinel account"),
        ("responder", False, "1a", "not linked to a Fangorn Sentinel account"),
        ("responder", True, "hello there", "Unknown reply. Reply 1a to acknowledge, 1r to resolve"),
        ("responder", True, "7a", "No alert has the number 7."),
        ("viewer", True, "1a", "not allowed to act on alert"),
    ],
)
async def test_sms_replies_that_change_nothing(
    inbound: Inbound, sender: str, verified: bool, body: str, expected: str
) -> None:
    alert_id = _alert(inbound)
    for name in ("responder", "viewer"):
        if name == sender:
            _phone(inbound, name, verified=verified)
        _ref(inbound, name, "1", alert_id)
    before = _state(inbound, alert_id)
    reply = await _twilio(inbound, SMS_PATH, _sms_form(sender, body))
    assert reply.status_code == 200
    assert "<Response><Message>" in reply.text and expected in reply.text
    assert _state(inbound, alert_id) == before


@pytest.mark.parametrize(
    ("path", "case"),
    [
        (SMS_PATH, "wrong auth token"),
        (SMS_PATH, "no signature"),
        (SMS_PATH, "signed for the local URL, not the public one"),
        (SMS_PATH, "body changed after signing"),
        (GATHER_PATH, "wrong auth token"),
        (GATHER_PATH, "query changed after signing"),
    ],
)
async def test_bad_twilio_signatures_change_nothing(inbound: Inbound, path: str, case: str) -> None:
    alert_id = _alert(inbound)
    _phone(inbound, "responder")
    _ref(inbound, "responder", "1", alert_id)
    _call_row(inbound, "responder", alert_id)
    before = _state(inbound, alert_id)
    form = _sms_form("responder", "1r") if path == SMS_PATH else _gather_form("responder", "1")
    query = f"alert_id={alert_id}" if path == GATHER_PATH else ""
    if case == "wrong auth token":
        reply = await _twilio(inbound, path, form, query=query, token="f" * 32)
    elif case == "no signature":
        reply = await _twilio(inbound, path, form, headers={})
    elif case == "signed for the local URL, not the public one":
        reply = await _twilio(inbound, path, form, signed_url=f"http://sentinel.test{path}")
    elif case == "body changed after signing":
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"{PUBLIC}{path}", form)
        tampered = {**form, "Body": "1r "}
        reply = await inbound.client.post(path, data=tampered, headers={"X-Twilio-Signature": signature})
    else:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"{PUBLIC}{path}?{query}", form)
        reply = await inbound.client.post(
            f"{path}?alert_id={alert_id + 1}", data=form, headers={"X-Twilio-Signature": signature}
        )
    assert reply.status_code == 401, case
    assert reply.json()["error"]["code"] == "unauthenticated"
    assert _state(inbound, alert_id) == before


async def test_twilio_callbacks_must_be_forms(inbound: Inbound) -> None:
    reply = await inbound.client.post(SMS_PATH, json={"Body": "1a"})
    assert reply.status_code == 415
    assert reply.json()["error"]["field"] == "content-type"


# --- Twilio delivery receipts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "callback", "status", "error", "event", "note"),
    [
        ("sms", {"MessageStatus": "delivered"}, "delivered", "", "notified", "SMS to Responder delivered"),
        (
            "sms",
            {"MessageStatus": "undelivered", "ErrorCode": "30003"},
            "failed",
            "undelivered (Twilio error 30003)",
            "notification_failed",
            "SMS to Responder failed: undelivered (Twilio error 30003)",
        ),
        ("voice", {"CallStatus": "completed"}, "delivered", "", "notified", "call to Responder answered"),
        (
            "voice",
            {"CallStatus": "no-answer"},
            "failed",
            "no-answer",
            "notification_failed",
            "call to Responder failed: no-answer",
        ),
        (
            "voice",
            {"CallStatus": "busy"},
            "failed",
            "busy",
            "notification_failed",
            "call to Responder failed: busy",
        ),
    ],
)
async def test_status_callbacks_mark_the_outbox_row(
    inbound: Inbound, channel: str, callback: dict[str, str], status: str, error: str, event: str, note: str
) -> None:
    alert_id = _alert(inbound)
    sid = MESSAGE_SID if channel == "sms" else CALL_SID
    _call_row(inbound, "responder", alert_id, channel=channel, sid=sid)
    sid_field = "MessageSid" if channel == "sms" else "CallSid"
    form = {sid_field: sid, "AccountSid": "AC" + "b" * 32, "To": PHONE["responder"], **callback}
    # An intermediate status changes nothing; the final one is recorded once even if repeated.
    interim = {**form, **({"MessageStatus": "sent"} if channel == "sms" else {"CallStatus": "ringing"})}
    assert (await _twilio(inbound, STATUS_PATH, interim)).status_code == 204
    for _ in range(2):
        reply = await _twilio(inbound, STATUS_PATH, form)
        assert reply.status_code == 204
    with Session(inbound.world.engine) as session:
        row = session.exec(select(Notification).where(Notification.provider_id == sid)).one()
        assert (row.status, row.error) == (status, error)
        assert (row.delivered_at is not None) is (status == "delivered")
        events = session.exec(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id, AlertEvent.kind == event)
        ).all()
    assert [(e.note, e.channel, e.actor) for e in events] == [(note, channel, "Fangorn Sentinel")]


async def test_status_callback_with_a_bad_signature_changes_nothing(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    _call_row(inbound, "responder", alert_id, channel="sms", sid=MESSAGE_SID)
    before = _state(inbound, alert_id)
    form = {"MessageSid": MESSAGE_SID, "MessageStatus": "delivered"}
    reply = await _twilio(inbound, STATUS_PATH, form, token="0" * 32)
    assert reply.status_code == 401
    with Session(inbound.world.engine) as session:
        row = session.exec(select(Notification).where(Notification.provider_id == MESSAGE_SID)).one()
        assert row.status == "sent" and row.delivered_at is None
    assert _state(inbound, alert_id) == before
    # A receipt for a message we do not know is accepted and ignored.
    assert (await _twilio(inbound, STATUS_PATH, {**form, "MessageSid": "SM" + "0" * 32})).status_code == 204


# --- action links ----------------------------------------------------------------------------


def _path(url: str) -> str:
    assert url.startswith(PUBLIC)
    return url[len(PUBLIC) :]


async def test_action_link_confirms_then_acts_once(inbound: Inbound) -> None:
    alert_id = _alert(inbound, "Disk <full> & slow")
    link = inbound.links.make(alert_id, "acknowledge", now=utcnow(), user_id=inbound.users["responder"])
    before = _state(inbound, alert_id)
    # Opening the link (a person or a mail scanner) only asks.
    page = await inbound.client.get(_path(link.url))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text
    assert "Disk &lt;full&gt; &amp; slow" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert _state(inbound, alert_id) == before and _count(inbound, ActionLinkUse) == 0
    done = await inbound.client.post(_path(link.url))
    assert done.status_code == 200
    assert f"Alert #{alert_id} acknowledged." in done.text
    status, timeline = _state(inbound, alert_id)
    assert status == "acknowledged" and timeline[-1] == ("acknowledged", "link", "Responder")
    after = _state(inbound, alert_id)
    for method in ("post", "get"):
        again = await inbound.client.request(method.upper(), _path(link.url))
        assert again.status_code == 409, method
        assert "This link was already used" in again.text
    assert _state(inbound, alert_id) == after and _count(inbound, ActionLinkUse) == 1


async def test_action_link_with_the_token_in_the_query(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    link = inbound.links.make(alert_id, "resolve", now=utcnow(), user_id=inbound.users["admin"])
    assert (await inbound.client.get(LINK_PATH, params={"token": link.token})).status_code == 200
    done = await inbound.client.post(LINK_PATH, params={"token": link.token})
    assert done.status_code == 200 and f"Alert #{alert_id} resolved." in done.text
    assert _state(inbound, alert_id)[0] == "resolved"


@pytest.mark.parametrize(
    ("case", "status", "text"),
    [
        ("expired", 400, "This link has expired"),
        ("tampered", 403, "This link is not valid"),
        ("other server", 403, "This link is not valid"),
        ("malformed", 400, "This link is not valid"),
    ],
)
async def test_bad_action_links_change_nothing(inbound: Inbound, case: str, status: int, text: str) -> None:
    alert_id = _alert(inbound)
    user_id = inbound.users["responder"]
    if case == "expired":
        token = inbound.links.make(
            alert_id, "resolve", now=utcnow() - dt.timedelta(hours=13), user_id=user_id
        ).token
    elif case == "tampered":
        # Someone else's link re-pointed at another user: the MAC no longer matches.
        token = inbound.links.make(alert_id, "resolve", now=utcnow(), user_id=user_id).token
        parts = token.split(".")
        parts[3] = str(inbound.users["admin"])
        token = ".".join(parts)
    elif case == "other server":
        token = (
            ActionLinks("another-secret", PUBLIC)
            .make(alert_id, "resolve", now=utcnow(), user_id=user_id)
            .token
        )
    else:
        token = "v1.not-a-token"
    before = _state(inbound, alert_id)
    for method in ("GET", "POST"):
        reply = await inbound.client.request(method, f"{LINK_PATH}/{token}")
        assert reply.status_code == status, (case, method)
        assert text in reply.text
    assert _state(inbound, alert_id) == before and _count(inbound, ActionLinkUse) == 0


async def test_action_links_that_cannot_act_stay_unused(inbound: Inbound) -> None:
    alert_id = _alert(inbound)
    viewer = inbound.links.make(alert_id, "acknowledge", now=utcnow(), user_id=inbound.users["viewer"])
    refused = await inbound.client.post(_path(viewer.url))
    assert refused.status_code == 403 and "not allowed" in refused.text
    _resolve(inbound, alert_id)
    before = _state(inbound, alert_id)
    late = inbound.links.make(alert_id, "resolve", now=utcnow(), user_id=inbound.users["responder"])
    conflict = await inbound.client.post(_path(late.url))
    assert conflict.status_code == 409
    assert f"Alert #{alert_id} is already resolved." in conflict.text
    assert _state(inbound, alert_id) == before and _count(inbound, ActionLinkUse) == 0
