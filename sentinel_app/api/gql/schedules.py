"""Schedules, on-call questions, overrides and escalation policies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ariadne import MutationType, ObjectType, QueryType
from graphql import GraphQLResolveInfo
from sqlmodel import Session

from sentinel_app.api.gql import access
from sentinel_app.api.gql.context import GqlContext, atomic, ctx
from sentinel_app.api.gql.errors import renamed_fields
from sentinel_app.api.gql.loaders import json_ints
from sentinel_app.api.gql.scalars import optional_id, parse_id, text_arg
from sentinel_app.domain import schedule as engine
from sentinel_app.models import EscalationPolicy, EscalationStep, RotationLayer, Schedule, ScheduleOverride
from sentinel_app.models.base import require_id
from sentinel_app.services import escalation_policies
from sentinel_app.services import schedules as service

query = QueryType()
mutation = MutationType()
schedule_type = ObjectType("Schedule")
layer_type = ObjectType("RotationLayer")
override_type = ObjectType("Override")
oncall_type = ObjectType("OnCall")
shift_type = ObjectType("Shift")
policy_type = ObjectType("EscalationPolicy")
step_type = ObjectType("EscalationStep")


@dataclass(frozen=True)
class OnCallView:
    """Someone on call in a schedule, and until when."""

    schedule_id: int
    user_id: int
    source: str
    source_id: int
    until: dt.datetime | None


@dataclass(frozen=True)
class LayerView:
    """A rotation layer with its participants in order."""

    row: RotationLayer
    participants: list[int]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


def oncall_views(
    schedule_id: int, answers: Iterable[engine.OnCall], until: dt.datetime | None
) -> list[OnCallView]:
    """Engine answers as GraphQL objects."""
    return [OnCallView(schedule_id, a.user_id, a.source_kind, a.source_id, until) for a in answers]


def visible_schedule(
    context: GqlContext, schedule_id: int, action: str, *, field: str = "scheduleId"
) -> Schedule:
    """The schedule, or NOT_FOUND when missing or not visible; FORBIDDEN without `action`."""
    row = context.db(lambda s: s.get(Schedule, schedule_id))
    access.require_visible(
        context.principal,
        row.team_id if row else None,
        action,
        what="schedule",
        ident=schedule_id,
        field=field,
    )
    assert row is not None
    return row


@query.field("schedules")
def resolve_schedules(_: Any, info: GraphQLResolveInfo, team: str | None = None) -> list[Schedule]:
    """Visible schedules by team and name."""
    context = ctx(info)
    teams = access.team_scope(context.principal, optional_id(team, "team"))
    rows = context.db(lambda s: service.list_schedules(s, team_ids=teams))
    context.loaders.hint_schedules(rows)
    return rows


@query.field("schedule")
def resolve_schedule(_: Any, info: GraphQLResolveInfo, id: str) -> Schedule:
    """One schedule."""
    context = ctx(info)
    row = visible_schedule(context, parse_id(id, "id"), "read", field="id")
    context.loaders.hint_schedules([row])
    return row


@query.field("oncall")
def resolve_oncall(
    _: Any, info: GraphQLResolveInfo, schedule_id: str, at: dt.datetime | None = None
) -> list[OnCallView]:
    """Who is on call at `at` (default now), and until when."""
    context = ctx(info)
    ident = parse_id(schedule_id, "scheduleId")
    visible_schedule(context, ident, "read")
    moment = at or context.now

    def ask(session: Session) -> list[OnCallView]:
        answers = service.on_call_at(session, schedule_id=ident, at=moment)
        until = service.next_handoff_at(session, schedule_id=ident, at=moment)
        return oncall_views(ident, answers, until)

    return context.db(ask)


@query.field("oncallNow")
def resolve_oncall_now(_: Any, info: GraphQLResolveInfo, team: str | None = None) -> list[OnCallView]:
    """Everyone on call now in the visible schedules."""
    context = ctx(info)
    teams = access.team_scope(context.principal, optional_id(team, "team"))
    found = context.db(lambda s: service.on_call_now(s, team_ids=teams, at=context.now))
    for entry in found:
        context.loaders.schedules.prime(require_id(entry.schedule), entry.schedule)
    context.loaders.users.hint(e.user_id for e in found)
    return [
        OnCallView(require_id(e.schedule), e.user_id, e.source_kind, e.source_id, e.shift_end) for e in found
    ]


@query.field("shifts")
def resolve_shifts(
    _: Any, info: GraphQLResolveInfo, schedule_id: str, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    """Shifts and gaps tiling [start, end)."""
    context = ctx(info)
    ident = parse_id(schedule_id, "scheduleId")
    visible_schedule(context, ident, "read")
    with renamed_fields({"start_at": "start", "end_at": "end"}):
        plan = context.db(lambda s: service.shift_plan(s, schedule_id=ident, start=start, end=end))
    context.loaders.users.hint(s.user_id for s in plan.shifts)
    return {"shifts": plan.shifts, "gaps": [{"start": lo, "end": hi} for lo, hi in plan.gaps]}


# --- types -----------------------------------------------------------------------------------


def _user(info: GraphQLResolveInfo, user_id: int | None) -> Any:
    return None if user_id is None else ctx(info).loaders.users.get(user_id)


@schedule_type.field("team")
def resolve_schedule_team(row: Schedule, info: GraphQLResolveInfo) -> Any:
    """The owning team."""
    return ctx(info).loaders.teams.get(row.team_id)


@schedule_type.field("layers")
def resolve_layers(row: Schedule, info: GraphQLResolveInfo) -> list[LayerView]:
    """Layers, best priority first."""
    return [
        LayerView(layer, people) for layer, people in ctx(info).loaders.schedule_layers.get(require_id(row))
    ]


@schedule_type.field("overrides")
def resolve_overrides(
    row: Schedule, info: GraphQLResolveInfo, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[ScheduleOverride]:
    """Overrides intersecting [start, end)."""
    context = ctx(info)
    rows = context.db(lambda s: service.list_overrides(s, schedule_id=require_id(row), start=start, end=end))
    context.loaders.users.hint(u for r in rows for u in (r.user_id, r.created_by_id))
    context.loaders.schedules.prime(require_id(row), row)
    return rows


@schedule_type.field("oncallNow")
def resolve_schedule_oncall(row: Schedule, info: GraphQLResolveInfo) -> list[OnCallView]:
    """Who is on call now."""
    schedule_id = require_id(row)
    answers, until = ctx(info).loaders.oncall_now.get(schedule_id)
    return oncall_views(schedule_id, answers, until)


@layer_type.field("participants")
def resolve_participants(layer: LayerView, info: GraphQLResolveInfo) -> list[Any]:
    """The rotation order."""
    users = ctx(info).loaders.users
    return [u for u in users.get_many(layer.participants) if u is not None]


@override_type.field("schedule")
def resolve_override_schedule(row: ScheduleOverride, info: GraphQLResolveInfo) -> Any:
    """The schedule."""
    return ctx(info).loaders.schedules.get(row.schedule_id)


@override_type.field("user")
def resolve_override_user(row: ScheduleOverride, info: GraphQLResolveInfo) -> Any:
    """Who is put on call."""
    return _user(info, row.user_id)


@override_type.field("createdBy")
def resolve_override_creator(row: ScheduleOverride, info: GraphQLResolveInfo) -> Any:
    """Who added it."""
    return _user(info, row.created_by_id)


@override_type.field("start")
def resolve_override_start(row: ScheduleOverride, _: GraphQLResolveInfo) -> dt.datetime:
    """Start (inclusive)."""
    return row.start_at


@override_type.field("end")
def resolve_override_end(row: ScheduleOverride, _: GraphQLResolveInfo) -> dt.datetime:
    """End (exclusive)."""
    return row.end_at


@oncall_type.field("schedule")
def resolve_oncall_schedule(view: OnCallView, info: GraphQLResolveInfo) -> Any:
    """The schedule."""
    return ctx(info).loaders.schedules.get(view.schedule_id)


@oncall_type.field("user")
@shift_type.field("user")
def resolve_oncall_user(view: Any, info: GraphQLResolveInfo) -> Any:
    """The person."""
    return _user(info, view.user_id)


@shift_type.field("source")
def resolve_shift_source(shift: engine.Shift, _: GraphQLResolveInfo) -> str:
    """layer or override."""
    return shift.source_kind


# --- overrides -------------------------------------------------------------------------------


@mutation.field("createOverride")
@atomic
def resolve_create_override(
    _: Any,
    info: GraphQLResolveInfo,
    schedule_id: str,
    user_id: str,
    start: dt.datetime,
    end: dt.datetime,
    reason: str | None = None,
) -> ScheduleOverride:
    """Put a team member on call for a while (responders and administrators)."""
    context = ctx(info)
    schedule = visible_schedule(context, parse_id(schedule_id, "scheduleId"), "write")
    with renamed_fields({"start_at": "start", "end_at": "end"}):
        return service.create_override(
            context.write_session(),
            schedule=schedule,
            user_id=parse_id(user_id, "userId"),
            start_at=start,
            end_at=end,
            reason=text_arg(reason, "reason", max_length=1_000),
            actor=access.actor(context.principal),
        )


@mutation.field("deleteOverride")
@atomic
def resolve_delete_override(_: Any, info: GraphQLResolveInfo, override_id: str) -> list[int]:
    """Delete an override (both halves of a swap)."""
    context = ctx(info)
    ident = parse_id(override_id, "overrideId")
    session = context.write_session()
    row = session.get(ScheduleOverride, ident)
    schedule = session.get(Schedule, row.schedule_id) if row else None
    access.require_visible(
        context.principal,
        schedule.team_id if schedule else None,
        "write",
        what="override",
        ident=ident,
        field="overrideId",
    )
    assert row is not None and schedule is not None
    return service.delete_override(
        session, schedule=schedule, override=row, actor=access.actor(context.principal)
    )


# --- escalation policies ---------------------------------------------------------------------


@query.field("escalationPolicies")
def resolve_policies(_: Any, info: GraphQLResolveInfo, team: str | None = None) -> list[EscalationPolicy]:
    """Visible escalation policies by team and name."""
    context = ctx(info)
    teams = access.team_scope(context.principal, optional_id(team, "team"))
    rows = context.db(lambda s: escalation_policies.list_policies(s, team_ids=teams))
    for row in rows:
        context.loaders.policies.prime(require_id(row), row)
    context.loaders.teams.hint(r.team_id for r in rows)
    context.loaders.policy_steps.hint(require_id(r) for r in rows)
    return rows


@policy_type.field("team")
def resolve_policy_team(row: EscalationPolicy, info: GraphQLResolveInfo) -> Any:
    """The owning team."""
    return ctx(info).loaders.teams.get(row.team_id)


@policy_type.field("steps")
def resolve_steps(row: EscalationPolicy, info: GraphQLResolveInfo) -> Any:
    """Steps in order."""
    return ctx(info).loaders.policy_steps.get(require_id(row))


def _targets(step: EscalationStep, key: str) -> list[int]:
    return json_ints((step.targets or {}).get(key))


@step_type.field("users")
def resolve_step_users(step: EscalationStep, info: GraphQLResolveInfo) -> list[Any]:
    """Users the step notifies."""
    return [u for u in ctx(info).loaders.users.get_many(_targets(step, "user_ids")) if u is not None]


@step_type.field("schedules")
def resolve_step_schedules(step: EscalationStep, info: GraphQLResolveInfo) -> list[Any]:
    """Schedules whose on-call people the step notifies."""
    return [s for s in ctx(info).loaders.schedules.get_many(_targets(step, "schedule_ids")) if s is not None]


@step_type.field("teams")
def resolve_step_teams(step: EscalationStep, info: GraphQLResolveInfo) -> list[Any]:
    """Teams whose members the step notifies."""
    return [t for t in ctx(info).loaders.teams.get_many(_targets(step, "team_ids")) if t is not None]


@step_type.field("config")
def resolve_step_config(step: EscalationStep, info: GraphQLResolveInfo) -> dict[str, Any] | None:
    """Settings may hold webhook URLs with secrets: team administrators only."""
    context = ctx(info)
    policy = context.loaders.policies.get(step.policy_id)
    if policy is None or not access.can_admin(context.principal, policy.team_id):
        return None
    return step.config


bindables: Sequence[Any] = (
    query,
    mutation,
    schedule_type,
    layer_type,
    override_type,
    oncall_type,
    shift_type,
    policy_type,
    step_type,
)
