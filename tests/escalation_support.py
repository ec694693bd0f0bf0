"""Building blocks for escalation tests: a team with reachable people, policies, alerts, outbox reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app.db import session_scope
from sentinel_app.ingest.normalized import NormalizedAlert
from sentinel_app.models import (
    ContactMethod,
    Escalation,
    EscalationPolicy,
    EscalationStep,
    Notification,
    NotificationRule,
    Role,
    TeamMembership,
)
from sentinel_app.services import alerts
from sentinel_app.services.actor import Actor
from tests import factories

ACTOR = Actor(label="tester", channel="api")


@dataclass
class Crew:
    """A team whose members can each be reached by email at once."""

    team_id: int
    users: dict[str, int]


def crew(session: Session, *names: str, now: dt.datetime) -> Crew:
    """Commit a team whose members each have one verified email and one rule: email at once."""
    team = factories.team(session)
    assert team.id is not None
    ids: dict[str, int] = {}
    for name in names:
        person = factories.user(session, name=name, email=f"{name.lower()}-{team.id}@example.com")
        assert person.id is not None
        ids[name] = person.id
        session.add(TeamMembership(team_id=team.id, user_id=person.id, role=Role.RESPONDER))
        contact = ContactMethod(user_id=person.id, kind="email", value=person.email, verified_at=now)
        session.add(contact)
        session.flush()
        session.add(
            NotificationRule(user_id=person.id, method="email", delay_minutes=0, contact_method_id=contact.id)
        )
    session.commit()
    return Crew(team.id, ids)


def policy(
    session: Session,
    team_id: int,
    steps: list[dict[str, Any]],
    *,
    repeat_count: int = 0,
    reescalate_after_ack_minutes: int | None = None,
    name: str = "Policy",
) -> int:
    """Commit a policy with these steps (dicts of EscalationStep fields) and return its id."""
    row = EscalationPolicy(
        team_id=team_id,
        name=name,
        repeat_count=repeat_count,
        reescalate_after_ack_minutes=reescalate_after_ack_minutes,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    for position, step in enumerate(steps):
        session.add(EscalationStep(policy_id=row.id, position=position, **step))
    session.commit()
    return row.id


def fire(engine: sa.Engine, team_id: int, policy_id: int | None, *, now: dt.datetime, key: str = "k") -> int:
    """Open an alert through the ingest service (which creates its escalation) and return its id."""
    with session_scope(write=True, engine=engine) as session:
        result = alerts.upsert_firing(
            session,
            team_id=team_id,
            integration_id=None,
            escalation_policy_id=policy_id,
            alert=NormalizedAlert(action="trigger", dedup_key=key, title=f"Disk full {key}"),
            actor=ACTOR,
            now=now,
        )
    assert result.alert_id is not None
    return result.alert_id


def outbox(engine: sa.Engine, alert_id: int | None = None) -> list[tuple[dt.datetime, int | None, str, str]]:
    """(created_at, user_id, channel, key) of every outbox row, oldest first."""
    with Session(engine) as session:
        query = select(Notification).order_by(col(Notification.created_at), col(Notification.id))
        if alert_id is not None:
            query = query.where(Notification.alert_id == alert_id)
        return [(n.created_at, n.user_id, n.channel, n.idempotency_key) for n in session.exec(query)]


def messages(engine: sa.Engine) -> list[dict[str, Any]]:
    """What the relay would tell the hosts about every escalation row right now."""
    with Session(engine) as session:
        return [
            {
                "alert_id": r.alert_id,
                "id": r.id,
                "kind": "sync",
                "version": r.version,
                "next_at": r.next_at.isoformat() if r.next_at else None,
            }
            for r in session.exec(select(Escalation))
        ]
