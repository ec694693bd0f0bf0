"""Running one escalation step: claim it by compare-and-set, then write its outbox rows and timeline.

Everything a step does commits in one transaction with the claim: the row's new position and due
time (``version`` bumped only if it still had the version we read), one outbox row per
(user, channel, address) with a unique idempotency key, timeline events and the assignment. A
worker that loses the race writes nothing. See ARCHITECTURE.md, "Durable escalation".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from sentinel_app.domain import escalation_plan as plan
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.domain.notification_plan import expand_rules, idempotency_key
from sentinel_app.domain.wallclock import to_utc
from sentinel_app.models import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertStatus,
    ContactMethod,
    Escalation,
    EscalationState,
    EscalationStep,
    PushDevice,
    Role,
    StepKind,
    TeamMembership,
    User,
)
from sentinel_app.services import alert_events, notification_rules, outbox
from sentinel_app.services.actor import Actor
from sentinel_app.services.contacts import usable_contact_methods
from sentinel_app.services.devices import active_devices
from sentinel_app.services.escalations import position_of, snapshot_of

log = logging.getLogger(__name__)

ESCALATION = Actor(label="escalation", channel="escalation")
# Given schedule ids and an instant, who is on call in each (in schedule order).
OnCallLookup = Callable[[Sequence[int], dt.datetime], Mapping[int, Sequence[int]]]


@dataclass
class StepResult:
    """What one claim attempt did."""

    escalation_id: int
    alert_id: int
    claimed: bool
    event: str = "noop"
    state: str = ""
    next_at: dt.datetime | None = None
    version: int = 0
    notifications: int = 0
    paged_user_ids: list[int] = field(default_factory=list)

    @property
    def due_again(self) -> bool:
        """Whether the next step is already due (zero-delay steps): claim again at once."""
        return self.claimed and self.next_at is not None and self.state == EscalationState.ACTIVE


def db_on_call(session: Session) -> OnCallLookup:
    """An on-call lookup computed from the database (when no schedule actor is at hand)."""
    from sentinel_app.services.schedules import on_call_at

    def lookup(schedule_ids: Sequence[int], at: dt.datetime) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for schedule_id in schedule_ids:
            try:
                found[schedule_id] = [o.user_id for o in on_call_at(session, schedule_id=schedule_id, at=at)]
            except Exception as exc:  # a deleted schedule pages nobody; the timeline says so
                log.warning("on-call lookup of schedule %s failed: %s", schedule_id, exc)
                found[schedule_id] = []
        return found

    return lookup


def pending_schedule_ids(row: Escalation) -> list[int]:
    """Schedules the row's next step pages, so a host can ask its schedule actors beforehand."""
    snapshot = snapshot_of(row)
    if row.step_index < len(snapshot.steps):
        return list(snapshot.steps[row.step_index].schedule_ids)
    return list(snapshot.steps[0].schedule_ids) if snapshot.steps else []


def _read_row(session: Session, escalation_id: int) -> Escalation | None:
    return session.exec(
        select(Escalation).where(Escalation.id == escalation_id).with_for_update(skip_locked=True)
    ).first()


