"""REST for escalation policies: CRUD of policies and their steps, reordering, and a dry run."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import Session

from sentinel_app.api.deps import Principal, principal, read_db, write_db
from sentinel_app.api.schemas import Strict
from sentinel_app.db import utcnow
from sentinel_app.domain.escalation_policy import MAX_STEPS, STEP_KINDS
from sentinel_app.models import EscalationPolicy, EscalationStep
from sentinel_app.models.base import require_id
from sentinel_app.services import escalation_policies as service
from sentinel_app.services.actor import Actor

router = APIRouter(prefix="/api/v1", tags=["escalation policies"])

MAX_ID = 2**63 - 1
# Ids beyond a 64-bit integer cannot exist; refusing them early keeps PostgreSQL from erroring.
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]
# Target ids are range-checked by the domain (positive) and the database (exists); this only caps them.
TargetId = Annotated[int, Field(le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
_KINDS = ", ".join(STEP_KINDS)


# --- bodies ----------------------------------------------------------------------------------


class TargetsIn(Strict):
    """Who a step pages; a step reads only the list of its kind."""

    user_ids: list[TargetId] = Field(
        default_factory=list, max_length=100, description="notify_users, round_robin"
    )
    schedule_ids: list[TargetId] = Field(default_factory=list, max_length=100, description="notify_schedule")
    team_ids: list[TargetId] = Field(default_factory=list, max_length=100, description="notify_team")


class ConfigIn(Strict):
    """Kind-specific settings: `url` for webhook steps, the window for time_window steps."""

    url: str | None = Field(default=None, max_length=2_000, description="webhook: http(s) URL")
    timezone: str | None = Field(default=None, max_length=64, description="time_window: IANA zone")
    weekdays: list[int] | None = Field(default=None, max_length=7, description="time_window: 0 = Monday")
    start: str | None = Field(default=None, max_length=16, description='time_window: "HH:MM"')
    end: str | None = Field(
        default=None, max_length=16, description='time_window: "HH:MM"; <= start spans midnight'
    )


class StepIn(Strict):
    """A step."""

    kind: str = Field(max_length=32, description=f"one of {_KINDS}")
    delay_minutes: int = Field(default=0, description="wait this long after the step (0 to 10080)")
    important: bool = Field(default=False, description="page with the users' important-notification rules")
    targets: TargetsIn = Field(default_factory=TargetsIn)
    config: ConfigIn = Field(default_factory=ConfigIn)


class StepCreate(StepIn):
    """A new step, inserted at `position` (default: at the end)."""

    position: int | None = Field(default=None, description="0 = first; later steps move down")


class StepReplace(StepIn):
    """A step of a full replacement; the `id` of a current step keeps that row (and its round-robin turn)."""

    id: BodyId | None = None


class StepPatch(Strict):
    """Changes to a step; `targets` and `config` merge key by key (a key set to null is removed)."""

    kind: str | None = Field(default=None, max_length=32, description=f"one of {_KINDS}")
    delay_minutes: int | None = None
    important: bool | None = None
    targets: TargetsIn | None = None
    config: ConfigIn | None = None


class PolicyIn(Strict):
    """A new escalation policy, optionally with its steps."""

    team_id: BodyId
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2_000)
    repeat_count: int = Field(default=0, description="run the steps this many more times (0 to 10)")
    reescalate_after_ack_minutes: int | None = Field(
        default=None, description="page again when acknowledged but unresolved this long (1 to 10080)"
    )
    steps: list[StepIn] = Field(default_factory=list, max_length=MAX_STEPS)


class PolicyPatch(Strict):
    """Changes to a policy; omitted fields stay as they are, `steps` replaces all steps."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2_000)
    repeat_count: int | None = None
    reescalate_after_ack_minutes: int | None = None
    steps: list[StepReplace] | None = Field(default=None, max_length=MAX_STEPS)


class StepOrder(Strict):
    """Every step id of the policy, in the new order."""

    step_ids: list[int] = Field(max_length=MAX_STEPS)


class DryRunIn(Strict):
    """When the imagined alert fires, and whether anyone acknowledges it."""

    start_at: AwareDatetime | None = Field(default=None, description="default: now")
    assume_unacknowledged: bool = Field(
        default=True, description="false: someone acknowledges right after the first page"
    )


# --- answers ---------------------------------------------------------------------------------


class TargetsOut(BaseModel):
    """Who a step pages."""

    user_ids: list[int]
    schedule_ids: list[int]
    team_ids: list[int]


class StepOut(BaseModel):
    """A step."""

    id: int
    policy_id: int
    position: int
    kind: str
    delay_minutes: int
    important: bool
    targets: TargetsOut
    config: dict[str, Any]
    round_robin_cursor: int
    created_at: dt.datetime
    updated_at: dt.datetime


