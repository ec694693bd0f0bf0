"""Escalation rows: created with the alert, moved by acknowledgements, read by the escalation hosts.

The database is the source of truth (see ARCHITECTURE.md, "Durable escalation"). Every change
here happens in the caller's transaction and publishes ``escalation.changed`` with the row's new
due time, which the app's relay forwards to the Ray hosts after commit. Steps themselves are
claimed in :mod:`sentinel_app.services.escalation_steps`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app import bulk, bus
from sentinel_app.domain import escalation_plan as plan
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.domain.escalation_policy import (
    EscalationError,
    PolicySnapshot,
    snapshot_from_json,
    snapshot_to_json,
)
from sentinel_app.domain.wallclock import to_utc
from sentinel_app.models import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertStatus,
    Escalation,
    EscalationState,
    Notification,
    NotificationStatus,
    TeamMembership,
    User,
)
from sentinel_app.services import alert_events, outbox
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import Conflict, NotFound, ValidationFailed
from sentinel_app.services.escalation_policies import load_snapshots

log = logging.getLogger(__name__)

CHANGED = "escalation.changed"
OPEN_STATES = (EscalationState.ACTIVE.value, EscalationState.PAUSED.value)


def shard_of(alert_id: int, shard_count: int) -> int:
    """The host shard that owns an alert's escalation."""
    return alert_id % max(1, shard_count)


def position_of(row: Escalation) -> plan.Position:
    """The row's next step as a domain Position."""
    return plan.Position(row.step_index, row.cycle)


def snapshot_of(row: Escalation) -> PolicySnapshot:
    """The policy snapshot frozen on the row (validated when it was taken)."""
    return snapshot_from_json(row.policy_snapshot, validate=False)


def change_event(row: Escalation, kind: str) -> tuple[str, dict[str, Any], str]:
    """The bus event telling the hosts about a row's new due time."""
    return (
        CHANGED,
        {
            "id": row.id,
            "alert_id": row.alert_id,
            "kind": kind,
            "state": row.state,
            "version": row.version,
            "next_at": row.next_at.isoformat() if row.next_at else None,
        },
        f"alert:{row.alert_id}",
    )


def usable_snapshots(
    session: Session, *, policy_ids: Iterable[int]
) -> tuple[dict[int, PolicySnapshot], set[int]]:
    """Snapshots of the policies that can page now, and the ids of every policy that exists.

    A policy deleted a moment ago (other processes cache routes for a few seconds) is missing
    from both; an invalid one exists but has no snapshot and is logged.
    """
    wanted = set(policy_ids)
    if not wanted:
        return {}, set()
    try:
        found = load_snapshots(session, policy_ids=wanted)
        return found, set(found)
    except EscalationError:
        # One broken policy must not stop other alerts from escalating: load them one by one.
        found, existing = {}, set()
        for policy_id in wanted:
            try:
                one = load_snapshots(session, policy_ids=[policy_id])
            except EscalationError as exc:
                existing.add(policy_id)
                log.error("escalation policy %s is invalid and cannot page: %s", policy_id, exc)
                continue
            found.update(one)
            existing.update(one)
        return found, existing


