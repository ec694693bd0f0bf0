"""Schedules: every visible schedule with who is on call now, and a form to create one.

Creating a schedule needs the admin role in its team (checked on the server in the action).
The list follows `oncall.changed` on the bus, so hand-offs and edits made elsewhere show up.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import reflex as rx
from sqlmodel import Session, col, func, select

from pages import live
from pages.config_kit import (
    Refused,
    admin_team_ids,
    attempt,
    data_table,
    error_callout,
    ev,
    labeled,
    local_text,
    safe_zone,
    section,
    select_from,
    size,
    team_options,
    timezone_datalist,
)
from pages.layout import empty_note, shell, until
from pages.live import LiveBatch, LivePage, LiveScope, LiveState
from pages.queries import iso
from pages.state import AuthState, in_db, viewer
from sentinel_app.api.deps import Principal
from sentinel_app.db import utcnow
from sentinel_app.models import RotationLayer, Team, User
from sentinel_app.models.base import require_id
from sentinel_app.services import schedules as service
from sentinel_app.services.actor import Actor


@dataclasses.dataclass(frozen=True)
class ScheduleRow:
    """One line of the list (plain data, built in a worker thread)."""

    id: int
    name: str
    team: str
    timezone: str
    layers: int
    on_call: str
    until: str
    until_text: str


def load_rows(session: Session, teams: set[int] | None, viewer_zone: str) -> list[ScheduleRow]:
    """The visible schedules with who is on call now and until when."""
    now = utcnow()
    schedules = service.list_schedules(session, team_ids=teams)
    ids = [require_id(s) for s in schedules] or [-1]
    team_ids = sorted({s.team_id for s in schedules}) or [-1]
    team_names = {require_id(t): t.name for t in session.exec(select(Team).where(col(Team.id).in_(team_ids)))}
    on_call = service.on_call_now(session, team_ids=teams, at=now)
    people = service.users_by_id(session, user_ids=[o.user_id for o in on_call])
    counts = session.execute(
        select(RotationLayer.schedule_id, func.count())
        .where(col(RotationLayer.schedule_id).in_(ids))
        .group_by(col(RotationLayer.schedule_id))
    ).all()
    layer_counts = {int(sid): int(n) for sid, n in counts}
    rows = []
    for schedule in schedules:
        sid = require_id(schedule)
        here = [o for o in on_call if o.schedule.id == sid]
        names = ", ".join(_name(people.get(o.user_id), o.user_id) for o in here)
        end = here[0].shift_end if here else None
        rows.append(
            ScheduleRow(
                id=sid,
                name=schedule.name,
                team=team_names.get(schedule.team_id, ""),
                timezone=schedule.timezone,
                layers=layer_counts.get(sid, 0),
                on_call=names,
                until=iso(end) if end else "",
                until_text=local_text(end, viewer_zone) if end else "",
            )
        )
    return rows


def _name(user: User | None, user_id: int) -> str:
    return user.name if user is not None else f"user {user_id}"


class SchedulesState(LivePage):
    """The schedule list of this tab and the new-schedule form."""

    live_min_interval: ClassVar[float] = 1.0

    rows: list[dict[str, str]] = []
    loaded: bool = False
    admin_teams: list[dict[str, str]] = []
    new_team: str = ""
    new_name: str = ""
    new_timezone: str = "UTC"
    error: str = ""
    _teams: list[int] = []
    _all: bool = False
    _zone: str = "UTC"
    _ready: bool = False

    @rx.var
    def can_create(self) -> bool:
        """Whether the person administers a team (the server decides on submit)."""
        return len(self.admin_teams) > 0

    @rx.event
    async def load(self) -> None:
        """`on_load`: the list and the teams the person may create schedules in."""
        principal = await viewer(self)
        if principal is None:
            self._ready = False
            return
        teams = principal.visible_team_ids()
        self._all, self._teams = teams is None, sorted(teams or [])
        self._zone = safe_zone(principal.user.timezone)
        self.new_timezone = self._zone
        admin = admin_team_ids(principal)
        self.admin_teams = await in_db(lambda s: team_options(s, admin))
        if self.admin_teams and self.new_team not in {t["id"] for t in self.admin_teams}:
            self.new_team = self.admin_teams[0]["id"]
        self.error = ""
        await self._reload()
        self._ready = True

    async def _reload(self) -> None:
        teams, zone = self._team_set(), self._zone
        self._show(await in_db(lambda s: load_rows(s, teams, zone)))

    def _team_set(self) -> set[int] | None:
        return None if self._all else set(self._teams)

    def _show(self, rows: list[ScheduleRow]) -> None:
        self.rows = [
            {
                "id": str(r.id),
                "name": r.name,
                "team": r.team,
                "timezone": r.timezone,
                "layers": str(r.layers),
                "on_call": r.on_call,
                "until": r.until,
                "until_text": r.until_text,
            }
            for r in rows
        ]
        self.loaded = True

    @rx.event
    def set_new_team(self, value: str) -> None:
        """Pick the team of the new schedule."""
        self.new_team = value

    @rx.event
    def set_new_name(self, value: str) -> None:
        """Type the new schedule's name."""
        self.new_name = value

    @rx.event
    def set_new_timezone(self, value: str) -> None:
        """Type the new schedule's zone."""
        self.new_timezone = value

    @rx.event
    async def create(self) -> Any:
        """Create the schedule (team administrators) and open it."""
        team_id = int(self.new_team) if self.new_team.isdigit() else 0
        name, zone = self.new_name.strip(), self.new_timezone.strip() or "UTC"

        def action(session: Session, principal: Principal, actor: Actor) -> int:
            principal.require("admin", team_id)
            row = service.create_schedule(session, team_id=team_id, name=name, timezone=zone, actor=actor)
            return require_id(row)

        try:
            schedule_id = await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.error, self.new_name = "", ""
        return [rx.toast.success(f"Schedule {name!r} created"), rx.redirect(f"/schedules/{schedule_id}")]

    # --- live ------------------------------------------------------------------------------

    def live_scope(self) -> LiveScope | None:
        """The person's teams; on-call changes only."""
        if not self._ready:
            return None
        teams = None if self._all else frozenset(self._teams)
        return LiveScope(teams=teams, wants_alerts=False, params={"zone": self._zone})

    @staticmethod
    def live_fetch(session: Session, scope: LiveScope, batch: LiveBatch) -> Any:
        """Reload the list when on-call may have changed."""
        if not (batch.oncall or batch.resync):
            return None
        teams = None if scope.teams is None else set(scope.teams)
        return load_rows(session, teams, str(scope.params.get("zone", "UTC")))

    def live_apply(self, batch: LiveBatch, fetched: Any) -> None:
        """Show the reloaded list."""
        if isinstance(fetched, list):
            self._show(fetched)


