"""Escalation policies: a builder to add, reorder and remove steps (kind, targets, delay, important,
time window, webhook URL), the policy's repeat count and re-escalation after acknowledgement, and
a "test this policy" preview of who would be paged when.

Saving and deleting need the admin role in the policy's team (checked on the server, as the REST
API does). The preview runs `services.escalation_policies.dry_run` on the *unsaved* draft: the
draft is written inside a transaction that is always rolled back, so the preview validates and
resolves targets exactly as a saved policy would, and nothing is stored or published.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, NoReturn, cast

import reflex as rx
from sqlmodel import Session, col, select

from pages.config_kit import (
    WEEKDAYS,
    Refused,
    admin_team_ids,
    attempt,
    data_table,
    error_callout,
    ev,
    labeled,
    local_input,
    local_text,
    minutes_text,
    parse_int,
    parse_local,
    read_only_note,
    safe_zone,
    section,
    select_fixed,
    select_from,
    sentence,
    size,
    team_options,
    timezone_datalist,
    two_columns,
)
from pages.layout import empty_note, shell
from pages.live import LiveState
from pages.state import AuthState, in_db, viewer
from sentinel_app.api.deps import Principal
from sentinel_app.api.errors import ApiError
from sentinel_app.db import utcnow
from sentinel_app.domain.escalation_policy import (
    MAX_DELAY_MINUTES,
    MAX_REESCALATE_MINUTES,
    MAX_REPEAT_COUNT,
    NOTIFY_TARGETS,
)
from sentinel_app.models import EscalationPolicy, Schedule, Team, TeamMembership, User
from sentinel_app.models.base import require_id
from sentinel_app.services import escalation_policies as service
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import NotFound, ServiceError

KIND_CHOICES = [
    ("notify_users", "Notify people"),
    ("notify_schedule", "Notify who is on call"),
    ("notify_team", "Notify a whole team"),
    ("round_robin", "Round robin (one person each time)"),
    ("wait", "Wait"),
    ("webhook", "Call a webhook"),
    ("time_window", "Continue only within a time window"),
    ("resolve", "Resolve the alert"),
]
KIND_LABELS = dict(KIND_CHOICES)
# Which option list a kind's targets come from.
TARGET_SOURCE = {"user_ids": "users", "schedule_ids": "schedules", "team_ids": "teams"}


@dataclasses.dataclass
class StepDraft:
    """A step as edited in the builder (form values as text)."""

    id: str = ""  # the stored step's id ("" for a new step)
    kind: str = "notify_users"
    delay: str = "5"
    important: bool = False
    user_ids: list[str] = dataclasses.field(default_factory=list)
    schedule_ids: list[str] = dataclasses.field(default_factory=list)
    team_ids: list[str] = dataclasses.field(default_factory=list)
    url: str = ""
    timezone: str = "UTC"
    weekdays: list[str] = dataclasses.field(default_factory=lambda: ["0", "1", "2", "3", "4"])
    start: str = "09:00"
    end: str = "17:00"


@dataclasses.dataclass
class StepView:
    """A step as shown: position, kind and the names of its targets."""

    index: int = 0
    number: str = "1"
    kind: str = ""
    kind_label: str = ""
    target_field: str = ""  # user_ids | schedule_ids | team_ids | ""
    delay: str = ""
    important: bool = False
    url: str = ""
    timezone: str = ""
    start: str = ""
    end: str = ""
    weekdays: list[str] = dataclasses.field(default_factory=list)
    targets: list[dict[str, str]] = dataclasses.field(default_factory=list)
    first: bool = False
    last: bool = False


def step_draft(row: Any) -> StepDraft:
    """A stored step row as a draft."""
    targets, config = row.targets or {}, row.config or {}
    return StepDraft(
        id=str(row.id),
        kind=row.kind,
        delay=str(row.delay_minutes),
        important=row.important,
        user_ids=[str(i) for i in targets.get("user_ids") or []],
        schedule_ids=[str(i) for i in targets.get("schedule_ids") or []],
        team_ids=[str(i) for i in targets.get("team_ids") or []],
        url=str(config.get("url") or ""),
        timezone=str(config.get("timezone") or "UTC"),
        weekdays=[str(d) for d in config.get("weekdays") or []] or ["0", "1", "2", "3", "4"],
        start=str(config.get("start") or "09:00")[:5],
        end=str(config.get("end") or "17:00")[:5],
    )


def step_fields(step: StepDraft, index: int, *, with_id: bool) -> dict[str, Any]:
    """A draft as the service's step fields (only what the kind reads)."""
    where = f"Step {index + 1}"
    fields: dict[str, Any] = {
        "kind": step.kind,
        "delay_minutes": parse_int(
            step.delay, what=f"{where} delay", low=0, high=MAX_DELAY_MINUTES, default=0
        ),
        "important": step.important,
    }
    target = NOTIFY_TARGETS.get(step.kind)
    if target:
        fields["targets"] = {target: [int(i) for i in getattr(step, target) if i.isdigit()]}
    if step.kind == "webhook":
        fields["config"] = {"url": step.url.strip()}
    elif step.kind == "time_window":
        fields["config"] = {
            "timezone": step.timezone.strip() or "UTC",
            "weekdays": sorted(int(d) for d in step.weekdays if d.isdigit()),
            "start": step.start,
            "end": step.end,
        }
    if with_id and step.id.isdigit():
        fields["id"] = int(step.id)
    return fields