def start_escalations(
    session: Session,
    *,
    alerts: Sequence[tuple[int, int | None]],
    now: dt.datetime,
    shard_count: int = 1,
    snapshots: Mapping[int, PolicySnapshot] | None = None,
) -> list[int]:
    """Create the escalation rows of newly fired (alert_id, policy_id) pairs in the caller's transaction.

    The policy is snapshotted now: later edits never change these escalations. Alerts without a
    (valid) policy get a timeline note instead, so nobody wonders why no one was paged.
    """
    now = to_utc(now)
    if snapshots is None:
        snapshots, _ = usable_snapshots(session, policy_ids=[p for _, p in alerts if p is not None])
    rows: list[dict[str, Any]] = []
    unpaged: list[tuple[int, str]] = []
    for alert_id, policy_id in alerts:
        snapshot = snapshots.get(policy_id) if policy_id is not None else None
        if snapshot is None:
            why = (
                "no escalation policy" if policy_id is None else f"escalation policy {policy_id} is unusable"
            )
            unpaged.append((alert_id, why))
            continue
        decision = plan.start(snapshot, now)
        rows.append(
            {
                "alert_id": alert_id,
                "policy_id": policy_id,
                "policy_snapshot": snapshot_to_json(snapshot),
                "state": decision.state,
                "step_index": decision.next.step_index,
                "cycle": decision.next.cycle,
                "next_at": decision.next_at,
                "version": 0,
                "shard": shard_of(alert_id, shard_count),
                "last_step_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    created: list[int] = []
    if rows:
        table = Escalation.__table__  # type: ignore[attr-defined]
        inserted = bulk.insert_rows(session, table, rows, returning=("id", "alert_id"))
        id_of = {row.alert_id: row.id for row in inserted}
        events: list[tuple[str, dict[str, Any], str | None]] = []
        for values in rows:
            alert_id = values["alert_id"]
            created.append(id_of[alert_id])
            data = {
                "id": id_of[alert_id],
                "alert_id": alert_id,
                "kind": "start",
                "state": values["state"],
                "version": 0,
                "next_at": values["next_at"].isoformat() if values["next_at"] else None,
            }
            events.append((CHANGED, data, f"alert:{alert_id}"))
        bus.publish_many(session, events)
    if unpaged:
        bulk.insert_rows(
            session,
            AlertEvent.__table__,  # type: ignore[attr-defined]
            [
                {
                    "alert_id": alert_id,
                    "kind": AlertEventKind.ESCALATED.value,
                    "actor_user_id": None,
                    "actor": "escalation",
                    "channel": "system",
                    "note": f"Nobody will be paged: {why}.",
                    "payload": {},
                    "created_at": now,
                }
                for alert_id, why in unpaged
            ],
        )
    return created


def get_escalation(session: Session, *, alert_id: int, for_update: bool = False) -> Escalation | None:
    """The escalation row of an alert, if it has one."""
    query = select(Escalation).where(Escalation.alert_id == alert_id)
    return session.exec(query.with_for_update() if for_update else query).first()


def _save(session: Session, row: Escalation, decision: plan.Decision, now: dt.datetime, kind: str) -> None:
    row.step_index, row.cycle = decision.next.step_index, decision.next.cycle
    row.state, row.next_at = decision.state, decision.next_at
    row.version += 1
    row.updated_at = now
    session.add(row)
    session.flush()
    bus.publish_many(session, [change_event(row, kind)])


def cancel_pending(session: Session, *, alert_id: int, reason: str, now: dt.datetime) -> int:
    """Cancel the alert's outbox rows that are not sent yet (delayed personal-rule steps)."""
    table = Notification.__table__  # type: ignore[attr-defined]
    result = session.execute(
        sa.update(table)
        .where(
            table.c.alert_id == alert_id,
            table.c.purpose == "alert",
            table.c.status == NotificationStatus.PENDING.value,
        )
        .values(status=NotificationStatus.CANCELLED.value, error=reason, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def on_transition(
    session: Session,
    *,
    alert: Alert,
    change: Transition,
    now: dt.datetime,
    silenced_until_before: dt.datetime | None = None,
) -> None:
    """Move the alert's escalation after a committed-together lifecycle change.

    Acknowledge pauses (until the re-escalation time), unacknowledge starts over, resolve
    finishes; lifting a silence early lets a step deferred by it run at once.
    """
    assert alert.id is not None
    now = to_utc(now)
    row = get_escalation(session, alert_id=alert.id, for_update=True)
    if change in (Transition.ACKNOWLEDGE, Transition.RESOLVE):
        cancel_pending(session, alert_id=alert.id, reason=f"alert {change.value}d", now=now)
    if row is None:
        return
    snapshot = snapshot_of(row)
    position = position_of(row)
    if change is Transition.ACKNOWLEDGE:
        decision = plan.advance(snapshot, position, now, AlertStatus.ACKNOWLEDGED.value)
    elif change is Transition.UNACKNOWLEDGE:
        decision = plan.on_unacknowledged(snapshot, position, now)
    elif change is Transition.RESOLVE:
        decision = plan.advance(snapshot, position, now, AlertStatus.RESOLVED.value)
    elif change is Transition.UNSILENCE:
        held = row.next_at
        if held is None or silenced_until_before is None or row.state != EscalationState.ACTIVE:
            return
        if to_utc(held) != to_utc(silenced_until_before):
            return
        decision = plan.Decision(plan.Event.STEP, row.state, position, now)
    else:
        return
    _save(session, row, decision, now, change.value)


def escalate_now(session: Session, *, alert_id: int, actor: Actor, now: dt.datetime) -> Escalation:
    """Skip the wait: make the alert's next acting step due now (the hosts run it at once)."""
    now = to_utc(now)
    alert = session.exec(select(Alert).where(Alert.id == alert_id).with_for_update()).first()
    if alert is None:
        raise NotFound(f"alert {alert_id} not found", field="alert_id")
    if alert.status != AlertStatus.FIRING:
        raise Conflict(
            f"cannot escalate: the alert is {alert.status} (status: {alert.status})", field="status"
        )
    row = get_escalation(session, alert_id=alert_id, for_update=True)
    if row is None:
        raise Conflict("cannot escalate: the alert has no escalation policy", field="escalation_policy_id")
    decision = plan.escalate_now(snapshot_of(row), position_of(row), now)
    if decision.finished:
        raise Conflict("cannot escalate: no step is left to run", field="status")
    _save(session, row, decision, now, "escalate_now")
    session.add(
        AlertEvent(
            alert_id=alert_id,
            kind=AlertEventKind.ESCALATED,
            actor_user_id=actor.user_id,
            actor=actor.label,
            channel=actor.channel,
            note="Escalated by hand: the next step runs now.",
            payload={"step_index": decision.next.step_index, "cycle": decision.next.cycle},
            created_at=now,
        )
    )
    alert_events.publish_updated(session, alert, "escalate")
    outbox.on_alerts_changed(session, changes=[(alert, "escalated")], now=now)
    return row


def reassign(session: Session, *, alert_id: int, user_id: int, actor: Actor, now: dt.datetime) -> Alert:
    """Give an open alert to another member of its team (recorded on the timeline)."""
    now = to_utc(now)
    alert = session.exec(select(Alert).where(Alert.id == alert_id).with_for_update()).first()
    if alert is None:
        raise NotFound(f"alert {alert_id} not found", field="alert_id")
    if alert.status == AlertStatus.RESOLVED:
        raise Conflict("cannot reassign a resolved alert (status: resolved)", field="status")
    user = session.get(User, user_id)
    member = session.exec(
        select(TeamMembership).where(
            TeamMembership.team_id == alert.team_id, TeamMembership.user_id == user_id
        )
    ).first()
    if user is None or not user.is_active or member is None:
        raise ValidationFailed("the assignee must be an active member of the alert's team", field="user_id")
    set_assignee(session, alert=alert, user=user, actor=actor, now=now, reason="reassigned")
    return alert


def set_assignee(
    session: Session, *, alert: Alert, user: User, actor: Actor, now: dt.datetime, reason: str
) -> None:
    """Record `user` as the alert's owner, with a timeline entry and a bus event."""
    assert alert.id is not None
    if alert.assigned_to_id == user.id:
        return
    alert.assigned_to_id, alert.updated_at = user.id, now
    session.add(alert)
    session.add(
        AlertEvent(
            alert_id=alert.id,
            kind=AlertEventKind.ASSIGNED,
            actor_user_id=actor.user_id,
            actor=actor.label,
            channel=actor.channel,
            note=f"Assigned to {user.name} ({reason}).",
            payload={"user_id": user.id},
            created_at=now,
        )
    )
    alert_events.publish_updated(session, alert, "assign", assigned_to_id=user.id)


# --- what the hosts read ----------------------------------------------------------------------


@dataclass(frozen=True)
class DueRow:
    """An open escalation as a host tracks it: which alert, when it is due, at which version."""

    id: int
    alert_id: int
    next_at: dt.datetime | None
    version: int


def _shard_filter(shard: int, shard_count: int) -> Any:
    return (col(Escalation.alert_id) % max(1, shard_count)) == shard


def open_rows(
    session: Session, *, shard: int, shard_count: int, after_id: int = 0, limit: int = 10_000
) -> list[DueRow]:
    """A page (by id) of the shard's escalations that still have a due time, for rehydration."""
    rows = session.exec(
        select(Escalation.id, Escalation.alert_id, Escalation.next_at, Escalation.version)
        .where(
            col(Escalation.state).in_(OPEN_STATES),
            col(Escalation.next_at).is_not(None),
            col(Escalation.id) > after_id,
            _shard_filter(shard, shard_count),
        )
        .order_by(col(Escalation.id))
        .limit(limit)
    ).all()
    return [DueRow(int(r[0] or 0), r[1], r[2], r[3]) for r in rows]


def overdue_rows(
    session: Session, *, shard: int, shard_count: int, before: dt.datetime, limit: int = 500
) -> list[DueRow]:
    """The shard's escalations due before `before` that no timer has run (the sweeper's work list).

    On PostgreSQL rows another worker is claiming right now are skipped (SKIP LOCKED).
    """
    rows = session.exec(
        select(Escalation.id, Escalation.alert_id, Escalation.next_at, Escalation.version)
        .where(
            col(Escalation.state).in_(OPEN_STATES),
            col(Escalation.next_at) < to_utc(before),
            _shard_filter(shard, shard_count),
        )
        .order_by(col(Escalation.next_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return [DueRow(int(r[0] or 0), r[1], r[2], r[3]) for r in rows]