def run_step(
    session: Session,
    *,
    escalation_id: int,
    now: dt.datetime,
    on_call: OnCallLookup | None = None,
    expected_version: int | None = None,
) -> StepResult:
    """Claim and run the escalation's due step, if any, in the session's transaction.

    Returns ``claimed=False`` (and writes nothing) when the row is not due, is being claimed by
    another worker, or changed since `expected_version`.
    """
    now = to_utc(now)
    row = _read_row(session, escalation_id)
    if row is None:
        return StepResult(escalation_id, 0, claimed=False)
    result = StepResult(
        escalation_id, row.alert_id, claimed=False, state=row.state, next_at=row.next_at, version=row.version
    )
    if expected_version is not None and row.version != expected_version:
        return result
    alert = session.get(Alert, row.alert_id)
    if alert is None:
        return result
    snapshot = snapshot_of(row)
    position = position_of(row)
    silenced = alert.silenced_until is not None and to_utc(alert.silenced_until) > now
    due = row.next_at is not None and to_utc(row.next_at) <= now
    if silenced and due and row.state == EscalationState.ACTIVE and alert.status == AlertStatus.FIRING:
        # A silenced alert pages nobody: hold the step until the silence ends.
        decision = plan.Decision(plan.Event.NOOP, row.state, position, alert.silenced_until)
        event_kind = "silenced"
    else:
        decision = plan.tick(
            snapshot, position, state=row.state, due_at=row.next_at, now=now, alert_status=alert.status
        )
        if decision.event is plan.Event.NOOP:
            return result
        event_kind = decision.event.value
    if not _compare_and_set(session, row, decision, now):
        return result
    result.claimed, result.event = True, event_kind
    result.state, result.next_at, result.version = decision.state, decision.next_at, row.version + 1
    _refresh(row, decision, now)
    if decision.event is plan.Event.REESCALATE:
        _reescalate(session, alert, snapshot.reescalate_after_ack_minutes or 0, now)
    if decision.ran is not None:
        _run_actions(session, alert, decision, now, on_call or db_on_call(session), result)
        if result.paged_user_ids:
            outbox.on_alerts_changed(session, changes=[(alert, "escalated")], now=now)
    if decision.finished and alert.status == AlertStatus.FIRING:
        _timeline(session, alert, "Escalation finished: every step ran and nobody acknowledged.", now)
    # No escalation.changed here: the host that ran the step re-arms its own timer, and any
    # other host set finds the new version when its timer or sweeper looks (claims are CAS).
    return result


def _compare_and_set(session: Session, row: Escalation, decision: plan.Decision, now: dt.datetime) -> bool:
    table = Escalation.__table__  # type: ignore[attr-defined]
    values: dict[str, Any] = {
        "step_index": decision.next.step_index,
        "cycle": decision.next.cycle,
        "state": decision.state,
        "next_at": decision.next_at,
        "version": row.version + 1,
        "updated_at": now,
    }
    if decision.ran is not None:
        values["last_step_at"] = now
    updated = session.execute(
        sa.update(table).where(table.c.id == row.id, table.c.version == row.version).values(**values)
    )
    return bool(getattr(updated, "rowcount", 0) == 1)


def _refresh(row: Escalation, decision: plan.Decision, now: dt.datetime) -> None:
    # Mirror the compare-and-set UPDATE on the ORM object as already-committed values, so it
    # is not flushed a second time.
    for key, value in (
        ("step_index", decision.next.step_index),
        ("cycle", decision.next.cycle),
        ("state", decision.state),
        ("next_at", decision.next_at),
        ("version", row.version + 1),
        ("updated_at", now),
    ):
        set_committed_value(row, key, value)


def _timeline(
    session: Session,
    alert: Alert,
    note: str,
    now: dt.datetime,
    *,
    kind: AlertEventKind = AlertEventKind.ESCALATED,
    payload: dict[str, Any] | None = None,
) -> None:
    assert alert.id is not None
    session.add(
        AlertEvent(
            alert_id=alert.id,
            kind=kind,
            actor=ESCALATION.label,
            channel=ESCALATION.channel,
            note=note,
            payload=payload or {},
            created_at=now,
        )
    )


def _publish_alert(session: Session, alert: Alert, change: str) -> None:
    alert_events.publish_updated(session, alert, change, assigned_to_id=alert.assigned_to_id)


def _reescalate(session: Session, alert: Alert, minutes: int, now: dt.datetime) -> None:
    """The acknowledgement timed out: the alert fires again (the escalation restarts with it)."""
    alert.status, alert.acknowledged_at, alert.acknowledged_by_id = AlertStatus.FIRING, None, None
    alert.updated_at = now
    session.add(alert)
    _timeline(
        session,
        alert,
        f"Acknowledged but not resolved after {minutes} min: escalating again.",
        now,
        kind=AlertEventKind.UNACKNOWLEDGED,
    )
    _publish_alert(session, alert, Transition.UNACKNOWLEDGE.value)
    outbox.on_alerts_changed(session, changes=[(alert, "unacknowledged")], now=now)


