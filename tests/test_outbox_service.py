"""The outbox service: claims and leases, composing alert messages, recording results, alert changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app import bus
from sentinel_app.db import session_scope
from sentinel_app.models import (
    Alert,
    AlertEvent,
    AlertStatus,
    ContactMethod,
    Notification,
    OutgoingWebhook,
    PushDevice,
    SmsRef,
    Team,
    User,
)
from sentinel_app.notify.base import ChannelKind, DeliveryResult, OutgoingMessage
from sentinel_app.notify.links import ActionLinks, LinkIntent
from sentinel_app.security import encrypt_secret
from sentinel_app.services import outbox
from sentinel_app.services.outbox import Admission, Composer
from tests import factories

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=60)
BASE = "https://sentinel.example.com"
LINK_SECRET = "outbox-test-secret"
HOOK_URL = "https://hooks.example.com/sentinel"


def composer() -> Composer:
    """The composer the tests use: links signed with a fixed secret."""
    return Composer(
        links=ActionLinks(LINK_SECRET, BASE),
        base_url=BASE,
        status_callback=f"{BASE}/api/v1/notify/twilio/status",
    )


# --- builders shared with tests/test_dispatcher.py ---------------------------------------------------


def make_team(session: Session) -> Team:
    """A committed team."""
    return factories.team(session)


def make_user(session: Session, name: str = "Ana") -> User:
    """A committed user."""
    return factories.user(session, name=name)


def make_alert(session: Session, team: Team, **kw: Any) -> Alert:
    """A committed firing alert with a message, labels and a runbook link."""
    kw.setdefault("dedup_key", uuid.uuid4().hex)
    kw.setdefault("message", "/var is 98% full on db-1")
    kw.setdefault("labels", {"alertname": "DiskFull", "instance": "db-1"})
    kw.setdefault(
        "links", [{"kind": "runbook", "url": "https://runbooks.example.com/disk", "title": "Runbook"}]
    )
    kw.setdefault("severity", "critical")
    row = factories.alert(session, team.id, **kw)
    session.commit()
    return row


def make_device(session: Session, user: User, *, platform: str = "apns", name: str = "iPhone") -> PushDevice:
    """A committed active push device."""
    assert user.id is not None
    device = PushDevice(user_id=user.id, platform=platform, token=uuid.uuid4().hex * 2, name=name)
    session.add(device)
    session.commit()
    return device


def make_method(
    session: Session, user: User, *, kind: str = "sms", value: str = "+15555550100"
) -> ContactMethod:
    """A committed verified contact method."""
    assert user.id is not None
    method = ContactMethod(user_id=user.id, kind=kind, value=value, verified_at=NOW)
    session.add(method)
    session.commit()
    return method


def make_row(
    session: Session,
    *,
    channel: str = "webhook",
    target: str = HOOK_URL,
    alert: Alert | None = None,
    user: User | None = None,
    purpose: str = "alert",
    due: dt.datetime = NOW,
    payload: dict[str, Any] | None = None,
    device: PushDevice | None = None,
    method: ContactMethod | None = None,
    max_attempts: int = 5,
    important: bool = False,
) -> Notification:
    """A committed pending outbox row, shaped like the escalation steps write them."""
    if payload is None:
        payload = (
            {
                "alert_id": alert.id,
                "title": alert.title,
                "severity": alert.severity,
                "method": channel,
                "step_index": 0,
                "cycle": 0,
            }
            if alert is not None
            else {"title": "Hello", "body": "A message", "severity": "info"}
        )
    row = Notification(
        idempotency_key=f"test:{uuid.uuid4().hex}",
        alert_id=alert.id if alert is not None else None,
        user_id=user.id if user is not None else None,
        channel=channel,
        purpose=purpose,
        important=important,
        push_device_id=device.id if device is not None else None,
        contact_method_id=method.id if method is not None else None,
        target=device.token if device is not None else target,
        payload=payload,
        status="pending",
        next_attempt_at=due,
        max_attempts=max_attempts,
        created_at=due,
        updated_at=due,
    )
    session.add(row)
    session.commit()
    return row


def claim(engine: sa.Engine, *, now: dt.datetime = NOW, worker: str = "w1", limit: int = 10) -> list[int]:
    """Claim due rows in a write transaction; their ids."""
    with session_scope(write=True, engine=engine) as session:
        return [
            r.id
            for r in outbox.claim_due(session, now=now, limit=limit, worker_id=worker, lease=LEASE)
            if r.id is not None
        ]


def prepare(
    engine: sa.Engine, *, now: dt.datetime = NOW, worker: str = "w1", admit: outbox.Admit | None = None
) -> outbox.Batch:
    """Claim and compose a batch in a write transaction."""
    with session_scope(write=True, engine=engine) as session:
        return outbox.prepare_batch(
            session, now=now, limit=50, worker_id=worker, lease=LEASE, composer=composer(), admit=admit
        )


def record(
    engine: sa.Engine,
    row_id: int | None,
    result: DeliveryResult,
    *,
    now: dt.datetime = NOW,
    worker: str = "w1",
    seed: int = 1,
) -> Notification | None:
    """Record one result in a write transaction."""
    assert row_id is not None
    with session_scope(write=True, engine=engine) as session:
        return outbox.record_result(
            session, notification_id=row_id, result=result, now=now, worker_id=worker, rng=random.Random(seed)
        )


def reload(engine: sa.Engine, model: Any, row_id: int | None) -> Any:
    """A fresh copy of a row."""
    with Session(engine) as session:
        row = session.get(model, row_id)
        assert row is not None
        return row


def timeline(engine: sa.Engine, alert_id: int | None) -> list[tuple[str, str, str]]:
    """(kind, channel, note) of an alert's notification events, oldest first."""
    with Session(engine) as session:
        events = session.exec(
            select(AlertEvent)
            .where(
                AlertEvent.alert_id == alert_id, col(AlertEvent.kind).in_(["notified", "notification_failed"])
            )
            .order_by(col(AlertEvent.id))
        ).all()
        return [(e.kind, e.channel, e.note) for e in events]