class _Rollback(Exception):
    """Carries a preview's result out of a transaction that must not commit."""

    def __init__(self, result: service.DryRun) -> None:
        super().__init__("preview")
        self.result = result


def _options(session: Session, principal: Principal) -> dict[str, list[dict[str, str]]]:
    teams = principal.visible_team_ids()
    users = select(User.id, User.name).where(col(User.is_active).is_(True)).order_by(col(User.name))
    if teams is not None:
        members = select(TeamMembership.user_id).where(col(TeamMembership.team_id).in_(sorted(teams) or [-1]))
        users = users.where(col(User.id).in_(members) | (User.id == principal.user_id))
    return {
        "users": [{"id": str(i), "name": str(n)} for i, n in session.execute(users).all()],
        "teams": team_options(session, teams),
        "admin_teams": team_options(session, admin_team_ids(principal)),
    }


def _policy_rows(session: Session, teams: set[int] | None) -> list[dict[str, str]]:
    policies = service.list_policies(session, team_ids=teams)
    steps = service.steps_of(session, policy_ids=[require_id(p) for p in policies])
    names = {require_id(t): t.name for t in session.exec(select(Team))}
    return [
        {
            "id": str(require_id(p)),
            "name": p.name,
            "team": names.get(p.team_id, ""),
            "steps": str(len(steps[require_id(p)])),
            "repeat": str(p.repeat_count),
        }
        for p in policies
    ]


def _schedule_options(session: Session, team_id: int) -> list[dict[str, str]]:
    rows = session.execute(
        select(Schedule.id, Schedule.name).where(Schedule.team_id == team_id).order_by(col(Schedule.name))
    ).all()
    return [{"id": str(i), "name": str(n)} for i, n in rows]


