"""Alert services: silences lift by themselves, and every change is announced on the bus after commit."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from sentinel_app import bus
from sentinel_app.db import session_scope
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.ingest.normalized import NormalizedAlert
from sentinel_app.models import AlertEvent
from sentinel_app.services import alerts
from tests import factories

NOW = dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)
ACTOR = alerts.Actor(label="tester", channel="api")


def _open(engine: sa.Engine, team_id: int, key: str = "k") -> int:
    with session_scope(write=True, engine=engine) as session:
        result = alerts.upsert_firing(
            session, team_id=team_id, integration_id=None, escalation_policy_id=None,
            alert=NormalizedAlert(action="trigger", dedup_key=key, title="Queue backlog"), actor=ACTOR, now=NOW)
    assert result.alert_id is not None
    return result.alert_id


def test_expired_silences_are_lifted_once_with_a_timeline_entry(engine: sa.Engine, db: Session) -> None:
    team = factories.team(db)
    assert team.id is not None
    short, long = _open(engine, team.id, "a"), _open(engine, team.id, "b")
    with session_scope(write=True, engine=engine) as session:
        alerts.transition(session, alert_id=short, transition=Transition.SILENCE, actor=ACTOR, now=NOW,
                          silence_for=dt.timedelta(minutes=10))
        alerts.transition(session, alert_id=long, transition=Transition.SILENCE, actor=ACTOR, now=NOW,
                          silence_for=dt.timedelta(hours=2))
    later = NOW + dt.timedelta(minutes=11)
    with session_scope(write=True, engine=engine) as session:
        assert alerts.expire_silences(session, now=later) == [short]
    with session_scope(write=True, engine=engine) as session:
        assert alerts.expire_silences(session, now=later) == []
    with Session(engine) as session:
        kinds = session.exec(select(AlertEvent.kind).where(AlertEvent.alert_id == short)).all()
        assert list(kinds) == ["created", "escalated", "silenced", "unsilenced"]  # "escalated": nobody to page
        assert alerts.get_alert(session, alert_id=long).silenced_until == NOW + dt.timedelta(hours=2)


@pytest.mark.asyncio
async def test_ingest_and_transitions_publish_after_commit(engine: sa.Engine, db: Session, db_url: str) -> None:
    team = factories.team(db)
    assert team.id is not None
    event_bus = bus.create_bus(db_url)
    bus.set_bus(event_bus)
    await event_bus.start()
    try:
        async with event_bus.subscribe({"alert.created", "alert.updated"}) as events:
            alert_id = await asyncio.to_thread(_open, engine, team.id)
            with pytest.raises(RuntimeError), session_scope(write=True, engine=engine) as session:
                alerts.transition(session, alert_id=alert_id, transition=Transition.RESOLVE, actor=ACTOR, now=NOW)
                raise RuntimeError("rolled back: nothing may be announced")
            with session_scope(write=True, engine=engine) as session:
                alerts.transition(session, alert_id=alert_id, transition=Transition.ACKNOWLEDGE, actor=ACTOR, now=NOW)
            created = await asyncio.wait_for(anext(aiter(events)), 10)
            updated = await asyncio.wait_for(anext(aiter(events)), 10)
    finally:
        await event_bus.stop()
        bus.set_bus(None)
    assert (created.kind, created.key, created.data["id"]) == ("alert.created", f"alert:{alert_id}", alert_id)
    assert (updated.kind, updated.data["status"], updated.data["change"]) == ("alert.updated", "acknowledged",
                                                                            "acknowledge")