live.register("schedules", SchedulesState)


# --- view --------------------------------------------------------------------------------------

_WIDE = rx.breakpoints(initial="none", md="table-cell")


def _row(row: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["name"], href="/schedules/" + row["id"], weight="medium")),
        rx.table.cell(row["team"]),
        rx.table.cell(rx.code(row["timezone"], variant="ghost"), display=_WIDE),
        rx.table.cell(row["layers"], display=_WIDE),
        rx.table.cell(
            rx.cond(
                row["on_call"] != "",
                rx.vstack(
                    rx.text(row["on_call"], weight="medium"),
                    rx.cond(
                        row["until"] != "",
                        rx.text(
                            "for ",
                            until(row["until"]),
                            " · ",
                            row["until_text"],
                            size="1",
                            color_scheme="gray",
                        ),
                    ),
                    spacing="0",
                ),
                rx.badge("nobody", color_scheme="red", variant="soft"),
            )
        ),
        id="schedule-row-" + row["id"],
        class_name="schedule-row",
    )


def _table() -> rx.Component:
    return data_table(
        [
            "Schedule",
            "Team",
            rx.table.column_header_cell("Zone", display=_WIDE),
            rx.table.column_header_cell("Layers", display=_WIDE),
            "On call now",
        ],
        SchedulesState.rows,
        _row,
        id="schedules-table",
    )


def _create_form() -> rx.Component:
    return section(
        "New schedule",
        rx.flex(
            labeled(
                "Team",
                select_from(
                    SchedulesState.admin_teams,
                    SchedulesState.new_team,
                    SchedulesState.set_new_team,
                    id="new-schedule-team",
                ),
            ),
            labeled(
                "Name",
                rx.input(
                    width="100%",
                    value=SchedulesState.new_name,
                    on_change=SchedulesState.set_new_name,
                    placeholder="Primary on-call",
                    id="new-schedule-name",
                ),
            ),
            labeled(
                "Timezone",
                rx.input(
                    width="100%",
                    value=SchedulesState.new_timezone,
                    on_change=SchedulesState.set_new_timezone,
                    custom_attrs={"list": "tz-names"},
                    id="new-schedule-timezone",
                ),
            ),
            rx.button("Create", on_click=SchedulesState.create, id="new-schedule-create", align_self="end"),
            direction=rx.breakpoints(initial="column", md="row"),
            spacing="3",
            width="100%",
        ),
        error_callout(SchedulesState.error, id="new-schedule-error"),
        timezone_datalist(),
    )


def index() -> rx.Component:
    """The schedules page."""
    return shell(
        "Schedules",
        rx.cond(
            SchedulesState.loaded & (size(SchedulesState.rows) == 0),
            empty_note("No schedules yet."),
            _table(),
        ),
        rx.cond(SchedulesState.can_create, _create_form()),
    )


ON_LOAD = [AuthState.require_login, SchedulesState.load, ev(LiveState.attach, "schedules")]