# --- claiming ----------------------------------------------------------------------------------------


def test_claim_takes_due_rows_oldest_first_and_leases_them(engine: sa.Engine, db: Session) -> None:
    later = make_row(db, due=NOW - dt.timedelta(minutes=1))
    first = make_row(db, due=NOW - dt.timedelta(minutes=2))
    make_row(db, due=NOW + dt.timedelta(minutes=1))  # not due yet

    assert claim(engine) == [first.id, later.id]
    row = reload(engine, Notification, first.id)
    assert (row.status, row.claimed_by, row.claimed_until, row.attempts) == ("sending", "w1", NOW + LEASE, 1)
    assert claim(engine, worker="w2") == []


def test_an_expired_lease_is_reclaimed_and_the_old_claimer_is_ignored(engine: sa.Engine, db: Session) -> None:
    row = make_row(db)
    assert claim(engine, worker="w1") == [row.id]
    assert claim(engine, worker="w2", now=NOW + dt.timedelta(seconds=59)) == []

    later = NOW + dt.timedelta(seconds=61)
    assert claim(engine, worker="w2", now=later) == [row.id]
    taken = reload(engine, Notification, row.id)
    assert (taken.claimed_by, taken.attempts, taken.claimed_until) == ("w2", 2, later + LEASE)

    # The first sender finally reports back: too late, the row is w2's now.
    assert record(engine, row.id, DeliveryResult.sent("late"), worker="w1", now=later) is None
    assert reload(engine, Notification, row.id).status == "sending"
    assert record(engine, row.id, DeliveryResult.sent("p-2"), worker="w2", now=later) is not None
    done = reload(engine, Notification, row.id)
    assert (done.status, done.provider_id, done.sent_at) == ("sent", "p-2", later)


def test_a_row_whose_sender_died_on_its_last_attempt_fails(engine: sa.Engine, db: Session) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    row = make_row(db, alert=alert, user=user, max_attempts=1)
    assert claim(engine, worker="w1") == [row.id]
    assert claim(engine, worker="w2", now=NOW + dt.timedelta(minutes=2)) == []
    failed = reload(engine, Notification, row.id)
    assert failed.status == "failed" and "gave up after 1 attempts" in failed.error
    assert timeline(engine, alert.id) == [
        (
            "notification_failed",
            "webhook",
            "webhook to Ana failed: gave up after 1 attempts: the sender stopped before recording a result",
        )
    ]