class PoliciesState(rx.State):
    """The policy list, the open draft and its preview, in this tab."""

    policies: list[dict[str, str]] = []
    loaded: bool = False
    editing: bool = False
    policy_id: int = 0
    can_admin: bool = False
    d_team: str = ""
    d_name: str = ""
    d_description: str = ""
    d_repeat: str = "0"
    d_reescalate: str = ""
    steps: list[StepDraft] = []
    users: list[dict[str, str]] = []
    schedules: list[dict[str, str]] = []
    teams: list[dict[str, str]] = []
    admin_teams: list[dict[str, str]] = []
    preview_start: str = ""
    preview_unacked: bool = True
    preview_items: list[dict[str, str]] = []
    preview_warnings: list[str] = []
    preview_ran: bool = False
    error: str = ""
    viewer_zone: str = "UTC"
    _teams: list[int] = []
    _all: bool = False

    # --- loading ---------------------------------------------------------------------------

    def _team_set(self) -> set[int] | None:
        return None if self._all else set(self._teams)

    @rx.event
    async def load(self) -> None:
        """`on_load`: the visible policies; `?id=` opens one, `?new=1` a fresh draft."""
        principal = await viewer(self)
        if principal is None:
            return
        teams = principal.visible_team_ids()
        self._all, self._teams = teams is None, sorted(teams or [])
        self.viewer_zone = safe_zone(principal.user.timezone)
        options = await in_db(lambda s: _options(s, principal))
        self.users, self.teams, self.admin_teams = options["users"], options["teams"], options["admin_teams"]
        await self._reload_list()
        self.error, self.editing = "", False
        params = self.router.url.query_parameters
        wanted = str(params.get("id", ""))
        if wanted.isdigit():
            await self._open(int(wanted))
        elif params.get("new") and self.admin_teams:
            await self._new()

    async def _reload_list(self) -> None:
        teams = self._team_set()
        self.policies = await in_db(lambda s: _policy_rows(s, teams))
        self.loaded = True

    async def _open(self, policy_id: int) -> None:
        teams = self._team_set()

        def load(session: Session) -> tuple[EscalationPolicy, list[Any], list[dict[str, str]]] | None:
            policy = session.get(EscalationPolicy, policy_id)
            if policy is None or (teams is not None and policy.team_id not in teams):
                return None
            rows = service.steps_of(session, policy_ids=[policy_id])[policy_id]
            return policy, rows, _schedule_options(session, policy.team_id)

        found = await in_db(load)
        principal = await viewer(self)
        if found is None or principal is None:
            self.error = f"Escalation policy {policy_id} does not exist or belongs to a team you are not in."
            self.editing = False
            return
        policy, rows, schedules = found
        self.policy_id = policy_id
        self.d_team, self.d_name, self.d_description = str(policy.team_id), policy.name, policy.description
        self.d_repeat = str(policy.repeat_count)
        self.d_reescalate = str(policy.reescalate_after_ack_minutes or "")
        self.steps = [step_draft(r) for r in rows]
        self.schedules = schedules
        self.can_admin = principal.can("admin", policy.team_id)
        self._reset_preview()
        self.error, self.editing = "", True

    async def _new(self) -> None:
        self.policy_id = 0
        team = (
            self.d_team if self.d_team in {t["id"] for t in self.admin_teams} else self.admin_teams[0]["id"]
        )
        self.d_team, self.d_name, self.d_description = team, "", ""
        self.d_repeat, self.d_reescalate = "0", ""
        self.steps = [StepDraft()]
        team_id = int(team)
        self.schedules = await in_db(lambda s: _schedule_options(s, team_id))
        self.can_admin = True
        self._reset_preview()
        self.error, self.editing = "", True

    def _reset_preview(self) -> None:
        self.preview_items, self.preview_warnings, self.preview_ran = [], [], False
        self.preview_start = local_input(utcnow(), self.viewer_zone)

    @rx.event
    async def open_policy(self, policy_id: str) -> None:
        """Open a policy in the builder."""
        if policy_id.isdigit():
            await self._open(int(policy_id))

    @rx.event
    async def new_policy(self) -> None:
        """Start a new policy (in a team the person administers)."""
        if self.admin_teams:
            await self._new()

    @rx.event
    def close(self) -> None:
        """Close the builder without saving."""
        self.editing = False

    # --- editing ---------------------------------------------------------------------------

    @rx.var
    def step_views(self) -> list[StepView]:
        """The draft's steps with target names, for display."""
        names = {
            "user_ids": {o["id"]: o["name"] for o in self.users},
            "schedule_ids": {o["id"]: o["name"] for o in self.schedules},
            "team_ids": {o["id"]: o["name"] for o in self.teams},
        }
        views = []
        for i, step in enumerate(self.steps):
            field = NOTIFY_TARGETS.get(step.kind, "")
            ids = getattr(step, field) if field else []
            views.append(
                StepView(
                    index=i,
                    number=str(i + 1),
                    kind=step.kind,
                    kind_label=KIND_LABELS.get(step.kind, step.kind),
                    target_field=field,
                    delay=step.delay,
                    important=step.important,
                    url=step.url,
                    timezone=step.timezone,
                    start=step.start,
                    end=step.end,
                    weekdays=list(step.weekdays),
                    targets=[{"id": t, "name": names[field].get(t, f"#{t}")} for t in ids] if field else [],
                    first=i == 0,
                    last=i == len(self.steps) - 1,
                )
            )
        return views

    @rx.event
    def set_draft(self, name: str, value: str) -> None:
        """Change a policy field of the draft."""
        if name in ("d_name", "d_description", "d_repeat", "d_reescalate"):
            setattr(self, name, str(value)[:2000])

    @rx.event
    async def set_team(self, value: str) -> None:
        """Move a new draft to another team (its schedule targets are dropped)."""
        if self.policy_id or value not in {t["id"] for t in self.admin_teams}:
            return
        self.d_team = value
        team_id = int(value)
        self.schedules = await in_db(lambda s: _schedule_options(s, team_id))
        self.steps = [dataclasses.replace(s, schedule_ids=[]) for s in self.steps]

    def _update(self, index: int, **changes: Any) -> None:
        steps = list(self.steps)
        if 0 <= index < len(steps):
            steps[index] = dataclasses.replace(steps[index], **changes)
            self.steps = steps

    @rx.event
    def add_step(self) -> None:
        """Append a step (notify people after 5 minutes)."""
        self.steps = [*self.steps, StepDraft()]

    @rx.event
    def remove_step(self, index: int) -> None:
        """Remove a step."""
        self.steps = [s for i, s in enumerate(self.steps) if i != index]

    @rx.event
    def move_step(self, index: int, delta: int) -> None:
        """Move a step up (-1) or down (+1)."""
        j = index + delta
        steps = list(self.steps)
        if 0 <= index < len(steps) and 0 <= j < len(steps):
            steps[index], steps[j] = steps[j], steps[index]
            self.steps = steps

    @rx.event
    def set_step(self, index: int, name: str, value: str) -> None:
        """Change a text field of a step (kind, delay, url, timezone, start, end)."""
        if name in ("kind", "delay", "url", "timezone", "start", "end"):
            self._update(index, **{name: str(value)[:2000]})

    @rx.event
    def set_important(self, index: int, value: bool) -> None:
        """Page with the people's important-notification rules."""
        self._update(index, important=bool(value))

    @rx.event
    def add_target(self, index: int, target_id: str) -> None:
        """Add a person, schedule or team to a step (by the step's kind)."""
        if not 0 <= index < len(self.steps):
            return
        field = NOTIFY_TARGETS.get(self.steps[index].kind)
        if field and target_id not in getattr(self.steps[index], field):
            self._update(index, **{field: [*getattr(self.steps[index], field), target_id]})

    @rx.event
    def remove_target(self, index: int, target_id: str) -> None:
        """Take a target off a step."""
        if not 0 <= index < len(self.steps):
            return
        field = NOTIFY_TARGETS.get(self.steps[index].kind)
        if field:
            self._update(index, **{field: [t for t in getattr(self.steps[index], field) if t != target_id]})

    @rx.event
    def toggle_weekday(self, index: int, day: str) -> None:
        """Include or exclude a weekday of a time window step."""
        if 0 <= index < len(self.steps):
            days = list(self.steps[index].weekdays)
            self._update(
                index, weekdays=[d for d in days if d != day] if day in days else sorted([*days, day])
            )

    # --- saving ----------------------------------------------------------------------------

    def _changes(self, *, with_ids: bool) -> dict[str, Any]:
        return {
            "name": self.d_name,
            "description": self.d_description,
            "repeat_count": parse_int(self.d_repeat, what="Repeat", low=0, high=MAX_REPEAT_COUNT, default=0),
            "reescalate_after_ack_minutes": parse_int(
                self.d_reescalate, what="Re-escalate after", low=1, high=MAX_REESCALATE_MINUTES
            ),
            "steps": [step_fields(s, i, with_id=with_ids) for i, s in enumerate(self.steps)],
        }

    @rx.event
    async def save(self) -> Any:
        """Create or change the policy (team administrators only, checked on the server)."""
        try:
            changes = self._changes(with_ids=True)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message)
        policy_id, team_id = self.policy_id, int(self.d_team) if self.d_team.isdigit() else 0

        def action(session: Session, principal: Principal, actor: Actor) -> int:
            if policy_id:
                policy = _policy_for(session, principal, policy_id, "admin")
                service.update_policy(session, policy=policy, changes=changes, actor=actor)
                return policy_id
            principal.require("admin", team_id)
            steps = [{k: v for k, v in s.items() if k != "id"} for s in changes.pop("steps")]
            policy, _ = service.create_policy(session, team_id=team_id, steps=steps, actor=actor, **changes)
            return require_id(policy)

        try:
            saved = await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        await self._reload_list()
        await self._open(saved)
        return rx.toast.success(f"Escalation policy {self.d_name.strip()!r} saved")

    @rx.event
    async def delete(self) -> Any:
        """Delete the policy (refused while integrations or routes use it)."""
        policy_id = self.policy_id

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            policy = _policy_for(session, principal, policy_id, "admin")
            service.delete_policy(session, policy=policy, actor=actor)

        try:
            await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.editing, self.error = False, ""
        await self._reload_list()
        return rx.toast.success("Escalation policy deleted")

    # --- preview ---------------------------------------------------------------------------

    @rx.event
    def set_preview_start(self, value: str) -> None:
        """When the imagined alert fires (the viewer's clock)."""
        self.preview_start = value

    @rx.event
    def set_preview_unacked(self, value: bool) -> None:
        """Whether nobody acknowledges (else someone does right after the first page)."""
        self.preview_unacked = bool(value)

    @rx.event
    async def run_preview(self) -> Any:
        """Dry-run the draft as it is on screen (nothing is saved or sent)."""
        principal = await viewer(self)
        if principal is None:
            return rx.toast.error("Your session has ended: sign in again.")
        try:
            changes = self._changes(with_ids=True)
            start = (
                parse_local(self.preview_start, self.viewer_zone, what="Alert fires at")
                if self.preview_start
                else utcnow()
            )
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message)
        policy_id, team_id, unacked = self.policy_id, int(self.d_team or 0), self.preview_unacked

        # `in_db` commits when its function returns; this one never returns (it raises _Rollback
        # with the result), so the draft written here is always rolled back.
        def dry(session: Session) -> NoReturn:
            if policy_id:
                policy = _policy_for(session, principal, policy_id, "read")
                service.update_policy(session, policy=policy, changes=changes)
            else:
                principal.require("read", team_id)
                steps = [{k: v for k, v in s.items() if k != "id"} for s in changes.pop("steps")]
                # A throwaway name: the draft's own may be empty or taken while it is typed.
                changes["name"] = f"preview {uuid.uuid4()}"
                policy, _ = service.create_policy(session, team_id=team_id, steps=steps, **changes)
            raise _Rollback(
                service.dry_run(session, policy=policy, start_at=start, assume_unacknowledged=unacked)
            )

        try:
            await in_db(dry, write=True)
            raise AssertionError("a preview transaction must not commit")
        except _Rollback as done:
            result = done.result
        except ApiError as exc:
            self.error = sentence(exc.message)
            return rx.toast.error(self.error)
        except ServiceError as exc:
            self.error = sentence(f"{exc.field}: {exc.message}" if exc.field else exc.message)
            return rx.toast.error(self.error, duration=8000)
        self.error = ""
        self._show_preview(result)
        return None

    def _show_preview(self, result: Any) -> None:
        zone = self.viewer_zone
        self.preview_items = [
            {
                "offset": "+" + minutes_text(int(item.offset.total_seconds() // 60)),
                "at": local_text(item.at, zone),
                "step": str(item.step_index + 1),
                "cycle": str(item.cycle + 1),
                "action": KIND_LABELS.get(item.action, item.action),
                "important": "yes"
                if self.steps and item.step_index < len(self.steps) and self.steps[item.step_index].important
                else "",
                "who": ", ".join(p.name for p in item.targets)
                or (item.webhook_url or "")
                or (item.reason or ""),
            }
            for item in result.items
        ]
        self.preview_warnings = [sentence(w.message) for w in result.warnings]
        self.preview_ran = True


def _policy_for(session: Session, principal: Principal, policy_id: int, action: str) -> EscalationPolicy:
    """The policy, if the person may `action` in its team (404 for other teams' policies)."""
    try:
        policy = service.get_policy(session, policy_id=policy_id)
    except NotFound:
        policy = None
    team_id = policy.team_id if policy is not None else None
    principal.require_visible(team_id, action, what="escalation policy", ident=policy_id, field="policy_id")
    assert policy is not None
    return policy


# --- view --------------------------------------------------------------------------------------

P = PoliciesState


def _policy_list() -> rx.Component:
    return section(
        "Policies",
        rx.cond(
            P.loaded & (size(P.policies) == 0),
            empty_note("No escalation policies yet."),
            rx.vstack(
                rx.foreach(
                    P.policies,
                    lambda p: rx.box(
                        rx.hstack(
                            rx.vstack(
                                rx.text(p["name"], weight="bold", size="2"),
                                rx.text(
                                    p["team"], " · ", p["steps"], " steps", size="1", color_scheme="gray"
                                ),
                                spacing="0",
                            ),
                            rx.spacer(),
                            rx.icon("chevron-right", size=16),
                            align="center",
                            width="100%",
                        ),
                        on_click=ev(P.open_policy, p["id"]),
                        cursor="pointer",
                        padding="0.5rem",
                        border_radius="var(--radius-2)",
                        background=rx.cond(
                            P.editing & (cast(Any, P.policy_id).to_string() == p["id"]),
                            "var(--accent-a3)",
                            "transparent",
                        ),
                        _hover={"background": "var(--gray-a3)"},
                        id="policy-" + p["id"],
                        class_name="policy-item",
                        width="100%",
                    ),
                ),
                spacing="1",
                width="100%",
            ),
        ),
        actions=rx.cond(
            size(P.admin_teams) > 0,
            rx.button("New policy", size="2", on_click=P.new_policy, id="new-policy"),
        ),
    )


def _target_editor(view: Any) -> rx.Component:
    options = rx.match(
        view.target_field,
        ("schedule_ids", P.schedules),
        ("team_ids", P.teams),
        P.users,
    )
    return rx.vstack(
        rx.hstack(
            rx.foreach(
                view.targets,
                lambda t: rx.badge(
                    t["name"],
                    rx.icon(
                        "x", size=12, cursor="pointer", on_click=ev(P.remove_target, view.index, t["id"])
                    ),
                    variant="soft",
                    size="2",
                    class_name="step-target",
                ),
            ),
            wrap="wrap",
            spacing="1",
        ),
        rx.select.root(
            rx.select.trigger(
                placeholder=rx.match(
                    view.target_field,
                    ("schedule_ids", "Add a schedule…"),
                    ("team_ids", "Add a team…"),
                    "Add a person…",
                ),
                width="100%",
                class_name="step-add-target",
            ),
            rx.select.content(rx.foreach(options, lambda o: rx.select.item(o["name"], value=o["id"]))),
            value="",
            on_change=lambda v: ev(P.add_target, view.index, v),
        ),
        spacing="1",
        width="100%",
    )


def _window_editor(view: Any) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            *[
                rx.button(
                    name,
                    size="1",
                    variant=rx.cond(view.weekdays.contains(str(i)), "solid", "outline"),
                    on_click=ev(P.toggle_weekday, view.index, str(i)),
                )
                for i, name in enumerate(WEEKDAYS)
            ],
            wrap="wrap",
            spacing="1",
        ),
        rx.flex(
            rx.input(
                type="time",
                value=view.start,
                on_change=lambda v: ev(P.set_step, view.index, "start", v),
                width="7rem",
            ),
            rx.text("to", size="1"),
            rx.input(
                type="time",
                value=view.end,
                on_change=lambda v: ev(P.set_step, view.index, "end", v),
                width="7rem",
            ),
            rx.input(
                value=view.timezone,
                on_change=lambda v: ev(P.set_step, view.index, "timezone", v),
                custom_attrs={"list": "tz-names"},
                placeholder="Timezone",
                width="14rem",
            ),
            wrap="wrap",
            spacing="2",
            align="center",
        ),
        spacing="2",
        width="100%",
    )