# --- actions ----------------------------------------------------------------------------------


def _run_actions(
    session: Session,
    alert: Alert,
    decision: plan.Decision,
    now: dt.datetime,
    on_call: OnCallLookup,
    result: StepResult,
) -> None:
    assert decision.ran is not None and alert.id is not None
    ran = decision.ran
    step_no = ran.step_index + 1
    resolved_first: list[int] = []
    first_notify = True
    people: dict[int, User] = {}
    for action in decision.actions:
        if isinstance(action, plan.Skipped):
            _timeline(
                session,
                alert,
                f"Step {step_no} skipped: {action.reason}.",
                now,
                payload={"step_index": ran.step_index, "cycle": ran.cycle},
            )
        elif isinstance(action, plan.ResolveAlert):
            from sentinel_app.services.alerts import transition

            if alert.status != AlertStatus.RESOLVED:
                transition(
                    session,
                    alert_id=alert.id,
                    transition=Transition.RESOLVE,
                    actor=ESCALATION,
                    now=now,
                    note="Resolved automatically by the escalation policy.",
                )
        elif isinstance(action, plan.CallWebhook):
            key = idempotency_key(alert.id, ran.cycle, ran.step_index, None, "webhook", 0)
            written = outbox.insert_rows(
                session,
                [
                    _row(
                        key,
                        alert,
                        ran,
                        None,
                        "webhook",
                        action.url,
                        due_at=now,
                        now=now,
                        method="webhook",
                        important=False,
                    )
                ],
            )
            result.notifications += written
            _timeline(
                session,
                alert,
                f"Step {step_no}: webhook called.",
                now,
                payload={"step_index": ran.step_index, "cycle": ran.cycle, "url": action.url},
            )
        else:
            users, described = _targets(session, action, now, on_call)
            people.update(_people(session, users))
            users = [u for u in users if u in people]
            if first_notify:
                resolved_first = users
                first_notify = False
            written, unreachable = _page(session, alert, ran, users, action.important, now)
            result.notifications += written
            result.paged_user_ids.extend(users)
            names = {u: people[u].name for u in users}
            note = f"Step {step_no}: {described} → " + (
                ", ".join(names[u] for u in users) if users else "nobody"
            )
            if unreachable:
                note += ". No way to reach " + ", ".join(f"{names[u]} ({why})" for u, why in unreachable)
            _timeline(
                session,
                alert,
                note + ".",
                now,
                payload={
                    "step_index": ran.step_index,
                    "cycle": ran.cycle,
                    "user_ids": users,
                    "important": action.important,
                },
            )
    if alert.assigned_to_id is None and alert.status == AlertStatus.FIRING:
        owner = plan.assignee_for(decision.actions, resolved_first)
        user = people.get(owner) if owner is not None else None
        if user is not None:
            from sentinel_app.services.escalations import set_assignee

            set_assignee(
                session, alert=alert, user=user, actor=ESCALATION, now=now, reason="first responder paged"
            )
    _publish_alert(session, alert, "escalated")


def _targets(
    session: Session, action: plan.NotifyAction, now: dt.datetime, on_call: OnCallLookup
) -> tuple[list[int], str]:
    if isinstance(action, plan.NotifyUsers):
        return list(dict.fromkeys(action.user_ids)), "notify users"
    if isinstance(action, plan.NotifySchedules):
        found = on_call(action.schedule_ids, now)
        users: list[int] = []
        for schedule_id in action.schedule_ids:
            users.extend(u for u in found.get(schedule_id, ()) if u not in users)
        return users, "notify whoever is on call"
    if isinstance(action, plan.NotifyTeams):
        members = session.exec(
            select(TeamMembership.user_id)
            .where(col(TeamMembership.team_id).in_(action.team_ids), TeamMembership.role != Role.VIEWER)
            .order_by(col(TeamMembership.team_id), col(TeamMembership.user_id))
        ).all()
        return list(dict.fromkeys(members)), "notify the team"
    return [_round_robin(session, action)], "notify the next in turn"