def test_concurrent_claimers_never_get_the_same_row(engine: sa.Engine, db: Session) -> None:
    rows = [make_row(db, due=NOW - dt.timedelta(seconds=i)) for i in range(60)]
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        mine = claimed.setdefault(name, [])
        try:
            while True:
                got = claim(engine, worker=name, limit=7)
                if not got:
                    return
                mine.extend(got)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    everything = [row_id for ids in claimed.values() for row_id in ids]
    assert sorted(everything) == sorted(r.id for r in rows if r.id is not None)
    with Session(engine) as session:
        owners = dict(session.exec(select(Notification.id, Notification.claimed_by)).all())
    for name, ids in claimed.items():
        assert all(owners[i] == name for i in ids)


def test_postgresql_claims_skip_rows_another_transaction_holds(engine: sa.Engine, db: Session) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: its claimers take the write lock up front instead")
    ids = [make_row(db, due=NOW - dt.timedelta(seconds=10 - i)).id for i in range(5)]
    with Session(engine) as holder:
        held = outbox.claim_due(holder, now=NOW, limit=3, worker_id="slow", lease=LEASE)
        assert [r.id for r in held] == ids[:3]
        # Not committed yet: a second claimer neither waits nor takes those rows.
        with Session(engine) as other:
            other.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            taken = outbox.claim_due(other, now=NOW, limit=10, worker_id="fast", lease=LEASE)
            assert [r.id for r in taken] == ids[3:]
            other.commit()
        holder.commit()


@pytest.mark.parametrize(
    ("attempt", "retry_after", "low", "high"),
    [
        (1, None, 0, 5),
        (2, None, 0, 10),
        (3, None, 0, 20),
        (7, None, 0, 300),
        (30, None, 0, 300),
        (1, 42.0, 42, 42),
        (8, 1.0, 1, 300),
    ],
)
def test_backoff_is_full_jitter_capped_and_honours_retry_after(
    attempt: int, retry_after: float | None, low: float, high: float
) -> None:
    rng = random.Random(7)
    delays = [outbox.backoff_delay(attempt, retry_after=retry_after, rng=rng) for _ in range(300)]
    assert all(low <= d <= high for d in delays)
    if retry_after is None:
        # Full jitter spreads over the whole window rather than clustering at its top.
        assert min(delays) < high * 0.1 and max(delays) > high * 0.9