def _step(view: Any) -> rx.Component:
    has_targets = view.target_field != ""
    return rx.card(
        rx.vstack(
            rx.flex(
                rx.badge("Step ", view.number, size="2", variant="solid"),
                rx.box(
                    select_fixed(
                        KIND_CHOICES,
                        view.kind,
                        lambda v: ev(P.set_step, view.index, "kind", v),
                        class_name="step-kind",
                    ),
                    flex="1",
                    min_width="12rem",
                ),
                rx.hstack(
                    rx.icon_button(
                        rx.icon("arrow-up", size=14),
                        size="1",
                        variant="soft",
                        disabled=view.first,
                        on_click=ev(P.move_step, view.index, -1),
                        class_name="step-up",
                        aria_label="Move up",
                    ),
                    rx.icon_button(
                        rx.icon("arrow-down", size=14),
                        size="1",
                        variant="soft",
                        disabled=view.last,
                        on_click=ev(P.move_step, view.index, 1),
                        class_name="step-down",
                        aria_label="Move down",
                    ),
                    rx.icon_button(
                        rx.icon("trash-2", size=14),
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=ev(P.remove_step, view.index),
                        class_name="step-remove",
                        aria_label="Remove step",
                    ),
                    spacing="1",
                ),
                spacing="2",
                align="center",
                wrap="wrap",
                width="100%",
            ),
            rx.cond(has_targets, _target_editor(view)),
            rx.cond(
                view.kind == "webhook",
                rx.input(
                    value=view.url,
                    on_change=lambda v: ev(P.set_step, view.index, "url", v),
                    placeholder="https://example.com/hook",
                    width="100%",
                    class_name="step-url",
                ),
            ),
            rx.cond(view.kind == "time_window", _window_editor(view)),
            rx.flex(
                rx.hstack(
                    rx.text("then wait", size="2"),
                    rx.input(
                        value=view.delay,
                        on_change=lambda v: ev(P.set_step, view.index, "delay", v),
                        type="number",
                        min=0,
                        width="5.5rem",
                        class_name="step-delay",
                    ),
                    rx.text("minutes", size="2"),
                    align="center",
                    spacing="2",
                ),
                rx.cond(
                    has_targets,
                    rx.checkbox(
                        "Important (use people's important-notification rules)",
                        checked=view.important,
                        on_change=lambda v: ev(P.set_important, view.index, v),
                        class_name="step-important",
                    ),
                ),
                spacing="3",
                wrap="wrap",
                align="center",
            ),
            spacing="2",
            width="100%",
        ),
        class_name="step-card",
        width="100%",
    )