def _round_robin(session: Session, action: plan.NotifyRoundRobin) -> int:
    step = None
    if action.step_id is not None:
        step = session.exec(
            select(EscalationStep).where(EscalationStep.id == action.step_id).with_for_update()
        ).first()
    if step is not None and step.kind != StepKind.ROUND_ROBIN:
        step = None  # the step was deleted and its id reused (SQLite): start the turns afresh
    cursor = step.round_robin_cursor if step is not None else 0
    user_id, following = plan.round_robin_pick(action.user_ids, cursor)
    if step is not None:
        step.round_robin_cursor = following
        session.add(step)
    return user_id


def _people(session: Session, user_ids: Sequence[int]) -> dict[int, User]:
    """The active users among `user_ids` (inactive ones are never paged)."""
    if not user_ids:
        return {}
    rows = session.exec(select(User).where(col(User.id).in_(list(set(user_ids))), col(User.is_active))).all()
    return {row.id: row for row in rows if row.id is not None}


def _page(
    session: Session,
    alert: Alert,
    ran: plan.Position,
    users: Sequence[int],
    important: bool,
    now: dt.datetime,
) -> tuple[int, list[tuple[int, str]]]:
    """Write each user's notifications from their personal rules; return (rows written, unreachable)."""
    assert alert.id is not None
    if not users:
        return 0, []
    rules = notification_rules.rules_for(session, user_ids=users)
    contacts = usable_contact_methods(session, user_ids=users)
    devices = active_devices(session, user_ids=users)
    rows: list[dict[str, Any]] = []
    unreachable: list[tuple[int, str]] = []
    for user_id in users:
        reached = 0
        missing: list[str] = []
        for planned in expand_rules(rules.get(user_id, []), paged_at=now, important=important):
            addresses = _addresses(
                planned.method, planned.contact_method_id, contacts[user_id], devices[user_id]
            )
            if not addresses:
                missing.append(planned.method)
            for channel, target, contact_id, device_id in addresses:
                key = idempotency_key(
                    alert.id,
                    ran.cycle,
                    ran.step_index,
                    user_id,
                    planned.method,
                    planned.rule_index,
                    address=device_id if device_id is not None else contact_id,
                )
                rows.append(
                    _row(
                        key,
                        alert,
                        ran,
                        user_id,
                        channel,
                        target,
                        due_at=planned.due_at,
                        now=now,
                        method=planned.method,
                        important=important,
                        contact_method_id=contact_id,
                        push_device_id=device_id,
                    )
                )
                reached += 1
        if not reached:
            unreachable.append(
                (user_id, "no verified contact method or device for " + ", ".join(sorted(set(missing))))
            )
    return outbox.insert_rows(session, rows), unreachable


def _addresses(
    method: str,
    contact_method_id: int | None,
    contacts: Sequence[ContactMethod],
    devices: Sequence[PushDevice],
) -> list[tuple[str, str, int | None, int | None]]:
    """(channel, target, contact method id, device id) for every address a rule reaches."""
    if method == "push":
        return [(d.platform, d.token, None, d.id) for d in devices]
    return [
        (method, c.value, c.id, None)
        for c in contacts
        if c.kind == method and (contact_method_id is None or c.id == contact_method_id)
    ]


def _row(
    key: str,
    alert: Alert,
    ran: plan.Position,
    user_id: int | None,
    channel: str,
    target: str,
    *,
    due_at: dt.datetime,
    now: dt.datetime,
    method: str,
    important: bool,
    contact_method_id: int | None = None,
    push_device_id: int | None = None,
) -> dict[str, Any]:
    # Alert rows carry only what the dispatcher needs to compose the message at send time.
    payload = {
        "alert_id": alert.id,
        "title": alert.title,
        "severity": alert.severity,
        "method": method,
        "step_index": ran.step_index,
        "cycle": ran.cycle,
    }
    return outbox.new_row(
        key=key,
        alert_id=alert.id,
        user_id=user_id,
        channel=channel,
        purpose="alert",
        target=target,
        payload=payload,
        now=now,
        due_at=due_at,
        important=important,
        contact_method_id=contact_method_id,
        push_device_id=push_device_id,
    )
