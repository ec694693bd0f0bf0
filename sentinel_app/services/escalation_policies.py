"""Escalation policies and their steps: CRUD with audit and live events, dry runs, snapshots for new escalations.

Field names in errors are the API's. A step is written as ``{"kind", "delay_minutes",
"important", "targets": {"user_ids", "schedule_ids", "team_ids"}, "config": {...}}`` and
``config`` holds ``url`` (webhook steps) or ``timezone``, ``weekdays``, ``start``, ``end``
(time_window steps). The domain's names are translated: ``steps[1].user_ids[0]`` becomes
``steps[1].targets.user_ids[0]``, ``steps[2].window.timezone`` becomes
``steps[2].config.timezone`` and ``webhook_url`` becomes ``config.url``. Operations on one step
(`add_step`, `update_step`) name that step's own fields (``delay_minutes``).

Every write builds the would-be policy, validates it through the domain
(:func:`snapshot_policy`) and checks that the targets exist, all before anything is written.
Every change writes the audit log and publishes ``escalation_policy.changed`` in the same
transaction. Step positions stay dense, 0..n-1.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app import bus
from sentinel_app.domain import escalation_plan as plan
from sentinel_app.domain.escalation_policy import (
    NOTIFY_SCHEDULE,
    NOTIFY_TARGETS,
    NOTIFY_TEAM,
    NOTIFY_USERS,
    ROUND_ROBIN,
    TIME_WINDOW,
    WEBHOOK,
    EscalationError,
    PolicySnapshot,
    StepSnapshot,
    snapshot_policy,
)
from sentinel_app.models import (
    EscalationPolicy,
    EscalationStep,
    Integration,
    IntegrationRoute,
    Role,
    Schedule,
    Team,
    TeamMembership,
    User,
)
from sentinel_app.models.base import require_id
from sentinel_app.services import audit, integrations
from sentinel_app.services import schedules as schedule_service
from sentinel_app.services.actor import SYSTEM, Actor
from sentinel_app.services.errors import Conflict, NotFound, ValidationFailed

POLICY_CHANGED = "escalation_policy.changed"
MAX_NAME = 200
MAX_DESCRIPTION = 2_000
INT64 = 2**63 - 1
TARGET_FIELDS = ("user_ids", "schedule_ids", "team_ids")
# The `config` keys each kind reads; other kinds have no settings.
CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    WEBHOOK: ("url",),
    TIME_WINDOW: ("timezone", "weekdays", "start", "end"),
}
STEP_FIELDS = ("kind", "delay_minutes", "important", "targets", "config")
POLICY_FIELDS = ("name", "description", "repeat_count", "reescalate_after_ack_minutes")
# Kinds that page people; a policy without any is worth a dry-run warning.
NOTIFY_KINDS = (NOTIFY_USERS, NOTIFY_SCHEDULE, NOTIFY_TEAM, ROUND_ROBIN)
_STEP_PATH = re.compile(r"^steps\[(\d+)\]\.([a-z_]+)(.*)$")
_DOMAIN_FIELDS = {
    "user_ids": "targets.user_ids",
    "schedule_ids": "targets.schedule_ids",
    "team_ids": "targets.team_ids",
    "webhook_url": "config.url",
    "window": "config",
}


# --- loading ---------------------------------------------------------------------------------


def load_snapshots(session: Session, *, policy_ids: Iterable[int]) -> dict[int, PolicySnapshot]:
    """Snapshots of these policies as they are now, by id (missing ids are left out)."""
    wanted = sorted(set(policy_ids))
    if not wanted:
        return {}
    policies = session.exec(select(EscalationPolicy).where(col(EscalationPolicy.id).in_(wanted))).all()
    steps = session.exec(
        select(EscalationStep)
        .where(col(EscalationStep.policy_id).in_(wanted))
        .order_by(col(EscalationStep.policy_id), col(EscalationStep.position), col(EscalationStep.id))
    ).all()
    by_policy: dict[int, list[EscalationStep]] = {}
    for step in steps:
        by_policy.setdefault(step.policy_id, []).append(step)
    return {
        policy.id: snapshot_policy(policy, by_policy.get(policy.id, []))
        for policy in policies
        if policy.id is not None
    }


def get_policy(session: Session, *, policy_id: int) -> EscalationPolicy:
    """The policy with this id."""
    policy = session.get(EscalationPolicy, policy_id) if 0 < policy_id <= INT64 else None
    if policy is None:
        raise NotFound(f"escalation policy {policy_id} not found", field="policy_id")
    return policy


def get_step(session: Session, *, policy: EscalationPolicy, step_id: int) -> EscalationStep:
    """A step of `policy`."""
    step = session.get(EscalationStep, step_id) if 0 < step_id <= INT64 else None
    if step is None or step.policy_id != policy.id:
        raise NotFound(f"step {step_id} not found in escalation policy {policy.id}", field="step_id")
    return step


def list_policies(session: Session, *, team_ids: set[int] | None = None) -> list[EscalationPolicy]:
    """Policies of `team_ids` (None: every team), by team and name."""
    query = select(EscalationPolicy).order_by(col(EscalationPolicy.team_id), col(EscalationPolicy.name))
    if team_ids is not None:
        query = query.where(col(EscalationPolicy.team_id).in_(sorted(team_ids)))
    return list(session.exec(query))


def steps_of(session: Session, *, policy_ids: Iterable[int]) -> dict[int, list[EscalationStep]]:
    """Each policy's steps in position order."""
    ids = sorted(set(policy_ids))
    found: dict[int, list[EscalationStep]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = session.exec(
        select(EscalationStep)
        .where(col(EscalationStep.policy_id).in_(ids))
        .order_by(col(EscalationStep.policy_id), col(EscalationStep.position))
    )
    for row in rows:
        found[row.policy_id].append(row)
    return found


def lock_policy(session: Session, policy: EscalationPolicy) -> None:
    """Serialise step changes of one policy, so two requests cannot renumber positions at once.

    A row lock on PostgreSQL; SQLite writers already hold the database's write lock.
    """
    session.exec(
        select(EscalationPolicy.id).where(EscalationPolicy.id == policy.id).with_for_update()
    ).first()


# --- audit and events ------------------------------------------------------------------------


def publish_changed(session: Session, *, policy_id: int, team_id: int, action: str) -> None:
    """Tell live views that a policy changed (delivered only on commit)."""
    bus.publish(
        session,
        POLICY_CHANGED,
        {"policy_id": policy_id, "team_id": team_id, "action": action},
        key=f"escalation_policy:{policy_id}",
    )


def _policy_audit(policy: EscalationPolicy, steps: Sequence[EscalationStep]) -> dict[str, Any]:
    return {**audit.snapshot(policy), "steps": [audit.snapshot(s) for s in steps]}


# --- validation ------------------------------------------------------------------------------


@dataclass
class _DraftPolicy:
    """The policy-level values of a would-be policy, as :func:`snapshot_policy` reads them."""

    id: int | None
    repeat_count: Any
    reescalate_after_ack_minutes: Any


@dataclass
class _DraftStep:
    """A would-be step row, as :func:`snapshot_policy` reads it (values not yet checked)."""

    id: int | None
    kind: Any
    delay_minutes: Any
    important: Any
    targets: dict[str, Any]
    config: dict[str, Any]


@dataclass
class _Planned:
    """One step of the would-be policy: an existing row to keep (or None for a new one) and its values.

    `prefix` is how errors in this step are named; only `changed` steps are checked for unused
    settings and against the database, so stale targets elsewhere never block an unrelated edit.
    """

    row: EscalationStep | None
    draft: _DraftStep
    prefix: str
    changed: bool


def _name(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationFailed("must not be empty", field="name")
    if len(text) > MAX_NAME:
        raise ValidationFailed(f"must be at most {MAX_NAME} characters", field="name")
    return text


def _description(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationFailed("must be text", field="description")
    if len(value) > MAX_DESCRIPTION:
        raise ValidationFailed(f"must be at most {MAX_DESCRIPTION} characters", field="description")
    return value


def _policy_named(session: Session, team_id: int, name: str) -> EscalationPolicy | None:
    return session.exec(
        select(EscalationPolicy).where(EscalationPolicy.team_id == team_id, EscalationPolicy.name == name)
    ).first()


def _object(
    raw: object, *, allowed: Sequence[str], field: str, base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A `targets` or `config` object: given keys replace those of `base`, null removes one."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValidationFailed(f"must be an object with keys {', '.join(allowed)}", field=field)
    for key in raw:
        if key not in allowed:
            raise ValidationFailed(f"unknown key; one of {', '.join(allowed)}", field=f"{field}.{key}")
    merged = {**(base or {}), **raw}
    return {k: v for k, v in merged.items() if v is not None}


def _draft(fields: object, *, prefix: str, base: EscalationStep | None = None) -> _DraftStep:
    """A draft step from API fields; with `base`, omitted fields keep the row's values.

    On a `base`, `targets` and `config` merge key by key, and a new kind first drops what it
    does not read (notify_users → round_robin keeps user_ids; → webhook drops them).
    """
    if not isinstance(fields, Mapping):
        raise ValidationFailed(
            "must be an object with kind, targets and config", field=prefix.rstrip(".") or "body"
        )
    unknown = sorted(set(fields) - set(STEP_FIELDS))
    if unknown:
        raise ValidationFailed(f"unknown field; one of {', '.join(STEP_FIELDS)}", field=prefix + unknown[0])
    if base is None and "kind" not in fields:
        raise ValidationFailed("is required", field=prefix + "kind")
    kind = fields.get("kind", base.kind if base is not None else None)
    kept_targets: dict[str, Any] = {}
    kept_config: dict[str, Any] = {}
    if base is not None:
        used = NOTIFY_TARGETS.get(str(kind))
        kept_targets = {k: v for k, v in (base.targets or {}).items() if k == used}
        used_config = CONFIG_FIELDS.get(str(kind), ())
        kept_config = {k: v for k, v in (base.config or {}).items() if k in used_config}
    targets = kept_targets
    if "targets" in fields:
        targets = _object(
            fields["targets"], allowed=TARGET_FIELDS, field=prefix + "targets", base=kept_targets
        )
    config = kept_config
    if "config" in fields:
        config = _object(
            fields["config"], allowed=_all_config_keys(), field=prefix + "config", base=kept_config
        )
    return _DraftStep(
        id=base.id if base is not None else None,
        kind=kind,
        delay_minutes=fields.get("delay_minutes", base.delay_minutes if base is not None else 0),
        important=fields.get("important", base.important if base is not None else False),
        targets=targets,
        config=config,
    )


def _all_config_keys() -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for keys in CONFIG_FIELDS.values() for k in keys))


def _row_draft(row: EscalationStep) -> _DraftStep:
    return _DraftStep(
        id=row.id,
        kind=row.kind,
        delay_minutes=row.delay_minutes,
        important=row.important,
        targets=dict(row.targets or {}),
        config=dict(row.config or {}),
    )


def _api_field(domain_field: str, planned: Sequence[_Planned]) -> str:
    """The API's name of a domain error path, e.g. ``steps[1].window.start`` → ``steps[1].config.start``."""
    match = _STEP_PATH.match(domain_field)
    if match is None:
        return domain_field
    index, head, tail = int(match[1]), match[2], match[3]
    prefix = planned[index].prefix if index < len(planned) else f"steps[{index}]."
    return prefix + _DOMAIN_FIELDS.get(head, head) + tail


def _check_unused(entry: _Planned, step: StepSnapshot) -> None:
    used = NOTIFY_TARGETS.get(step.kind)
    for name in TARGET_FIELDS:
        if name != used and entry.draft.targets.get(name):
            reads = f"reads only targets.{used}" if used else "has no targets"
            raise ValidationFailed(f"a {step.kind} step {reads}", field=f"{entry.prefix}targets.{name}")
    allowed = CONFIG_FIELDS.get(step.kind, ())
    for key in entry.draft.config:
        if key not in allowed:
            settings = f"reads only config {', '.join(allowed)}" if allowed else "has no config"
            raise ValidationFailed(f"a {step.kind} step {settings}", field=f"{entry.prefix}config.{key}")


def _existing(session: Session, model: Any, ids: set[int], *extra: Any) -> set[int]:
    wanted = sorted(i for i in ids if 0 < i <= INT64)
    if not wanted:
        return set()
    return set(session.exec(select(model.id).where(col(model.id).in_(wanted), *extra)))


def _check_references(session: Session, *, team_id: int, steps: Sequence[tuple[str, StepSnapshot]]) -> None:
    """Users must exist and be active, schedules must be the team's own, teams must exist."""
    users = _existing(session, User, {u for _, s in steps for u in s.user_ids}, col(User.is_active).is_(True))
    own_schedules = _existing(
        session, Schedule, {i for _, s in steps for i in s.schedule_ids}, col(Schedule.team_id) == team_id
    )
    teams = _existing(session, Team, {i for _, s in steps for i in s.team_ids})
    for prefix, step in steps:
        for j, user_id in enumerate(step.user_ids):
            if user_id not in users:
                raise ValidationFailed(
                    f"user {user_id} does not exist or is disabled", field=f"{prefix}targets.user_ids[{j}]"
                )
        for j, schedule_id in enumerate(step.schedule_ids):
            if schedule_id not in own_schedules:
                raise ValidationFailed(
                    f"schedule {schedule_id} is not a schedule of team {team_id}",
                    field=f"{prefix}targets.schedule_ids[{j}]",
                )
        for j, other in enumerate(step.team_ids):
            if other not in teams:
                raise ValidationFailed(f"team {other} does not exist", field=f"{prefix}targets.team_ids[{j}]")


def _validate(
    session: Session, *, team_id: int, values: Mapping[str, Any], planned: Sequence[_Planned]
) -> PolicySnapshot:
    """Validate the would-be policy through the domain, then its new steps against the database."""
    draft = _DraftPolicy(
        id=None,
        repeat_count=values["repeat_count"],
        reescalate_after_ack_minutes=values["reescalate_after_ack_minutes"],
    )
    try:
        snapshot = snapshot_policy(draft, [entry.draft for entry in planned])
    except EscalationError as error:
        raise ValidationFailed(error.message, field=_api_field(error.field, planned)) from None
    changed = [(entry, step) for entry, step in zip(planned, snapshot.steps, strict=True) if entry.changed]
    for entry, step in changed:
        _check_unused(entry, step)
    _check_references(session, team_id=team_id, steps=[(entry.prefix, step) for entry, step in changed])
    return snapshot


def _format_time(value: dt.time) -> str:
    return value.strftime("%H:%M:%S" if value.second or value.microsecond else "%H:%M")


def _stored(step: StepSnapshot) -> dict[str, Any]:
    """A validated step's column values, in one normal form (unused targets empty, config per kind)."""
    used = NOTIFY_TARGETS.get(step.kind)
    config: dict[str, Any] = {}
    if step.kind == WEBHOOK:
        config = {"url": step.webhook_url}
    elif step.kind == TIME_WINDOW and step.window is not None:
        window = step.window
        config = {
            "timezone": window.timezone,
            "weekdays": sorted(window.weekdays),
            "start": _format_time(window.start),
            "end": _format_time(window.end),
        }
    return {
        "kind": step.kind,
        "delay_minutes": step.delay_minutes,
        "important": step.important,
        "targets": {name: list(getattr(step, name)) if name == used else [] for name in TARGET_FIELDS},
        "config": config,
    }


def _write_steps(
    session: Session,
    *,
    policy_id: int,
    current: Sequence[EscalationStep],
    planned: Sequence[_Planned],
    snapshot: PolicySnapshot,
) -> list[EscalationStep]:
    """Make the policy's step rows what `planned` says, at positions 0..n-1.

    (policy_id, position) is unique and checked row by row, so rows that move are first parked
    on negative positions; that works whatever order the database applies the updates in.
    """
    kept = {require_id(entry.row) for entry in planned if entry.row is not None}
    doomed = [row for row in current if require_id(row) not in kept]
    for row in doomed:
        session.delete(row)
    if doomed:
        session.flush()
    parked = False
    for i, entry in enumerate(planned):
        if entry.row is not None and entry.row.position != i:
            entry.row.position = -1 - i
            session.add(entry.row)
            parked = True
    if parked:
        session.flush()
    rows: list[EscalationStep] = []
    fresh: list[EscalationStep] = []
    for i, (entry, step) in enumerate(zip(planned, snapshot.steps, strict=True)):
        values = _stored(step)
        if entry.row is None:
            row = EscalationStep(policy_id=policy_id, position=i, **values)
            fresh.append(row)
        else:
            row = entry.row
            row.position = i
            # Untouched neighbours keep their stored form; only edited steps are rewritten.
            if entry.changed:
                for key, value in values.items():
                    if getattr(row, key) != value:
                        setattr(row, key, value)
            session.add(row)
        rows.append(row)
    # Moved rows take their final places before new rows are inserted into the freed ones.
    session.flush()
    for row in fresh:
        session.add(row)
    if fresh:
        session.flush()
    return rows


def _values(policy: EscalationPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in POLICY_FIELDS}


# --- policies --------------------------------------------------------------------------------


def create_policy(
    session: Session,
    *,
    team_id: int,
    name: str,
    description: str = "",
    repeat_count: int = 0,
    reescalate_after_ack_minutes: int | None = None,
    steps: Sequence[Mapping[str, Any]] = (),
    actor: Actor = SYSTEM,
) -> tuple[EscalationPolicy, list[EscalationStep]]:
    """Create a policy with its steps (in order); its name must be new within the team."""
    name = _name(name)
    description = _description(description)
    if not isinstance(team_id, int) or not 0 < team_id <= INT64 or session.get(Team, team_id) is None:
        raise ValidationFailed(f"team {team_id} does not exist", field="team_id")
    if not isinstance(steps, Sequence) or isinstance(steps, str):
        raise ValidationFailed("must be a list of steps", field="steps")
    planned = [
        _Planned(None, _draft(raw, prefix=f"steps[{i}]."), f"steps[{i}].", True)
        for i, raw in enumerate(steps)
    ]
    values = {"repeat_count": repeat_count, "reescalate_after_ack_minutes": reescalate_after_ack_minutes}
    snapshot = _validate(session, team_id=team_id, values=values, planned=planned)
    if _policy_named(session, team_id, name) is not None:
        raise Conflict(f"team {team_id} already has an escalation policy named {name!r}", field="name")
    policy = EscalationPolicy(
        team_id=team_id,
        name=name,
        description=description,
        repeat_count=repeat_count,
        reescalate_after_ack_minutes=reescalate_after_ack_minutes,
    )
    session.add(policy)
    session.flush()
    policy_id = require_id(policy)
    rows = _write_steps(session, policy_id=policy_id, current=[], planned=planned, snapshot=snapshot)
    audit.record_by(
        session,
        actor,
        action="escalation_policy.create",
        entity_type="escalation_policy",
        entity_id=policy_id,
        team_id=team_id,
        after=_policy_audit(policy, rows),
    )
    publish_changed(session, policy_id=policy_id, team_id=team_id, action="created")
    return policy, rows


def _replacement(raw_steps: object, current: Sequence[EscalationStep], policy_id: int) -> list[_Planned]:
    """The planned steps of a full replacement; an item with the `id` of a current step keeps that row."""
    if not isinstance(raw_steps, Sequence) or isinstance(raw_steps, str):
        raise ValidationFailed("must be a list of steps", field="steps")
    by_id = {require_id(row): row for row in current}
    seen: set[int] = set()
    planned: list[_Planned] = []
    for i, raw in enumerate(raw_steps):
        prefix = f"steps[{i}]."
        if not isinstance(raw, Mapping):
            raise ValidationFailed("must be an object with kind, targets and config", field=f"steps[{i}]")
        step_id = raw.get("id")
        row = None
        if step_id is not None:
            if not isinstance(step_id, int) or step_id not in by_id:
                raise ValidationFailed(
                    f"{step_id!r} is not a step of policy {policy_id}", field=prefix + "id"
                )
            if step_id in seen:
                raise ValidationFailed(f"step {step_id} is listed twice", field=prefix + "id")
            seen.add(step_id)
            row = by_id[step_id]
        fields = {k: v for k, v in raw.items() if k != "id"}
        planned.append(_Planned(row, _draft(fields, prefix=prefix), prefix, True))
    return planned


def update_policy(
    session: Session, *, policy: EscalationPolicy, changes: Mapping[str, Any], actor: Actor = SYSTEM
) -> tuple[EscalationPolicy, list[EscalationStep]]:
    """Change a policy's fields; `steps`, when given, replaces all steps (items with an `id` keep that row)."""
    unknown = sorted(set(changes) - {*POLICY_FIELDS, "steps"})
    if unknown:
        raise ValidationFailed("cannot be changed", field=unknown[0])
    lock_policy(session, policy)
    policy_id = require_id(policy)
    current = steps_of(session, policy_ids=[policy_id])[policy_id]
    values = {**_values(policy), **{k: v for k, v in changes.items() if k in POLICY_FIELDS}}
    if "name" in changes:
        values["name"] = _name(changes["name"])
    if "description" in changes:
        values["description"] = _description(changes["description"])
    if "steps" in changes:
        planned = _replacement(changes["steps"], current, policy_id)
    else:
        planned = [_Planned(row, _row_draft(row), f"steps[{i}].", False) for i, row in enumerate(current)]
    snapshot = _validate(session, team_id=policy.team_id, values=values, planned=planned)
    other = _policy_named(session, policy.team_id, values["name"])
    if other is not None and other.id != policy_id:
        raise Conflict(
            f"team {policy.team_id} already has an escalation policy named {values['name']!r}", field="name"
        )
    before = _policy_audit(policy, current)
    for key, value in values.items():
        if getattr(policy, key) != value:
            setattr(policy, key, value)
    session.add(policy)
    session.flush()
    rows = list(current)
    if "steps" in changes:
        rows = _write_steps(session, policy_id=policy_id, current=current, planned=planned, snapshot=snapshot)
    after = _policy_audit(policy, rows)
    if before != after:
        audit.record_by(
            session,
            actor,
            action="escalation_policy.update",
            entity_type="escalation_policy",
            entity_id=policy_id,
            team_id=policy.team_id,
            before=before,
            after=after,
        )
        publish_changed(session, policy_id=policy_id, team_id=policy.team_id, action="updated")
    return policy, rows


@dataclass(frozen=True)
class PolicyUsage:
    """Integrations that use a policy by default, and routing rules that choose it."""

    integrations: list[Integration] = field(default_factory=list)
    routes: list[tuple[IntegrationRoute, Integration]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.integrations or self.routes)

    def describe(self) -> str:
        """E.g. ``integration 3 'prom' (default policy), route 1 of integration 4 'pd'``."""
        parts = [f"integration {i.id} {i.name!r} (default policy)" for i in self.integrations]
        parts += [f"route {r.position} of integration {i.id} {i.name!r}" for r, i in self.routes]
        return ", ".join(parts)

    def as_json(self) -> dict[str, list[int]]:
        """The ids, for the audit log."""
        return {
            "integration_ids": [require_id(i) for i in self.integrations],
            "route_ids": [require_id(r) for r, _ in self.routes],
        }


def policy_usage(session: Session, *, policy_id: int) -> PolicyUsage:
    """Who would lose this policy if it were deleted (running escalations keep their snapshot)."""
    users = list(
        session.exec(
            select(Integration)
            .where(Integration.default_escalation_policy_id == policy_id)
            .order_by(col(Integration.id))
        )
    )
    routes = [
        (route, integration)
        for route, integration in session.exec(
            select(IntegrationRoute, Integration)
            .join(Integration, col(Integration.id) == col(IntegrationRoute.integration_id))
            .where(IntegrationRoute.escalation_policy_id == policy_id)
            .order_by(col(Integration.id), col(IntegrationRoute.position))
        )
    ]
    return PolicyUsage(integrations=users, routes=routes)


def delete_policy(
    session: Session, *, policy: EscalationPolicy, force: bool = False, actor: Actor = SYSTEM
) -> None:
    """Delete a policy and its steps; refused while integrations or routes use it, unless `force`.

    With `force`, those references (and alerts' and escalations' policy ids) become null through
    the foreign keys; running escalations go on with their snapshot.
    """
    policy_id = require_id(policy)
    usage = policy_usage(session, policy_id=policy_id)
    if usage and not force:
        raise Conflict(
            f"escalation policy {policy_id} is used by {usage.describe()}; "
            "change those first or delete with force=true",
            field="policy_id",
        )
    current = steps_of(session, policy_ids=[policy_id])[policy_id]
    before = _policy_audit(policy, current)
    if usage:
        before["used_by"] = usage.as_json()
    audit.record_by(
        session,
        actor,
        action="escalation_policy.delete",
        entity_type="escalation_policy",
        entity_id=policy_id,
        team_id=policy.team_id,
        before=before,
    )
    publish_changed(session, policy_id=policy_id, team_id=policy.team_id, action="deleted")
    # Steps first: the ORM knows no relationships.
    session.execute(sa.delete(EscalationStep).where(col(EscalationStep.policy_id) == policy_id))
    session.delete(policy)
    session.flush()
    if usage:
        integrations.forget_cached()


# --- steps -----------------------------------------------------------------------------------


def _current(session: Session, policy: EscalationPolicy) -> tuple[int, list[EscalationStep]]:
    lock_policy(session, policy)
    policy_id = require_id(policy)
    return policy_id, steps_of(session, policy_ids=[policy_id])[policy_id]


def _index_of(rows: Sequence[EscalationStep], step: EscalationStep, policy_id: int) -> int:
    """Where `step` is among the policy's rows (NotFound if another request removed it first)."""
    for i, row in enumerate(rows):
        if row.id == step.id:
            return i
    raise NotFound(f"step {step.id} not found in escalation policy {policy_id}", field="step_id")


def _kept(rows: Sequence[EscalationStep]) -> list[_Planned]:
    return [_Planned(row, _row_draft(row), f"steps[{i}].", False) for i, row in enumerate(rows)]


def add_step(
    session: Session,
    *,
    policy: EscalationPolicy,
    fields: Mapping[str, Any],
    position: int | None = None,
    actor: Actor = SYSTEM,
) -> EscalationStep:
    """Insert a step at `position` (default: at the end); later steps move down one place."""
    policy_id, current = _current(session, policy)
    if position is None:
        position = len(current)
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= len(current):
        raise ValidationFailed(f"must be from 0 to {len(current)}", field="position")
    planned = _kept(current)
    planned.insert(position, _Planned(None, _draft(fields, prefix=""), "", True))
    snapshot = _validate(session, team_id=policy.team_id, values=_values(policy), planned=planned)
    rows = _write_steps(session, policy_id=policy_id, current=current, planned=planned, snapshot=snapshot)
    row = rows[position]
    audit.record_by(
        session,
        actor,
        action="escalation_step.create",
        entity_type="escalation_step",
        entity_id=row.id,
        team_id=policy.team_id,
        after=audit.snapshot(row),
    )
    publish_changed(session, policy_id=policy_id, team_id=policy.team_id, action="updated")
    return row


def update_step(
    session: Session,
    *,
    policy: EscalationPolicy,
    step: EscalationStep,
    changes: Mapping[str, Any],
    actor: Actor = SYSTEM,
) -> EscalationStep:
    """Change some of a step's fields; `targets` and `config` merge key by key (null removes a key).

    A new kind keeps only the targets and settings it reads.
    """
    policy_id, current = _current(session, policy)
    planned = _kept(current)
    index = _index_of(current, step, policy_id)
    planned[index] = _Planned(step, _draft(changes, prefix="", base=step), "", True)
    snapshot = _validate(session, team_id=policy.team_id, values=_values(policy), planned=planned)
    before = audit.snapshot(step)
    _write_steps(session, policy_id=policy_id, current=current, planned=planned, snapshot=snapshot)
    after = audit.snapshot(step)
    if before != after:
        audit.record_by(
            session,
            actor,
            action="escalation_step.update",
            entity_type="escalation_step",
            entity_id=step.id,
            team_id=policy.team_id,
            before=before,
            after=after,
        )
        publish_changed(session, policy_id=policy_id, team_id=policy.team_id, action="updated")
    return step


def delete_step(
    session: Session, *, policy: EscalationPolicy, step: EscalationStep, actor: Actor = SYSTEM
) -> None:
    """Remove a step; later steps move up one place."""
    policy_id, current = _current(session, policy)
    _index_of(current, step, policy_id)
    planned = [entry for entry in _kept(current) if entry.row is not None and entry.row.id != step.id]
    snapshot = _validate(session, team_id=policy.team_id, values=_values(policy), planned=planned)
    audit.record_by(
        session,
        actor,
        action="escalation_step.delete",
        entity_type="escalation_step",
        entity_id=step.id,
        team_id=policy.team_id,
        before=audit.snapshot(step),
    )
    _write_steps(session, policy_id=policy_id, current=current, planned=planned, snapshot=snapshot)
    publish_changed(session, policy_id=policy_id, team_id=policy.team_id, action="updated")


def reorder_steps(
    session: Session, *, policy: EscalationPolicy, step_ids: Sequence[int], actor: Actor = SYSTEM
) -> list[EscalationStep]:
    """Put the steps in the order of `step_ids`, which must list each of the policy's steps once."""
    policy_id, current = _current(session, policy)
    old_order = [require_id(row) for row in current]
    if (
        not isinstance(step_ids, Sequence)
        or isinstance(step_ids, str)
        or any(isinstance(i, bool) or not isinstance(i, int) for i in step_ids)
        or sorted(step_ids) != sorted(old_order)
    ):
        raise ValidationFailed(
            f"must list each step of policy {policy_id} exactly once: {sorted(old_order)}", field="step_ids"
        )
    new_order = list(step_ids)
    if new_order == old_order:
        return current
    by_id = {require_id(row): row for row in current}
    planned = _kept([by_id[i] for i in new_order])
    snapshot = _validate(session, team_id=policy.team_id, values=_values(policy), planned=planned)
    rows = _write_steps(session, policy_id=policy_id, current=current, planned=planned, snapshot=snapshot)
    audit.record_by(
        session,
        actor,
        action="escalation_policy.reorder",
        entity_type="escalation_policy",
        entity_id=policy_id,
        team_id=policy.team_id,
        before={"step_ids": old_order},
        after={"step_ids": new_order},
    )
    publish_changed(session, policy_id=policy_id, team_id=policy.team_id, action="updated")
    return rows


# --- dry run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Someone a dry run would page."""

    user_id: int
    name: str
    email: str


@dataclass(frozen=True)
class DryRunItem:
    """One action of a dry run, `offset` after the alert fired."""

    offset: dt.timedelta
    at: dt.datetime
    step_index: int
    cycle: int
    kind: str
    action: str
    targets: tuple[Person, ...] = ()
    webhook_url: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class DryRunWarning:
    """Something the policy's owner should look at (`code`: gap, nobody, inactive_user, ...)."""

    code: str
    message: str
    step_index: int | None = None
    cycle: int | None = None
    at: dt.datetime | None = None


@dataclass(frozen=True)
class DryRun:
    """What an alert firing at `start_at` would go through; nothing is sent or written."""

    start_at: dt.datetime
    items: list[DryRunItem]
    warnings: list[DryRunWarning]


class _Resolver:
    """Turns targets into people for a dry run, caching lookups by id and instant."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.users: dict[int, User] = {}
        self.members: dict[tuple[int, ...], list[int]] = {}
        self.on_call: dict[tuple[int, dt.datetime], list[int] | None] = {}
        self.schedule_names: dict[int, str] = {}

    def load_users(self, ids: Iterable[int]) -> None:
        missing = {i for i in ids if i not in self.users}
        self.users.update(schedule_service.users_by_id(self.session, user_ids=missing))

    def team_members(self, team_ids: Sequence[int]) -> list[int]:
        """Members who get paged, the way escalation_steps picks them: not viewers, by team and user id."""
        key = tuple(team_ids)
        if key not in self.members:
            rows = self.session.exec(
                select(TeamMembership.user_id)
                .where(col(TeamMembership.team_id).in_(key), TeamMembership.role != Role.VIEWER)
                .order_by(col(TeamMembership.team_id), col(TeamMembership.user_id))
            ).all()
            self.members[key] = _unique(rows)
            self.load_users(self.members[key])
        return self.members[key]

    def on_call_at(self, schedule_id: int, at: dt.datetime) -> list[int] | None:
        """User ids on call (None: the schedule no longer exists)."""
        key = (schedule_id, at)
        if key not in self.on_call:
            try:
                answers = schedule_service.on_call_at(self.session, schedule_id=schedule_id, at=at)
            except NotFound:
                self.on_call[key] = None
            else:
                self.on_call[key] = [a.user_id for a in answers]
                self.load_users(a.user_id for a in answers)
        return self.on_call[key]

    def schedule_name(self, schedule_id: int) -> str:
        if schedule_id not in self.schedule_names:
            row = self.session.get(Schedule, schedule_id)
            self.schedule_names[schedule_id] = row.name if row is not None else ""
        return self.schedule_names[schedule_id]

    def person(self, user_id: int) -> Person | None:
        """The user if they exist and are active."""
        user = self.users.get(user_id)
        if user is None or not user.is_active:
            return None
        return Person(user_id=user_id, name=user.name, email=user.email)


def _warning(code: str, message: str, entry: plan.PreviewItem) -> DryRunWarning:
    return DryRunWarning(code, message, step_index=entry.step_index, cycle=entry.cycle, at=entry.at)


def _unique(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(ids))


def dry_run(
    session: Session,
    *,
    policy: EscalationPolicy,
    start_at: dt.datetime,
    assume_unacknowledged: bool = True,
    max_items: int = 200,
) -> DryRun:
    """Walk the escalation of an alert firing at `start_at`; sends nothing, writes nothing.

    Targets resolve like the live escalation (services/escalation_steps.py): schedules are asked
    who is on call at each step's own instant, teams resolve to their active members except
    viewers, disabled users are left out, and round-robin steps pick from their live cursor,
    advancing it (in memory only) for each page.
    """
    start = schedule_service.parse_instant(start_at, field="start_at")
    policy_id = require_id(policy)
    rows = steps_of(session, policy_ids=[policy_id])[policy_id]
    try:
        snapshot = snapshot_policy(policy, rows)
    except EscalationError as error:
        raise ValidationFailed(error.message, field=_api_field(error.field, _kept(rows))) from None
    preview = plan.preview(snapshot, start, assume_unacknowledged=assume_unacknowledged, max_items=max_items)
    resolver = _Resolver(session)
    resolver.load_users(u for s in snapshot.steps for u in s.user_ids)
    cursors = {require_id(row): row.round_robin_cursor for row in rows}
    items: list[DryRunItem] = []
    warnings: list[DryRunWarning] = []
    if not any(step.kind in NOTIFY_KINDS for step in snapshot.steps):
        warnings.append(
            DryRunWarning("no_notify_step", "the policy pages nobody: it has no notify or round_robin step")
        )
    warned: set[tuple[str, int, int]] = set()

    def warn_inactive(index: int, user_ids: Iterable[int]) -> None:
        for user_id in user_ids:
            if resolver.person(user_id) is None and ("inactive_user", index, user_id) not in warned:
                warned.add(("inactive_user", index, user_id))
                warnings.append(
                    DryRunWarning(
                        "inactive_user",
                        f"user {user_id} does not exist or is disabled and would not be paged",
                        step_index=index,
                    )
                )

    for entry in preview:
        step = snapshot.steps[entry.step_index]
        action = entry.action
        user_ids: list[int] = []
        name = step.kind
        webhook_url = reason = None
        if isinstance(action, plan.NotifyUsers):
            user_ids = list(action.user_ids)
            warn_inactive(entry.step_index, user_ids)
        elif isinstance(action, plan.NotifySchedules):
            for schedule_id in action.schedule_ids:
                found = resolver.on_call_at(schedule_id, entry.at)
                if not found:
                    label = f"schedule {schedule_id} {resolver.schedule_name(schedule_id)!r}"
                    what = "no longer exists" if found is None else "has nobody on call"
                    warnings.append(_warning("gap", f"{label} {what} at {entry.at.isoformat()}", entry))
                user_ids += found or []
        elif isinstance(action, plan.NotifyTeams):
            user_ids = resolver.team_members(action.team_ids)
        elif isinstance(action, plan.NotifyRoundRobin):
            step_id = action.step_id or 0
            picked, cursors[step_id] = plan.round_robin_pick(action.user_ids, cursors.get(step_id, 0))
            user_ids = [picked]
            warn_inactive(entry.step_index, user_ids)
        elif isinstance(action, plan.CallWebhook):
            webhook_url = action.url
        elif isinstance(action, plan.ResolveAlert):
            name = "resolve"
        elif isinstance(action, plan.Skipped):
            name, reason = "skipped", action.reason
        people = tuple(p for p in (resolver.person(u) for u in _unique(user_ids)) if p is not None)
        if isinstance(action, plan.NOTIFY_ACTIONS) and not people:
            warnings.append(
                _warning(
                    "nobody",
                    f"step {entry.step_index + 1} would page nobody at {entry.at.isoformat()}",
                    entry,
                )
            )
        items.append(
            DryRunItem(
                offset=entry.offset,
                at=entry.at,
                step_index=entry.step_index,
                cycle=entry.cycle,
                kind=step.kind,
                action=name,
                targets=people,
                webhook_url=webhook_url,
                reason=reason,
            )
        )
    if len(preview) >= max_items:
        warnings.append(DryRunWarning("truncated", f"only the first {max_items} actions are shown"))
    return DryRun(start_at=start, items=items, warnings=warnings)