class PolicyOut(BaseModel):
    """A policy with its steps in order."""

    id: int
    team_id: int
    name: str
    description: str
    repeat_count: int
    reescalate_after_ack_minutes: int | None
    steps: list[StepOut]
    created_at: dt.datetime
    updated_at: dt.datetime


class TargetPerson(BaseModel):
    """Someone who would be paged."""

    user_id: int
    name: str
    email: str


class DryRunItemOut(BaseModel):
    """One action of the dry run."""

    offset_seconds: int
    at: dt.datetime
    step_index: int
    cycle: int
    kind: str = Field(description="the step's kind")
    action: str = Field(
        description="notify_users, notify_schedule, notify_team, round_robin, webhook, resolve or skipped"
    )
    targets: list[TargetPerson]
    webhook_url: str | None = None
    reason: str | None = Field(default=None, description="why a step was skipped")


class DryRunWarningOut(BaseModel):
    """Something to look at: gap, nobody, inactive_user, no_notify_step, truncated."""

    code: str
    message: str
    step_index: int | None
    cycle: int | None
    at: dt.datetime | None


class DryRunOut(BaseModel):
    """What an alert firing at `start_at` would go through; nothing was sent or written."""

    policy_id: int
    start_at: dt.datetime
    assume_unacknowledged: bool
    items: list[DryRunItemOut]
    warnings: list[DryRunWarningOut]


# --- helpers ---------------------------------------------------------------------------------


def _actor(who: Principal) -> Actor:
    return Actor(user_id=who.user_id, label=who.user.name, api_key_id=who.api_key_id)


def _policy(session: Session, who: Principal, policy_id: int, action: str) -> EscalationPolicy:
    policy = session.get(EscalationPolicy, policy_id)
    team_id = policy.team_id if policy else None
    who.require_visible(team_id, action, what="escalation policy", ident=policy_id, field="policy_id")
    assert policy is not None
    return policy


def _step_out(row: EscalationStep) -> StepOut:
    targets = row.targets or {}
    return StepOut(
        **row.model_dump(exclude={"targets", "config"}),
        targets=TargetsOut(**{name: list(targets.get(name) or []) for name in service.TARGET_FIELDS}),
        config=dict(row.config or {}),
    )


def _policy_out(policy: EscalationPolicy, steps: list[EscalationStep]) -> PolicyOut:
    return PolicyOut(**policy.model_dump(), steps=[_step_out(s) for s in steps])


def _with_steps(session: Session, policy: EscalationPolicy) -> PolicyOut:
    policy_id = require_id(policy)
    return _policy_out(policy, service.steps_of(session, policy_ids=[policy_id])[policy_id])


# --- policies --------------------------------------------------------------------------------


@router.get("/escalation-policies", response_model=list[PolicyOut], summary="List escalation policies")
def list_policies(
    who: Principal = Depends(principal), session: Session = Depends(read_db), team_id: QueryId = None
) -> list[PolicyOut]:
    """Policies the caller can see, by team and name, each with its steps."""
    visible = who.visible_team_ids()
    if team_id is not None:
        visible = {team_id} if visible is None or team_id in visible else set()
    policies = service.list_policies(session, team_ids=visible)
    steps = service.steps_of(session, policy_ids=[require_id(p) for p in policies])
    return [_policy_out(p, steps[require_id(p)]) for p in policies]