def _preview() -> rx.Component:
    return section(
        "Test this policy",
        rx.text(
            "What an alert firing at this time would go through with the steps above (saved or not). "
            "Nothing is sent or stored.",
            size="2",
            color_scheme="gray",
        ),
        rx.flex(
            labeled(
                "Alert fires at (your clock)",
                rx.input(
                    width="100%",
                    type="datetime-local",
                    value=P.preview_start,
                    on_change=P.set_preview_start,
                    id="preview-start",
                ),
            ),
            rx.checkbox(
                "Nobody acknowledges",
                checked=P.preview_unacked,
                on_change=P.set_preview_unacked,
                align_self="end",
            ),
            rx.button("Run test", on_click=P.run_preview, variant="soft", id="run-preview", align_self="end"),
            direction=rx.breakpoints(initial="column", sm="row"),
            spacing="3",
            width="100%",
        ),
        rx.foreach(
            P.preview_warnings,
            lambda w: rx.callout(
                w,
                icon="triangle-alert",
                color_scheme="amber",
                size="1",
                class_name="preview-warning",
                width="100%",
            ),
        ),
        rx.cond(
            P.preview_ran,
            data_table(
                ["After", "At", "Step", "Round", "Action", "Who / where"],
                P.preview_items,
                lambda it: rx.table.row(
                    rx.table.cell(it["offset"], white_space="nowrap"),
                    rx.table.cell(it["at"], white_space="nowrap"),
                    rx.table.cell(it["step"]),
                    rx.table.cell(it["cycle"]),
                    rx.table.cell(
                        it["action"],
                        rx.cond(
                            it["important"] != "",
                            rx.badge("important", color_scheme="red", size="1", margin_left="0.3rem"),
                        ),
                    ),
                    rx.table.cell(it["who"], class_name="preview-who"),
                    class_name="preview-row",
                ),
                size="1",
                min_width="40rem",
                id="policy-preview",
            ),
        ),
        id="policy-test",
    )


