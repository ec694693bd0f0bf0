"""Escalations end to end in one process: the host core with a fast-forwarded clock on a real database.

The Ray-hosted version of the same core is exercised in tests/test_escalation_hosts.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlmodel import Session, col, select

from actors.clock import ManualClock
from actors.escalation_host import EscalationCore
from sentinel_app.db import session_scope
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.models import Alert, AlertEvent, Escalation, Notification, NotificationRule
from sentinel_app.services import alerts, escalations
from tests.escalation_support import ACTOR, crew, fire, messages, outbox, policy

pytestmark = pytest.mark.asyncio

# Sunday 22:00 in New York: outside a weekday office-hours window.
NIGHT = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
# Monday 10:00 in New York: inside it.
OFFICE = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
WINDOW = {"timezone": "America/New_York", "weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}
MIN = dt.timedelta(minutes=1)


@pytest_asyncio.fixture
async def core_at(engine: sa.Engine) -> AsyncIterator[Any]:
    cores: list[EscalationCore] = []

    def make(start: dt.datetime, **kw: Any) -> EscalationCore:
        core = EscalationCore(
            engine=engine, clock=ManualClock(start), sweep_seconds=None, grace_seconds=0, **kw
        )
        cores.append(core)
        return core

    yield make
    for core in cores:
        await core.stop()


async def _sync(core: EscalationCore, engine: sa.Engine) -> None:
    core.deliver(messages(engine))
    await core.idle()


def _who(engine: sa.Engine, crew_users: dict[str, int], alert_id: int) -> list[tuple[dt.timedelta, str]]:
    names = {v: k for k, v in crew_users.items()}
    rows = outbox(engine, alert_id)
    start = rows[0][0] if rows else None
    return [(at - start, names.get(user or 0, "-")) for at, user, _, _ in rows] if start else []


@pytest.mark.parametrize(
    ("start", "window_delay", "expected"),
    [
        # Outside the window the gate is skipped at once, so B follows A's 5-minute wait.
        (NIGHT, 3, [(0, "Ana"), (5, "Bo"), (15, "Ana"), (20, "Bo")]),
        # Inside it the gate waits its own delay (3 min) before B.
        (OFFICE, 3, [(0, "Ana"), (8, "Bo"), (18, "Ana"), (26, "Bo")]),
        # 13:30 UTC on the day New York springs forward is 09:30 EDT (inside); on EST it would be outside.
        (dt.datetime(2026, 3, 8, 13, 30, tzinfo=dt.UTC), 3, [(0, "Ana"), (8, "Bo"), (18, "Ana"), (26, "Bo")]),
    ],
)
async def test_waits_windows_and_repeats_page_exactly_on_time(
    engine: sa.Engine, db: Session, core_at: Any, start: dt.datetime, window_delay: int, expected: list[Any]
) -> None:
    people = crew(db, "Ana", "Bo", now=start)
    sunday_window = {**WINDOW, "weekdays": [0, 1, 2, 3, 4, 6]} if start.month == 3 else WINDOW
    pid = policy(
        db,
        people.team_id,
        [
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Ana"]]}, "delay_minutes": 5},
            {"kind": "time_window", "config": sunday_window, "delay_minutes": window_delay},
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Bo"]]}, "delay_minutes": 10},
        ],
        repeat_count=1,
    )
    alert_id = fire(engine, people.team_id, pid, now=start)
    core = core_at(start)
    await _sync(core, engine)
    await core.advance_to(start + 3 * dt.timedelta(hours=1))
    assert [(int(d / MIN), who) for d, who in _who(engine, people.users, alert_id)] == expected
    with Session(engine) as session:
        row = session.exec(select(Escalation).where(Escalation.alert_id == alert_id)).one()
        assert row.state == "done" and row.next_at is None
        notes = [e.note for e in session.exec(select(AlertEvent).where(AlertEvent.alert_id == alert_id))]
    skipped = [n for n in notes if "skipped" in n]
    assert len(skipped) == (2 if start == NIGHT else 0)
    assert any("Escalation finished" in n for n in notes)
    # Re-running every timer again changes nothing: each step ran once.
    await core.sweep_once()
    await core.idle()
    assert len(outbox(engine, alert_id)) == len(expected)


async def test_acknowledge_stops_and_unacknowledge_restarts(
    engine: sa.Engine, db: Session, core_at: Any
) -> None:
    people = crew(db, "Ana", "Bo", now=NIGHT)
    pid = policy(
        db,
        people.team_id,
        [
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Ana"]]}, "delay_minutes": 5},
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Bo"]]}, "delay_minutes": 5},
        ],
        repeat_count=1,
    )
    alert_id = fire(engine, people.team_id, pid, now=NIGHT)
    core = core_at(NIGHT)
    await _sync(core, engine)
    await core.advance_to(NIGHT + 2 * MIN)
    with session_scope(write=True, engine=engine) as session:
        alerts.transition(
            session, alert_id=alert_id, transition=Transition.ACKNOWLEDGE, actor=ACTOR, now=NIGHT + 2 * MIN
        )
    await _sync(core, engine)
    await core.advance_to(NIGHT + 60 * MIN)
    assert [who for _, who in _who(engine, people.users, alert_id)] == ["Ana"]
    with session_scope(write=True, engine=engine) as session:
        alerts.transition(
            session, alert_id=alert_id, transition=Transition.UNACKNOWLEDGE, actor=ACTOR, now=NIGHT + 60 * MIN
        )
    await _sync(core, engine)
    await core.advance_to(NIGHT + 61 * MIN)
    rows = outbox(engine, alert_id)
    assert [r[1] for r in rows] == [people.users["Ana"], people.users["Ana"]]
    # The restart is a new run: its cycle numbers (and so its keys) never reuse the first run's.
    assert ":c0:" in rows[0][3] and ":c2:" in rows[1][3]


async def test_reescalates_when_acknowledged_too_long(engine: sa.Engine, db: Session, core_at: Any) -> None:
    people = crew(db, "Ana", "Bo", now=NIGHT)
    pid = policy(
        db,
        people.team_id,
        [
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Ana"]]}, "delay_minutes": 5},
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Bo"]]}},
        ],
        reescalate_after_ack_minutes=30,
    )
    alert_id = fire(engine, people.team_id, pid, now=NIGHT)
    core = core_at(NIGHT)
    await _sync(core, engine)
    with session_scope(write=True, engine=engine) as session:
        alerts.transition(
            session, alert_id=alert_id, transition=Transition.ACKNOWLEDGE, actor=ACTOR, now=NIGHT + MIN
        )
    await _sync(core, engine)
    await core.advance_to(NIGHT + 40 * MIN)
    assert [(int(d / MIN), who) for d, who in _who(engine, people.users, alert_id)] == [
        (0, "Ana"),
        (31, "Ana"),
        (36, "Bo"),
    ]
    with Session(engine) as session:
        assert session.get(Alert, alert_id).status == "firing"  # type: ignore[union-attr]


async def test_escalate_now_silence_and_resolve(engine: sa.Engine, db: Session, core_at: Any) -> None:
    people = crew(db, "Ana", "Bo", "Cy", now=NIGHT)
    pid = policy(
        db,
        people.team_id,
        [
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Ana"]]}, "delay_minutes": 30},
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Bo"]]}, "delay_minutes": 30},
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Cy"]]}},
        ],
    )
    alert_id = fire(engine, people.team_id, pid, now=NIGHT)
    core = core_at(NIGHT)
    await _sync(core, engine)
    # Someone skips the 30-minute wait.
    with session_scope(write=True, engine=engine) as session:
        escalations.escalate_now(session, alert_id=alert_id, actor=ACTOR, now=NIGHT + 2 * MIN)
    await _sync(core, engine)
    await core.advance_to(NIGHT + 2 * MIN)
    # A silence holds the next step until it ends.
    with session_scope(write=True, engine=engine) as session:
        alerts.transition(
            session,
            alert_id=alert_id,
            transition=Transition.SILENCE,
            actor=ACTOR,
            now=NIGHT + 3 * MIN,
            silence_for=dt.timedelta(hours=1),
        )
    await core.advance_to(NIGHT + 62 * MIN)
    assert [who for _, who in _who(engine, people.users, alert_id)] == ["Ana", "Bo"]
    await core.advance_to(NIGHT + 64 * MIN)
    assert [(int(d / MIN), who) for d, who in _who(engine, people.users, alert_id)] == [
        (0, "Ana"),
        (2, "Bo"),
        (63, "Cy"),
    ]
    with session_scope(write=True, engine=engine) as session:
        alerts.transition(
            session, alert_id=alert_id, transition=Transition.RESOLVE, actor=ACTOR, now=NIGHT + 65 * MIN
        )
        with pytest.raises(escalations.Conflict):
            escalations.escalate_now(session, alert_id=alert_id, actor=ACTOR, now=NIGHT + 65 * MIN)


async def test_resolve_cancels_delayed_personal_rules_and_assigns(
    engine: sa.Engine, db: Session, core_at: Any
) -> None:
    people = crew(db, "Ana", now=NIGHT)
    ana = people.users["Ana"]
    db.add(NotificationRule(user_id=ana, method="email", delay_minutes=10))
    db.commit()
    pid = policy(db, people.team_id, [{"kind": "notify_users", "targets": {"user_ids": [ana]}}])
    alert_id = fire(engine, people.team_id, pid, now=NIGHT)
    core = core_at(NIGHT)
    await _sync(core, engine)
    with Session(engine) as session:
        rows = session.exec(
            select(Notification)
            .where(Notification.alert_id == alert_id)
            .order_by(col(Notification.next_attempt_at))
        ).all()
        assert [(r.status, r.next_attempt_at - NIGHT) for r in rows] == [  # type: ignore[operator]
            ("pending", dt.timedelta(0)),
            ("pending", 10 * MIN),
        ]
        assert session.get(Alert, alert_id).assigned_to_id == ana  # type: ignore[union-attr]
    with session_scope(write=True, engine=engine) as session:
        alerts.transition(
            session, alert_id=alert_id, transition=Transition.RESOLVE, actor=ACTOR, now=NIGHT + MIN
        )
    with Session(engine) as session:
        statuses = sorted(
            r.status for r in session.exec(select(Notification).where(Notification.alert_id == alert_id))
        )
    assert statuses == ["cancelled", "cancelled"]


async def test_round_robin_takes_turns_across_alerts(engine: sa.Engine, db: Session, core_at: Any) -> None:
    people = crew(db, "Ana", "Bo", "Cy", now=NIGHT)
    pid = policy(
        db,
        people.team_id,
        [
            {"kind": "round_robin", "targets": {"user_ids": [people.users[n] for n in ("Ana", "Bo", "Cy")]}},
        ],
    )
    ids = [fire(engine, people.team_id, pid, now=NIGHT, key=f"k{i}") for i in range(4)]
    core = core_at(NIGHT)
    for alert_id in ids:  # one after another, so the turn order is defined
        core.deliver([m for m in messages(engine) if m["alert_id"] == alert_id])
        await core.idle()
    names = {v: k for k, v in people.users.items()}
    assert [names[outbox(engine, a)[0][1]] for a in ids] == ["Ana", "Bo", "Cy", "Ana"]  # type: ignore[index]


async def test_schedule_step_pages_whoever_is_on_call(engine: sa.Engine, db: Session, core_at: Any) -> None:
    from sentinel_app.services import schedules

    people = crew(db, "Ana", "Bo", now=NIGHT)
    with session_scope(write=True, engine=engine) as session:
        schedule = schedules.create_schedule(session, team_id=people.team_id, name="Primary", timezone="UTC")
        schedules.create_layer(
            session,
            schedule=schedule,
            fields={
                "name": "Days",
                "kind": "daily",
                "start_at": "2026-11-01T00:00:00Z",
                "participants": [people.users["Bo"], people.users["Ana"]],
            },
        )
        schedule_id = schedule.id
    on_call = schedules_on_call(engine, schedule_id, NIGHT)
    pid = policy(
        db, people.team_id, [{"kind": "notify_schedule", "targets": {"schedule_ids": [schedule_id]}}]
    )
    alert_id = fire(engine, people.team_id, pid, now=NIGHT)
    core = core_at(NIGHT)
    await _sync(core, engine)
    rows = outbox(engine, alert_id)
    assert [r[1] for r in rows] == on_call
    with Session(engine) as session:
        assert session.get(Alert, alert_id).assigned_to_id == on_call[0]  # type: ignore[union-attr]


def schedules_on_call(engine: sa.Engine, schedule_id: int | None, at: dt.datetime) -> list[int]:
    """Who the schedule engine says is on call (the expected targets)."""
    from sentinel_app.services import schedules

    assert schedule_id is not None
    with Session(engine) as session:
        return [o.user_id for o in schedules.on_call_at(session, schedule_id=schedule_id, at=at)]


async def test_a_lost_race_writes_nothing(engine: sa.Engine, db: Session) -> None:
    from sentinel_app.services.escalation_steps import run_step

    people = crew(db, "Ana", now=NIGHT)
    pid = policy(
        db, people.team_id, [{"kind": "notify_users", "targets": {"user_ids": [people.users["Ana"]]}}]
    )
    alert_id = fire(engine, people.team_id, pid, now=NIGHT)
    with Session(engine) as session:
        row = session.exec(select(Escalation).where(Escalation.alert_id == alert_id)).one()
        stale_version = row.version
        assert row.id is not None
        escalation_id = row.id
    with session_scope(write=True, engine=engine) as session:
        first = run_step(session, escalation_id=escalation_id, now=NIGHT, expected_version=stale_version)
    with session_scope(write=True, engine=engine) as session:
        second = run_step(session, escalation_id=escalation_id, now=NIGHT, expected_version=stale_version)
    assert first.claimed and not second.claimed
    assert len(outbox(engine, alert_id)) == 1