@router.post(
    "/escalation-policies", response_model=PolicyOut, status_code=201, summary="Create an escalation policy"
)
def create_policy(
    body: PolicyIn, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> PolicyOut:
    """Create a policy, optionally with all its steps (team administrators)."""
    who.require("admin", body.team_id)
    policy, steps = service.create_policy(
        session,
        team_id=body.team_id,
        name=body.name,
        description=body.description,
        repeat_count=body.repeat_count,
        reescalate_after_ack_minutes=body.reescalate_after_ack_minutes,
        steps=[s.model_dump() for s in body.steps],
        actor=_actor(who),
    )
    return _policy_out(policy, steps)


@router.get(
    "/escalation-policies/{policy_id}",
    response_model=PolicyOut,
    summary="An escalation policy with its steps",
)
def get_policy(
    policy_id: PathId, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> PolicyOut:
    """One policy and its steps in position order."""
    return _with_steps(session, _policy(session, who, policy_id, "read"))


@router.patch(
    "/escalation-policies/{policy_id}", response_model=PolicyOut, summary="Change an escalation policy"
)
def update_policy(
    policy_id: PathId,
    body: PolicyPatch,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> PolicyOut:
    """Change a policy (team administrators); `steps`, when given, replaces every step."""
    policy = _policy(session, who, policy_id, "admin")
    changes = body.model_dump(exclude_unset=True)
    if body.steps is not None:
        changes["steps"] = [
            {k: v for k, v in s.model_dump().items() if k != "id" or v is not None} for s in body.steps
        ]
    policy, steps = service.update_policy(session, policy=policy, changes=changes, actor=_actor(who))
    return _policy_out(policy, steps)


@router.delete("/escalation-policies/{policy_id}", status_code=204, summary="Delete an escalation policy")
def delete_policy(
    policy_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
    force: Annotated[bool, Query(description="delete even if integrations or routes use it")] = False,
) -> None:
    """Delete a policy (team administrators); 409 while integrations or routes use it, unless `force`."""
    policy = _policy(session, who, policy_id, "admin")
    service.delete_policy(session, policy=policy, force=force, actor=_actor(who))


# --- steps -----------------------------------------------------------------------------------


@router.post(
    "/escalation-policies/{policy_id}/steps", response_model=StepOut, status_code=201, summary="Add a step"
)
def add_step(
    policy_id: PathId,
    body: StepCreate,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> StepOut:
    """Insert a step at `position` (default: at the end) (team administrators)."""
    policy = _policy(session, who, policy_id, "admin")
    fields = body.model_dump(exclude={"position"})
    row = service.add_step(session, policy=policy, fields=fields, position=body.position, actor=_actor(who))
    return _step_out(row)


@router.put(
    "/escalation-policies/{policy_id}/steps/order", response_model=PolicyOut, summary="Reorder the steps"
)
def reorder_steps(
    policy_id: PathId,
    body: StepOrder,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> PolicyOut:
    """Put the steps in the order of `step_ids`, a permutation of the policy's step ids (team administrators)."""
    policy = _policy(session, who, policy_id, "admin")
    steps = service.reorder_steps(session, policy=policy, step_ids=body.step_ids, actor=_actor(who))
    return _policy_out(policy, steps)


@router.get("/escalation-policies/{policy_id}/steps/{step_id}", response_model=StepOut, summary="A step")
def get_step(
    policy_id: PathId,
    step_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
) -> StepOut:
    """One step."""
    policy = _policy(session, who, policy_id, "read")
    return _step_out(service.get_step(session, policy=policy, step_id=step_id))


@router.patch(
    "/escalation-policies/{policy_id}/steps/{step_id}", response_model=StepOut, summary="Change a step"
)
def update_step(
    policy_id: PathId,
    step_id: PathId,
    body: StepPatch,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> StepOut:
    """Change a step (team administrators); a new kind keeps only the targets and settings it reads.

    `targets` and `config` merge key by key: `{"config": {"timezone": "Europe/Berlin"}}` changes
    only the window's zone.
    """
    policy = _policy(session, who, policy_id, "admin")
    step = service.get_step(session, policy=policy, step_id=step_id)
    changes = body.model_dump(exclude_unset=True)
    row = service.update_step(session, policy=policy, step=step, changes=changes, actor=_actor(who))
    return _step_out(row)


@router.delete("/escalation-policies/{policy_id}/steps/{step_id}", status_code=204, summary="Delete a step")
def delete_step(
    policy_id: PathId,
    step_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> None:
    """Remove a step; later steps move up (team administrators)."""
    policy = _policy(session, who, policy_id, "admin")
    step = service.get_step(session, policy=policy, step_id=step_id)
    service.delete_step(session, policy=policy, step=step, actor=_actor(who))


# --- dry run ---------------------------------------------------------------------------------


@router.post("/escalation-policies/{policy_id}/test", response_model=DryRunOut, summary="Dry-run the policy")
def dry_run(
    policy_id: PathId,
    body: DryRunIn | None = None,
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
) -> DryRunOut:
    """What an alert firing at `start_at` would go through: who is paged when. Sends and writes nothing."""
    policy = _policy(session, who, policy_id, "read")
    options = body or DryRunIn()
    result = service.dry_run(
        session,
        policy=policy,
        start_at=options.start_at or utcnow(),
        assume_unacknowledged=options.assume_unacknowledged,
    )
    return DryRunOut(
        policy_id=policy_id,
        start_at=result.start_at,
        assume_unacknowledged=options.assume_unacknowledged,
        items=[
            DryRunItemOut(
                offset_seconds=int(item.offset.total_seconds()),
                at=item.at,
                step_index=item.step_index,
                cycle=item.cycle,
                kind=item.kind,
                action=item.action,
                targets=[TargetPerson(user_id=p.user_id, name=p.name, email=p.email) for p in item.targets],
                webhook_url=item.webhook_url,
                reason=item.reason,
            )
            for item in result.items
        ],
        warnings=[
            DryRunWarningOut(code=w.code, message=w.message, step_index=w.step_index, cycle=w.cycle, at=w.at)
            for w in result.warnings
        ],
    )