def _builder() -> rx.Component:
    return rx.vstack(
        read_only_note(
            ~P.can_admin,
            "You can look at and test this policy; changing it needs the admin role in its team.",
        ),
        section(
            rx.cond(P.policy_id > 0, "Edit policy", "New policy"),
            rx.grid(
                labeled(
                    "Name",
                    rx.input(
                        width="100%",
                        value=P.d_name,
                        on_change=lambda v: ev(P.set_draft, "d_name", v),
                        id="policy-name",
                    ),
                ),
                labeled(
                    "Team",
                    select_from(
                        P.admin_teams, P.d_team, P.set_team, id="policy-team", disabled=P.policy_id > 0
                    ),
                ),
                labeled(
                    "Repeat all steps",
                    rx.input(
                        width="100%",
                        value=P.d_repeat,
                        on_change=lambda v: ev(P.set_draft, "d_repeat", v),
                        type="number",
                        min=0,
                        max=MAX_REPEAT_COUNT,
                        id="policy-repeat",
                    ),
                    hint="more times if nobody acknowledges",
                ),
                labeled(
                    "Re-escalate after acknowledgement (minutes)",
                    rx.input(
                        width="100%",
                        value=P.d_reescalate,
                        on_change=lambda v: ev(P.set_draft, "d_reescalate", v),
                        type="number",
                        min=1,
                        placeholder="never",
                        id="policy-reescalate",
                    ),
                    hint="if still unresolved",
                ),
                columns=rx.breakpoints(initial="1", sm="2"),
                spacing="3",
                width="100%",
            ),
            labeled(
                "Description",
                rx.text_area(
                    width="100%",
                    value=P.d_description,
                    on_change=lambda v: ev(P.set_draft, "d_description", v),
                    rows="2",
                    id="policy-description",
                ),
            ),
            rx.vstack(rx.foreach(P.step_views, _step), spacing="2", width="100%", id="policy-steps"),
            rx.button("Add step", variant="soft", on_click=P.add_step, id="add-step"),
            error_callout(P.error, id="policy-error"),
            rx.flex(
                rx.cond(P.can_admin, rx.button("Save policy", on_click=P.save, id="policy-save")),
                rx.button("Close", variant="soft", color_scheme="gray", on_click=P.close),
                rx.spacer(),
                rx.cond(
                    (P.policy_id > 0) & P.can_admin,
                    rx.button(
                        "Delete policy",
                        variant="soft",
                        color_scheme="red",
                        on_click=P.delete,
                        id="policy-delete",
                    ),
                ),
                spacing="2",
                width="100%",
                wrap="wrap",
            ),
        ),
        _preview(),
        spacing="4",
        width="100%",
    )


def index() -> rx.Component:
    """The escalation policies page."""
    return shell(
        "Escalation policies",
        two_columns(
            _policy_list(),
            rx.cond(
                P.editing,
                _builder(),
                rx.vstack(
                    error_callout(P.error, id="policy-error"),
                    empty_note("Choose a policy to edit and test it, or create a new one."),
                    width="100%",
                ),
            ),
        ),
        timezone_datalist(),
    )


ON_LOAD = [AuthState.require_login, PoliciesState.load, LiveState.detach]