# --- recording ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "status", "provider_status", "event"),
    [
        (
            DeliveryResult.sent("SM123", provider_status="queued"),
            "sent",
            "queued",
            ("notified", "sms", "SMS to Ana sent"),
        ),
        (
            DeliveryResult.failed(
                "Twilio 400 21408: Permission to send an SMS has not been enabled", provider_status="21408"
            ),
            "failed",
            "21408",
            (
                "notification_failed",
                "sms",
                "SMS to Ana failed: Twilio 400 21408: Permission to send an SMS has not been enabled",
            ),
        ),
        (
            DeliveryResult.invalid_target(
                "Twilio 400 21211: Invalid 'To' Phone Number", provider_status="21211"
            ),
            "failed",
            "21211",
            ("notification_failed", "sms", "SMS to Ana failed: Twilio 400 21211: Invalid 'To' Phone Number"),
        ),
        (
            DeliveryResult.failed("channel sms is disabled: not configured", provider_status="disabled"),
            "failed",
            "disabled",
            ("notification_failed", "sms", "SMS to Ana failed: channel sms is disabled: not configured"),
        ),
    ],
    ids=["sent", "failed", "invalid-number", "disabled"],
)
def test_final_results_are_stored_with_a_timeline_note(
    engine: sa.Engine,
    db: Session,
    result: DeliveryResult,
    status: str,
    provider_status: str,
    event: tuple[str, str, str],
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    method = make_method(db, user)
    row = make_row(db, channel="sms", target=method.value, alert=alert, user=user, method=method)
    claim(engine)
    assert record(engine, row.id, result) is not None

    stored = reload(engine, Notification, row.id)
    assert (stored.status, stored.provider_status, stored.claimed_until) == (status, provider_status, None)
    assert stored.provider_id == result.provider_id and stored.error == result.error
    assert stored.sent_at == (NOW if status == "sent" else None)
    assert timeline(engine, alert.id) == [event]
    # A dead phone number stays on the person's profile (flagging it is for them, not us).
    assert reload(engine, ContactMethod, method.id).enabled


def test_retry_backs_off_then_gives_up_at_max_attempts(engine: sa.Engine, db: Session) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    row = make_row(db, alert=alert, user=user, max_attempts=2)
    claim(engine)
    record(
        engine, row.id, DeliveryResult.retry("webhook answered 503", provider_status="503", retry_after=30)
    )
    waiting = reload(engine, Notification, row.id)
    assert (waiting.status, waiting.attempts, waiting.error) == ("pending", 1, "webhook answered 503")
    assert NOW + dt.timedelta(seconds=30) <= waiting.next_attempt_at <= NOW + dt.timedelta(seconds=30.001)
    assert claim(engine, now=NOW + dt.timedelta(seconds=29)) == []
    assert timeline(engine, alert.id) == []

    later = NOW + dt.timedelta(seconds=31)
    assert claim(engine, now=later) == [row.id]
    record(engine, row.id, DeliveryResult.retry("webhook answered 503", provider_status="503"), now=later)
    gone = reload(engine, Notification, row.id)
    assert (gone.status, gone.attempts) == ("failed", 2)
    assert timeline(engine, alert.id) == [
        (
            "notification_failed",
            "webhook",
            "webhook to Ana failed: gave up after 2 attempts: webhook answered 503",
        )
    ]


@pytest.mark.parametrize(
    ("platform", "result", "reason"),
    [
        (
            "apns",
            DeliveryResult.invalid_target("APNs 410 Unregistered", provider_status="410 Unregistered"),
            "Unregistered",
        ),
        (
            "fcm",
            DeliveryResult.invalid_target("FCM UNREGISTERED: gone", provider_status="UNREGISTERED"),
            "UNREGISTERED",
        ),
    ],
)
def test_a_dead_push_token_deactivates_the_device(
    engine: sa.Engine, db: Session, platform: str, result: DeliveryResult, reason: str
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    device = make_device(db, user, platform=platform)
    other = make_device(db, user, platform=platform, name="iPad")
    row = make_row(db, channel=platform, alert=alert, user=user, device=device)
    claim(engine)
    record(engine, row.id, result)

    dead = reload(engine, PushDevice, device.id)
    assert (dead.active, dead.deactivated_at, dead.deactivation_reason) == (
        False,
        NOW,
        result.provider_status,
    )
    assert reload(engine, PushDevice, other.id).active
    assert timeline(engine, alert.id) == [
        ("notification_failed", platform, f"push to iPhone failed: {reason}")
    ]


@pytest.mark.asyncio
async def test_final_results_announce_the_alert_after_commit(
    engine: sa.Engine, db: Session, db_url: str
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    row = make_row(db, alert=alert, user=user)
    claim(engine)
    event_bus = bus.create_bus(db_url)
    bus.set_bus(event_bus)
    await event_bus.start()
    try:
        async with event_bus.subscribe({"alert.updated"}) as events:
            await asyncio.to_thread(record, engine, row.id, DeliveryResult.sent("id-1"))
            event = await asyncio.wait_for(anext(aiter(events)), 10)
    finally:
        await event_bus.stop()
        bus.set_bus(None)
    assert (event.key, event.data) == (
        f"alert:{alert.id}",
        {
            "id": alert.id,
            "team_id": team.id,
            "status": "firing",
            "severity": "critical",
            "change": "notified",
        },
    )


@pytest.mark.parametrize(
    ("callbacks", "status", "provider_status", "events"),
    [
        (["sent", "delivered"], "delivered", "delivered", []),
        (
            ["undelivered"],
            "failed",
            "undelivered",
            [("notification_failed", "sms", "SMS to Ana failed: undelivered (30003)")],
        ),
        (
            ["no-answer"],
            "failed",
            "no-answer",
            [("notification_failed", "sms", "SMS to Ana failed: no-answer (30003)")],
        ),
        (["sending"], "sent", "sending", []),
        (["delivered", "failed"], "delivered", "delivered", []),
    ],
)
def test_provider_status_callbacks(
    engine: sa.Engine,
    db: Session,
    callbacks: list[str],
    status: str,
    provider_status: str,
    events: list[tuple[str, str, str]],
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    row = make_row(db, channel="sms", target="+15555550100", alert=alert, user=user)
    claim(engine)
    record(engine, row.id, DeliveryResult.sent("SM42", provider_status="queued"))
    later = NOW + dt.timedelta(seconds=20)
    for state in callbacks:
        with session_scope(write=True, engine=engine) as session:
            found = outbox.mark_delivery_status(
                session, provider_id="SM42", status=state, error="30003", now=later
            )
            assert found is not None and found.id == row.id
    stored = reload(engine, Notification, row.id)
    assert (stored.status, stored.provider_status) == (status, provider_status)
    assert stored.delivered_at == (later if status == "delivered" else None)
    assert timeline(engine, alert.id)[1:] == events
    with session_scope(write=True, engine=engine) as session:
        assert (
            outbox.mark_delivery_status(session, provider_id="SM-unknown", status="delivered", now=later)
            is None
        )


# --- preparing: cancel, compose ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": AlertStatus.ACKNOWLEDGED}, "alert acknowledged"),
        ({"status": AlertStatus.RESOLVED}, "alert resolved"),
        ({"silenced_until": NOW + dt.timedelta(hours=1)}, "alert silenced until 2026-11-23T13:00:00+00:00"),
    ],
)
def test_alert_rows_are_cancelled_when_the_alert_stopped_firing(
    engine: sa.Engine, db: Session, change: dict[str, Any], reason: str
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    row = make_row(db, alert=alert, user=user)
    other = make_row(db, purpose="oncall_start", user=user)  # not about the alert: still goes
    for name, value in change.items():
        setattr(alert, name, value)
    db.add(alert)
    db.commit()

    batch = prepare(engine)
    assert [p.notification_id for p in batch.ready] == [other.id]
    assert (batch.claimed, batch.cancelled) == (2, 1)
    cancelled = reload(engine, Notification, row.id)
    assert (cancelled.status, cancelled.error, cancelled.attempts, cancelled.claimed_until) == (
        "cancelled",
        reason,
        0,
        None,
    )
    assert timeline(engine, alert.id) == []


def test_rows_to_a_deactivated_device_or_disabled_method_are_cancelled(
    engine: sa.Engine, db: Session
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    device = make_device(db, user)
    method = make_method(db, user)
    push = make_row(db, channel="apns", alert=alert, user=user, device=device)
    sms = make_row(db, channel="sms", target=method.value, alert=alert, user=user, method=method)
    device.active, device.deactivation_reason, method.enabled = False, "410 Unregistered", False
    db.add_all([device, method])
    db.commit()
    assert prepare(engine).ready == []
    assert reload(engine, Notification, push.id).error == "push device deactivated: 410 Unregistered"
    assert reload(engine, Notification, sms.id).error == "contact method disabled"


def test_alert_messages_are_composed_at_send_time(engine: sa.Engine, db: Session) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team, title="Disk full on db-1")
    device = make_device(db, user)
    rows = {
        "email": make_row(
            db, channel="email", target="ana@example.com", alert=alert, user=user, important=True
        ),
        "apns": make_row(db, channel="apns", alert=alert, user=user, device=device),
        "voice": make_row(db, channel="voice", target="+15555550100", alert=alert, user=user),
        "sms": make_row(db, channel="sms", target="+15555550100", alert=alert, user=user),
        "webhook": make_row(db, alert=alert, payload={"alert_id": alert.id, "step_index": 2, "cycle": 0}),
    }
    # The title changed after the rows were written: the message shows the alert as it is now.
    alert.title = "Disk full on db-1 (98%)"
    db.add(alert)
    db.commit()

    batch = prepare(engine)
    messages = {p.message.channel.value: p.message for p in batch.ready}
    assert set(messages) == set(rows)
    email = messages["email"]
    assert (email.title, email.severity, email.important, email.collapse_id) == (
        "Disk full on db-1 (98%)",
        "critical",
        True,
        f"sentinel-alert-{alert.id}",
    )
    assert email.body == (
        "/var is 98% full on db-1\nLabels: alertname=DiskFull, instance=db-1\n"
        "Runbook: https://runbooks.example.com/disk"
    )
    assert email.extra == {"status": "firing", "alert_url": f"{BASE}/alerts/{alert.id}"}
    links = ActionLinks(LINK_SECRET, BASE)
    verified = links.verify(email.actions["acknowledge"], now=NOW)
    assert isinstance(verified, LinkIntent)
    assert (verified.alert_id, verified.intent, verified.user_id) == (alert.id, "acknowledge", user.id)
    assert set(email.actions) == {"acknowledge", "resolve"}
    assert messages["apns"].body == "/var is 98% full on db-1" and messages["apns"].target == device.token
    assert messages["voice"].body == "/var is 98% full on db-1"
    assert messages["sms"].body == "/var is 98% full on db-1\nLabels: alertname=DiskFull, instance=db-1"
    for kind in ("sms", "voice"):
        assert messages[kind].extra["reply_ref"] == "1"
        assert messages[kind].extra["status_callback"] == f"{BASE}/api/v1/notify/twilio/status"
    hook = messages["webhook"]
    assert (
        hook.extra["event"] == "alert.escalated"
        and hook.extra["delivery_id"] == rows["webhook"].idempotency_key
    )
    assert hook.extra["labels"] == {"alertname": "DiskFull", "instance": "db-1"}
    assert {p.attempt for p in batch.ready} == {1}


def test_sms_reply_refs_are_the_smallest_free_number_per_person(engine: sa.Engine, db: Session) -> None:
    team, ana, bo = make_team(db), make_user(db), make_user(db, "Bo")
    first, second, third = (make_alert(db, team) for _ in range(3))
    assert ana.id is not None and bo.id is not None

    def ref(user_id: int, alert: Alert) -> str:
        assert alert.id is not None
        with session_scope(write=True, engine=engine) as session:
            return outbox.sms_ref(session, user_id=user_id, alert_id=alert.id, now=NOW)

    assert [ref(ana.id, first), ref(ana.id, second), ref(ana.id, first), ref(bo.id, second)] == [
        "1",
        "2",
        "1",
        "1",
    ]
    first.status = AlertStatus.RESOLVED
    db.add(first)
    db.commit()
    # Resolved alerts give their number back.
    assert ref(ana.id, third) == "1"
    with Session(engine) as session:
        refs = session.exec(select(SmsRef.alert_id, SmsRef.ref).where(SmsRef.user_id == ana.id)).all()
        assert sorted(refs) == sorted([(second.id, "2"), (third.id, "1")])
        assert outbox.alert_for_sms_ref(session, user_id=ana.id, ref="2") == second.id
        assert outbox.alert_for_sms_ref(session, user_id=ana.id, ref=None) == third.id
        assert outbox.alert_for_sms_ref(session, user_id=ana.id, ref="9") is None


def test_full_payload_rows_are_sent_as_they_are(engine: sa.Engine, db: Session) -> None:
    user = make_user(db)
    message = OutgoingMessage(
        channel=ChannelKind.EMAIL,
        target="ana@example.com",
        alert_id=None,
        title="Your shift starts",
        body="Primary on-call from 09:00",
        severity="info",
    )
    row = make_row(
        db,
        channel="email",
        target="ana@example.com",
        purpose="oncall_start",
        user=user,
        payload=message.to_payload(),
    )
    [prepared] = prepare(engine).ready
    assert prepared.notification_id == row.id and prepared.purpose == "oncall_start"
    assert prepared.message == message


def test_a_rate_limiter_can_put_rows_back_without_counting_an_attempt(engine: sa.Engine, db: Session) -> None:
    rows = [make_row(db, purpose="status_update", due=NOW - dt.timedelta(seconds=3 - i)) for i in range(3)]
    answers = iter([Admission(True, 0.25), Admission(False, 40.0), Admission(True)])
    batch = prepare(engine, admit=lambda channel: next(answers))
    assert [(p.notification_id, p.delay) for p in batch.ready] == [(rows[0].id, 0.25), (rows[2].id, 0.0)]
    back = reload(engine, Notification, rows[1].id)
    assert (back.status, back.attempts, back.next_attempt_at) == (
        "pending",
        0,
        NOW + dt.timedelta(seconds=40),
    )


# --- alert changes ------------------------------------------------------------------------------------


@pytest.fixture
def slack_configured(settings_env: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings with a Slack bot token (and the public URL used in links)."""
    from sentinel_app.settings import get_settings

    settings_env.setenv("SENTINEL_SLACK_BOT_TOKEN", "xoxb-test-token")
    settings_env.setenv("SENTINEL_PUBLIC_URL", BASE)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _hook(
    session: Session,
    team: Team,
    name: str,
    events: list[str],
    *,
    enabled: bool = True,
    secret: str | None = None,
) -> OutgoingWebhook:
    assert team.id is not None
    hook = OutgoingWebhook(
        team_id=team.id,
        name=name,
        url=f"{HOOK_URL}/{name}",
        events=events,
        enabled=enabled,
        secret_encrypted=encrypt_secret(secret) if secret else None,
    )
    session.add(hook)
    session.commit()
    return hook


def _rows(engine: sa.Engine) -> list[Notification]:
    with Session(engine) as session:
        return list(session.exec(select(Notification).order_by(col(Notification.id))).all())


def _changed(engine: sa.Engine, alert_id: int | None, change: str, now: dt.datetime) -> None:
    with session_scope(write=True, engine=engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        outbox.on_alerts_changed(session, changes=[(alert, change)], now=now)


@pytest.mark.usefixtures("slack_configured")
def test_alert_changes_write_slack_and_webhook_rows(engine: sa.Engine, db: Session) -> None:
    team, other_team, ana = make_team(db), make_team(db), make_user(db)
    integration = factories.integration(db, team.id, slack_channel_id="C0ALERTS")
    alert = make_alert(db, team, integration_id=integration.id)
    fired_hook = _hook(db, team, "pager", ["fired", "resolved"], secret="whsec-pager")
    ack_hook = _hook(db, team, "bot", ["acknowledged"])
    _hook(db, team, "off", ["fired", "acknowledged", "resolved"], enabled=False)
    _hook(db, other_team, "theirs", ["fired", "acknowledged", "resolved"])

    _changed(engine, alert.id, "fired", NOW)
    post, fired = _rows(engine)
    assert (post.idempotency_key, post.channel, post.purpose, post.target, post.status) == (
        f"slack:a{alert.id}:fired",
        "slack",
        "status_update",
        "C0ALERTS",
        "pending",
    )
    assert post.payload["extra"] == {"status": "firing", "alert_url": f"{BASE}/alerts/{alert.id}"}
    assert (fired.channel, fired.purpose, fired.target, fired.next_attempt_at) == (
        "webhook",
        "outgoing_webhook",
        fired_hook.url,
        NOW,
    )
    assert fired.payload["extra"]["event"] == "alert.triggered"
    assert fired.payload["extra"]["delivery_id"] == fired.idempotency_key
    assert "whsec-pager" not in str(fired.payload)

    alert.status, alert.acknowledged_by_id = AlertStatus.ACKNOWLEDGED, ana.id
    db.add(alert)
    db.commit()
    acked_at = NOW + dt.timedelta(minutes=1)
    _changed(engine, alert.id, "acknowledged", acked_at)
    _changed(engine, alert.id, "acknowledged", acked_at)  # the same change again writes nothing new
    update, acked = _rows(engine)[2:]
    assert update.payload["extra"] == {
        "status": "acknowledged",
        "status_by": "Ana",
        "alert_url": f"{BASE}/alerts/{alert.id}",
        "post_key": post.idempotency_key,
    }
    assert (acked.target, acked.payload["extra"]["event"]) == (ack_hook.url, "alert.acknowledged")

    _changed(engine, alert.id, "unacknowledged", acked_at + dt.timedelta(minutes=1))
    _changed(engine, alert.id, "resolved", acked_at + dt.timedelta(minutes=2))
    rest = _rows(engine)[4:]
    assert [(r.channel, r.target) for r in rest] == [
        ("slack", "C0ALERTS"),
        ("slack", "C0ALERTS"),
        ("webhook", fired_hook.url),
    ]
    keys = [r.idempotency_key for r in _rows(engine)]
    assert len(keys) == len(set(keys)) == 7


def test_without_slack_only_webhooks_are_written(
    settings_env: pytest.MonkeyPatch, engine: sa.Engine, db: Session
) -> None:
    team = make_team(db)
    integration = factories.integration(db, team.id, slack_channel_id="C0ALERTS")
    alert = make_alert(db, team, integration_id=integration.id)
    _hook(db, team, "pager", ["fired"])
    _changed(engine, alert.id, "fired", NOW)
    assert [r.channel for r in _rows(engine)] == ["webhook"]
    with pytest.raises(ValueError, match="unknown alert change"):
        _changed(engine, alert.id, "exploded", NOW)


@pytest.mark.usefixtures("slack_configured")
def test_webhook_secrets_are_injected_at_send_time(engine: sa.Engine, db: Session) -> None:
    team = make_team(db)
    alert = make_alert(db, team)
    signed = _hook(db, team, "signed", ["fired"], secret="whsec-signed")
    plain = _hook(db, team, "plain", ["fired"])
    gone = _hook(db, team, "gone", ["fired"])
    _changed(engine, alert.id, "fired", NOW)
    db.delete(gone)
    db.commit()

    batch = prepare(engine)
    extras = {p.message.target: dict(p.message.extra) for p in batch.ready}
    assert extras[signed.url]["signing_secret"] == "whsec-signed"
    assert "signing_secret" not in extras[plain.url] and "webhook_id" not in extras[plain.url]
    assert batch.cancelled == 1
    assert [r.error for r in _rows(engine) if r.status == "cancelled"] == ["webhook subscription removed"]


@pytest.mark.usefixtures("slack_configured")
def test_slack_updates_wait_for_their_post_then_edit_it(engine: sa.Engine, db: Session) -> None:
    team = make_team(db)
    integration = factories.integration(db, team.id, slack_channel_id="C0ALERTS")
    alert = make_alert(db, team, integration_id=integration.id, now=NOW - dt.timedelta(minutes=5))
    _changed(engine, alert.id, "fired", NOW - dt.timedelta(minutes=5))
    post_id = _rows(engine)[0].id
    # The post is being retried (due later): an acknowledgement's update must not post a second message.
    with session_scope(write=True, engine=engine) as session:
        post = session.get(Notification, post_id)
        assert post is not None
        post.next_attempt_at = NOW + dt.timedelta(seconds=30)
    alert.status = AlertStatus.ACKNOWLEDGED
    db.add(alert)
    db.commit()
    _changed(engine, alert.id, "acknowledged", NOW)
    update_id = _rows(engine)[1].id

    assert prepare(engine).deferred == 1
    waiting = reload(engine, Notification, update_id)
    assert (waiting.status, waiting.attempts, waiting.next_attempt_at) == (
        "pending",
        0,
        NOW + dt.timedelta(seconds=32),
    )

    later = NOW + dt.timedelta(seconds=31)
    [first] = prepare(engine, now=later).ready
    assert first.notification_id == post_id
    # Sent later than the acknowledgement: the post already shows the alert as it is.
    assert first.message.extra["status"] == "acknowledged" and "update_of" not in first.message.extra
    record(engine, post_id, DeliveryResult.sent("C0ALERTS:1712345100.000100"), now=later)
    [second] = prepare(engine, now=later + dt.timedelta(seconds=2)).ready
    assert second.notification_id == update_id
    assert second.message.extra["update_of"] == "C0ALERTS:1712345100.000100"
    assert "post_key" not in second.message.extra
    assert timeline(engine, alert.id) == [
        ("notified", "slack", "Slack message to channel C0ALERTS delivered")
    ]
