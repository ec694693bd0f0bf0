"""One schedule: a week/month calendar of the final shifts (overrides and gaps highlighted) in the
viewer's timezone, the rotation layers with an editor that previews the next shifts before saving,
overrides (create by a range of two date-times or by clicking two days), and an iCal feed link.

Roles, checked on the server in every action: layers need team admin, overrides and feed links
need responder (write), as in the REST API. The preview runs the pure on-call engine
(`sentinel_app.domain.schedule.layer_shifts`) on the unsaved layer. The page follows
`oncall.changed` on the bus, so changes made elsewhere redraw the calendar.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, ClassVar

import reflex as rx
from sqlmodel import Session

from pages import live
from pages.config_kit import (
    PEOPLE_COLORS,
    WEEKDAYS,
    Refused,
    attempt,
    copy_row,
    data_table,
    error_callout,
    ev,
    labeled,
    local_input,
    local_text,
    member_options,
    minutes_text,
    parse_int,
    parse_local,
    read_only_note,
    row_danger_button,
    safe_zone,
    scroll_x,
    section,
    select_fixed,
    select_from,
    sentence,
    size,
    timezone_datalist,
)
from pages.layout import empty_note, shell, until
from pages.live import LiveBatch, LivePage, LiveScope, LiveState
from pages.queries import iso
from pages.state import AuthState, in_db, viewer
from sentinel_app.api.deps import Principal
from sentinel_app.db import utcnow
from sentinel_app.domain import schedule as engine
from sentinel_app.domain.wallclock import load_zone, to_instant, wall_at
from sentinel_app.models import RotationLayer, Schedule, Team
from sentinel_app.models.base import require_id
from sentinel_app.services import calendars
from sentinel_app.services import schedules as service
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import NotFound, ValidationFailed
from sentinel_app.settings import get_settings

VIEWS = ("week", "month")
KIND_CHOICES = [
    ("daily", "Daily"),
    ("weekly", "Weekly"),
    ("custom", "Custom interval"),
    ("hourly", "Hourly"),
    ("monthly", "Monthly"),
]
UNIT_CHOICES = [("hour", "hours"), ("day", "days"), ("week", "weeks"), ("month", "months")]
WEEKDAY_CHOICES = [("auto", "Same as start"), *[(str(i), name) for i, name in enumerate(WEEKDAYS)]]
RESTRICTION_KINDS = [("daily", "Every day"), ("weekly", "Weekly window")]
WEEKDAY_ONLY = [(str(i), name) for i, name in enumerate(WEEKDAYS)]
PREVIEW_SHIFTS = 10
_PERIOD = {
    "hour": dt.timedelta(hours=1),
    "day": dt.timedelta(days=1),
    "week": dt.timedelta(days=7),
    "month": dt.timedelta(days=31),
}
_KIND_UNIT = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}


# --- plain data (built in worker threads) -----------------------------------------------------


@dataclasses.dataclass
class Segment:
    """A piece of one day: someone on call (from a layer or an override), or a gap."""

    who: str = ""
    user_id: str = ""
    kind: str = "layer"  # layer | override | gap
    start: str = ""  # "09:00" on the viewer's clock
    end: str = ""  # "17:00", or "24:00" when it runs to midnight
    color: str = "gray"
    alt: str = ""  # the same stretch on the schedule's clock (empty when the zones agree)
    full_day: bool = False  # midnight to midnight: the month view leaves the times out
    title: str = ""


@dataclasses.dataclass
class DayCell:
    """One day of the calendar on the viewer's clock."""

    date: str = ""  # YYYY-MM-DD
    label: str = ""  # "Mon 2 Mar"
    day: str = ""  # "2"
    today: bool = False
    outside: bool = False  # another month (month view)
    segments: list[Segment] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class RestrictionDraft:
    """A restriction as typed into the layer editor."""

    kind: str = "daily"
    start: str = "09:00"
    end: str = "17:00"
    start_weekday: str = "0"
    end_weekday: str = "4"


@dataclasses.dataclass(frozen=True)
class Calendar:
    """The days of one calendar view and the people colors used."""

    days: list[DayCell]
    label: str
    legend: list[dict[str, str]]


@dataclasses.dataclass(frozen=True)
class Detail:
    """Everything the page shows about one schedule."""

    schedule_id: int
    team_id: int
    name: str
    team: str
    timezone: str
    description: str
    layers: list[dict[str, str]]
    layer_forms: dict[int, dict[str, Any]]
    overrides: list[dict[str, str]]
    members: list[dict[str, str]]
    on_call: str
    on_call_until: dt.datetime | None
    calendar: Calendar


def view_range(view: str, anchor: dt.date) -> tuple[dt.date, int, str]:
    """First day shown, number of days, and a heading for a week (Monday first) or month grid."""
    if view == "month":
        first = anchor.replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        start = first - dt.timedelta(days=first.weekday())
        last = nxt - dt.timedelta(days=1)
        end = last + dt.timedelta(days=6 - last.weekday())
        return start, (end - start).days + 1, first.strftime("%B %Y")
    start = anchor - dt.timedelta(days=anchor.weekday())
    end = start + dt.timedelta(days=6)
    return start, 7, f"{start:%d %b} \u2013 {end:%d %b %Y}"


def _midnight(day: dt.date, zone_name: str) -> dt.datetime:
    return to_instant(dt.datetime.combine(day, dt.time()), load_zone(zone_name))


def _clock(instant: dt.datetime, zone_name: str, day_end: dt.datetime | None = None) -> str:
    if day_end is not None and instant >= day_end:
        return "24:00"
    return wall_at(instant, load_zone(zone_name)).strftime("%H:%M")


def build_days(
    plan: engine.ShiftPlan,
    *,
    first: dt.date,
    count: int,
    viewer_zone: str,
    schedule_zone: str,
    names: dict[int, str],
    colors: dict[int, str],
    today: dt.date,
    month: int | None = None,
) -> list[DayCell]:
    """Cut the plan's shifts and gaps into days on the viewer's clock."""
    pieces: list[tuple[dt.datetime, dt.datetime, engine.Shift | None]] = [
        (s.start, s.end, s) for s in plan.shifts
    ] + [(lo, hi, None) for lo, hi in plan.gaps]
    pieces.sort(key=lambda p: p[0])
    days: list[DayCell] = []
    for offset in range(count):
        day = first + dt.timedelta(days=offset)
        lo, hi = _midnight(day, viewer_zone), _midnight(day + dt.timedelta(days=1), viewer_zone)
        segments: list[Segment] = []
        for start, end, shift in pieces:
            if end <= lo or start >= hi:
                continue
            a, b = max(start, lo), min(end, hi)
            whole = f"{local_text(start, viewer_zone)} → {local_text(end, viewer_zone)} ({viewer_zone})"
            alt = ""
            if schedule_zone != viewer_zone:
                alt = f"{_clock(a, schedule_zone)}\u2013{_clock(b, schedule_zone)} {schedule_zone}"
                whole += f" · {local_text(start, schedule_zone)} → {local_text(end, schedule_zone)} ({schedule_zone})"
            if shift is None:
                segments.append(
                    Segment(
                        who="Nobody on call",
                        kind="gap",
                        start=_clock(a, viewer_zone),
                        end=_clock(b, viewer_zone, hi),
                        full_day=a == lo and b == hi,
                        color="red",
                        alt=alt,
                        title=f"Gap: {whole}",
                    )
                )
                continue
            who = names.get(shift.user_id, f"user {shift.user_id}")
            segments.append(
                Segment(
                    who=who,
                    user_id=str(shift.user_id),
                    kind=shift.source_kind,
                    start=_clock(a, viewer_zone),
                    end=_clock(b, viewer_zone, hi),
                    full_day=a == lo and b == hi,
                    color=colors.get(shift.user_id, "gray"),
                    alt=alt,
                    title=f"{who}{' (override)' if shift.source_kind == 'override' else ''}: {whole}",
                )
            )
        days.append(
            DayCell(
                date=day.isoformat(),
                label=f"{WEEKDAYS[day.weekday()]} {day.day} {day:%b}",
                day=str(day.day),
                today=day == today,
                outside=month is not None and day.month != month,
                segments=segments,
            )
        )
    return days


def color_map(user_ids: Sequence[int]) -> dict[int, str]:
    """A color per person, in order of first appearance."""
    colors: dict[int, str] = {}
    for user_id in user_ids:
        if user_id not in colors:
            colors[user_id] = PEOPLE_COLORS[len(colors) % len(PEOPLE_COLORS)]
    return colors


def load_calendar(
    session: Session,
    *,
    schedule: Schedule,
    view: str,
    anchor: dt.date,
    viewer_zone: str,
    ordered_people: Sequence[int],
    now: dt.datetime,
) -> Calendar:
    """The calendar of one view, computed from the stored schedule."""
    first, count, label = view_range(view, anchor)
    lo, hi = _midnight(first, viewer_zone), _midnight(first + dt.timedelta(days=count), viewer_zone)
    plan = service.shift_plan(session, schedule_id=require_id(schedule), start=lo, end=hi)
    ids = [*ordered_people, *(s.user_id for s in plan.shifts)]
    people = service.users_by_id(session, user_ids=ids)
    names = {uid: u.name for uid, u in people.items()}
    colors = color_map(ids)
    today = wall_at(now, load_zone(viewer_zone)).date()
    days = build_days(
        plan,
        first=first,
        count=count,
        viewer_zone=viewer_zone,
        schedule_zone=schedule.timezone,
        names=names,
        colors=colors,
        today=today,
        month=anchor.month if view == "month" else None,
    )
    shown = {s.user_id for s in plan.shifts}
    legend = [
        {"name": names.get(uid, f"user {uid}"), "color": colors[uid]}
        for uid in dict.fromkeys(ids)
        if uid in shown
    ]
    return Calendar(days=days, label=label, legend=legend)


def describe_layer(
    row: RotationLayer, participants: Sequence[int], names: dict[int, str], zone: str
) -> dict[str, str]:
    """A layer as display text."""
    every = f"every {row.interval} " if row.interval != 1 else ""
    if row.kind == "custom":
        rhythm = f"Every {row.interval} {row.unit or 'week'}{'s' if row.interval != 1 else ''}"
    elif every:
        rhythm = f"{row.kind.title()}, {every}{_KIND_UNIT.get(row.kind, 'week')}s"
    else:
        rhythm = row.kind.title()
    unit = row.unit if row.kind == "custom" else _KIND_UNIT.get(row.kind)
    handoff = row.handoff_time
    if unit == "week" and row.handoff_weekday is not None:
        handoff = f"{WEEKDAYS[row.handoff_weekday]} {handoff}"
    elif unit == "month" and row.handoff_day is not None:
        handoff = f"day {row.handoff_day}, {handoff}"
    restrictions = []
    for r in row.restrictions:
        if r.get("kind") == "weekly":
            s, e = r.get("start_weekday"), r.get("end_weekday")
            restrictions.append(
                f"{WEEKDAYS[s] if isinstance(s, int) else '?'} {r['start']} \u2013 {WEEKDAYS[e] if isinstance(e, int) else '?'} {r['end']}"
            )
        else:
            restrictions.append(f"daily {r['start']}\u2013{r['end']}")
    layer_zone = row.timezone or zone
    return {
        "id": str(require_id(row)),
        "name": row.name,
        "priority": str(row.priority),
        "rhythm": rhythm,
        "handoff": f"hand-off {handoff}" if unit != "hour" else "",
        "zone": layer_zone,
        "start": local_text(row.start_at, layer_zone),
        "end": local_text(row.end_at, layer_zone) if row.end_at else "",
        "participants": " → ".join(names.get(u, f"user {u}") for u in participants) or "nobody",
        "restrictions": "; ".join(restrictions),
        "on_duty": minutes_text(row.shift_length_minutes) if row.shift_length_minutes else "",
    }


def layer_form(row: RotationLayer, participants: Sequence[int], zone: str) -> dict[str, Any]:
    """A stored layer as the editor's field values."""
    layer_zone = row.timezone or zone
    return {
        "e_name": row.name,
        "e_kind": row.kind,
        "e_interval": str(row.interval),
        "e_unit": row.unit or "week",
        "e_start": local_input(row.start_at, layer_zone),
        "e_end": local_input(row.end_at, layer_zone),
        "e_handoff": row.handoff_time,
        "e_handoff_weekday": str(row.handoff_weekday) if row.handoff_weekday is not None else "auto",
        "e_handoff_day": str(row.handoff_day) if row.handoff_day is not None else "",
        "e_shift_hours": str(row.shift_length_minutes // 60) if row.shift_length_minutes else "",
        "e_priority": str(row.priority),
        "e_timezone": row.timezone or "",
        "e_participants": [str(u) for u in participants],
        "e_restrictions": [
            RestrictionDraft(
                kind=str(r.get("kind", "daily")),
                start=str(r.get("start", "09:00")),
                end=str(r.get("end", "17:00")),
                start_weekday=str(r.get("start_weekday") if r.get("start_weekday") is not None else 0),
                end_weekday=str(r.get("end_weekday") if r.get("end_weekday") is not None else 4),
            )
            for r in row.restrictions
        ],
    }


def load_detail(
    session: Session, *, schedule_id: int, view: str, anchor: dt.date, viewer_zone: str, now: dt.datetime
) -> Detail | None:
    """The schedule with its layers, upcoming overrides, members, on-call now and the calendar."""
    schedule = session.get(Schedule, schedule_id) if schedule_id > 0 else None
    if schedule is None:
        return None
    zone = schedule.timezone
    team = session.get(Team, schedule.team_id)
    layer_rows = service.list_layers(session, schedule_id=schedule_id)
    overrides = service.list_overrides(session, schedule_id=schedule_id, start=now)
    ordered = [u for _, ps in sorted(layer_rows, key=lambda lp: require_id(lp[0])) for u in ps]
    people = service.users_by_id(session, user_ids=[*ordered, *(o.user_id for o in overrides)])
    names = {uid: u.name for uid, u in people.items()}
    answers = engine.on_call(service.load_schedule(session, schedule_id=schedule_id, start=now), now)
    until_at = service.next_handoff_at(session, schedule_id=schedule_id, at=now) if answers else None
    on_call_names = service.users_by_id(session, user_ids=[a.user_id for a in answers])
    return Detail(
        schedule_id=schedule_id,
        team_id=schedule.team_id,
        name=schedule.name,
        team=team.name if team else "",
        timezone=zone,
        description=schedule.description,
        layers=[describe_layer(row, ps, names, zone) for row, ps in layer_rows],
        layer_forms={require_id(row): layer_form(row, ps, zone) for row, ps in layer_rows},
        overrides=[
            {
                "id": str(require_id(o)),
                "who": names.get(o.user_id, f"user {o.user_id}"),
                "start": local_text(o.start_at, viewer_zone),
                "end": local_text(o.end_at, viewer_zone),
                "reason": o.reason,
                "swap": "yes" if o.swap_group else "",
            }
            for o in overrides[:50]
        ],
        members=member_options(session, schedule.team_id),
        on_call=", ".join(u.name for u in on_call_names.values()),
        on_call_until=until_at,
        calendar=load_calendar(
            session,
            schedule=schedule,
            view=view,
            anchor=anchor,
            viewer_zone=viewer_zone,
            ordered_people=ordered,
            now=now,
        ),
    )


def preview_layer(
    fields: dict[str, Any],
    *,
    schedule_zone: str,
    team_id: int,
    members: set[int],
    names: dict[int, str],
    viewer_zone: str,
    now: dt.datetime,
) -> list[dict[str, str]]:
    """The next shifts of an unsaved layer (pure engine); ValidationFailed for a bad layer."""
    values, participants = service.prepare_layer(
        fields, schedule_timezone=schedule_zone, team_id=team_id, members=members
    )
    layer = service.to_domain_layer(RotationLayer(schedule_id=0, **values), participants, layer_id=0)
    unit = values["unit"] if values["kind"] == "custom" else _KIND_UNIT[values["kind"]]
    period = _PERIOD[unit or "week"] * max(1, values["interval"])
    frm = max(now, values["start_at"])
    horizon = min(dt.timedelta(days=400), period * (PREVIEW_SHIFTS + 2))
    shifts = engine.layer_shifts(layer, frm, frm + horizon, schedule_zone)[:PREVIEW_SHIFTS]
    return [
        {
            "who": names.get(s.user_id, f"user {s.user_id}"),
            "start": local_text(s.start, viewer_zone),
            "end": local_text(s.end, viewer_zone),
            "length": minutes_text(int((s.end - s.start).total_seconds() // 60)),
        }
        for s in shifts
    ]


def _path_id(path: str) -> int:
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


_EDITOR_FIELDS = (
    "e_name",
    "e_kind",
    "e_interval",
    "e_unit",
    "e_start",
    "e_end",
    "e_handoff",
    "e_handoff_weekday",
    "e_handoff_day",
    "e_shift_hours",
    "e_priority",
    "e_timezone",
)
_OVERRIDE_FIELDS = ("o_user", "o_start", "o_end", "o_reason")


class ScheduleDetailState(LivePage):
    """The schedule shown in this tab, its calendar and the open editors."""

    live_min_interval: ClassVar[float] = 0.5

    schedule_id: int = 0
    found: bool = False
    loaded: bool = False
    name: str = ""
    team: str = ""
    description: str = ""
    schedule_zone: str = "UTC"
    viewer_zone: str = "UTC"
    can_admin: bool = False
    can_write: bool = False
    view: str = "week"
    anchor: str = ""
    range_label: str = ""
    days: list[DayCell] = []
    legend: list[dict[str, str]] = []
    on_call: str = ""
    on_call_until: str = ""
    layers: list[dict[str, str]] = []
    overrides: list[dict[str, str]] = []
    members: list[dict[str, str]] = []
    feed_url: str = ""
    webcal_url: str = ""
    # layer editor
    editor_open: bool = False
    e_layer_id: int = 0
    e_name: str = ""
    e_kind: str = "weekly"
    e_interval: str = "1"
    e_unit: str = "week"
    e_start: str = ""
    e_end: str = ""
    e_handoff: str = ""
    e_handoff_weekday: str = "auto"
    e_handoff_day: str = ""
    e_shift_hours: str = ""
    e_priority: str = "0"
    e_timezone: str = ""
    e_participants: list[str] = []
    e_restrictions: list[RestrictionDraft] = []
    preview: list[dict[str, str]] = []
    preview_error: str = ""
    editor_error: str = ""
    # override form
    o_user: str = ""
    o_start: str = ""
    o_end: str = ""
    o_reason: str = ""
    override_error: str = ""
    error_text: str = ""
    _team_id: int = 0
    _layer_forms: dict[int, dict[str, Any]] = {}
    _ready: bool = False

    # --- loading ---------------------------------------------------------------------------

    def _anchor_date(self) -> dt.date:
        try:
            return dt.date.fromisoformat(self.anchor)
        except ValueError:
            return wall_at(utcnow(), load_zone(self.viewer_zone)).date()

    @rx.event
    async def load(self) -> None:
        """`on_load`: the schedule in the URL (if the person may see it), `?view=` and `?date=`."""
        self.schedule_id = _path_id(self.router.url.path)
        self.loaded, self.editor_open, self.feed_url, self.webcal_url = False, False, "", ""
        principal = await viewer(self)
        if principal is None:
            self._ready = False
            return
        self.viewer_zone = safe_zone(principal.user.timezone)
        params = self.router.url.query_parameters
        self.view = str(params.get("view", "week")) if params.get("view") in VIEWS else "week"
        self.anchor = str(params.get("date", ""))
        self.anchor = self._anchor_date().isoformat()
        await self._refresh(principal)
        self._ready = self.found

    async def _refresh(self, principal: Principal | None = None) -> None:
        principal = principal or await viewer(self)
        sid, view, anchor, zone = self.schedule_id, self.view, self._anchor_date(), self.viewer_zone
        detail = await in_db(
            lambda s: load_detail(
                s, schedule_id=sid, view=view, anchor=anchor, viewer_zone=zone, now=utcnow()
            )
        )
        visible = bool(principal and detail and principal.can("read", detail.team_id))
        self.found, self.loaded = visible, True
        if not visible or detail is None or principal is None:
            self.name, self._team_id = "", 0
            return
        self.can_admin = principal.can("admin", detail.team_id)
        self.can_write = principal.can("write", detail.team_id)
        self._show(detail)

    def _show(self, detail: Detail) -> None:
        self._team_id = detail.team_id
        self.name, self.team, self.description = detail.name, detail.team, detail.description
        self.schedule_zone = detail.timezone
        self.layers, self._layer_forms = detail.layers, detail.layer_forms
        self.overrides, self.members = detail.overrides, detail.members
        self.on_call = detail.on_call
        self.on_call_until = iso(detail.on_call_until) if detail.on_call_until else ""
        self._show_calendar(detail.calendar)
        if self.editor_open:
            self._recompute()

    def _show_calendar(self, calendar: Calendar) -> None:
        self.days, self.range_label, self.legend = calendar.days, calendar.label, calendar.legend

    async def _reload_calendar(self) -> None:
        sid, view, anchor, zone = self.schedule_id, self.view, self._anchor_date(), self.viewer_zone
        people = [int(m["id"]) for m in self.members]

        def load(session: Session) -> Calendar | None:
            schedule = session.get(Schedule, sid)
            if schedule is None:
                return None
            return load_calendar(
                session,
                schedule=schedule,
                view=view,
                anchor=anchor,
                viewer_zone=zone,
                ordered_people=people,
                now=utcnow(),
            )

        calendar = await in_db(load)
        if calendar is not None:
            self._show_calendar(calendar)

    # --- calendar navigation ---------------------------------------------------------------

    @rx.event
    async def set_view(self, value: str | list[str]) -> None:
        """Week or month."""
        self.view = value if isinstance(value, str) and value in VIEWS else "week"
        await self._reload_calendar()

    @rx.event
    async def move(self, steps: int) -> None:
        """Go back (-1) or forward (+1) one week or month."""
        day = self._anchor_date()
        if self.view == "month":
            month = day.month - 1 + steps
            day = dt.date(day.year + month // 12, month % 12 + 1, 1)
        else:
            day += dt.timedelta(days=7 * steps)
        self.anchor = day.isoformat()
        await self._reload_calendar()

    @rx.event
    async def go_today(self) -> None:
        """Back to the current week or month."""
        self.anchor = wall_at(utcnow(), load_zone(self.viewer_zone)).date().isoformat()
        await self._reload_calendar()

    @rx.event
    def pick_day(self, date: str) -> None:
        """Clicking days selects an override range: the first click starts it, the second ends it."""
        if not self.can_write:
            return
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            return
        start_day = self.o_start[:10]
        if not self.o_start or self.o_end:
            self.o_start, self.o_end = f"{day.isoformat()}T00:00", ""
        elif day.isoformat() >= start_day:
            self.o_end = f"{(day + dt.timedelta(days=1)).isoformat()}T00:00"
        else:
            self.o_start, self.o_end = f"{day.isoformat()}T00:00", f"{start_day}T00:00"

    # --- layer editor ----------------------------------------------------------------------

    def _names(self) -> dict[int, str]:
        return {int(m["id"]): m["name"] for m in self.members}

    @rx.var
    def participant_rows(self) -> list[dict[str, str]]:
        """The editor's participants in order, with names."""
        names = {m["id"]: m["name"] for m in self.members}
        return [
            {"index": str(i), "pos": str(i + 1), "id": uid, "name": names.get(uid, f"user {uid}")}
            for i, uid in enumerate(self.e_participants)
        ]

    @rx.var
    def editor_unit(self) -> str:
        """The rotation unit the editor's kind implies."""
        return self.e_unit if self.e_kind == "custom" else _KIND_UNIT.get(self.e_kind, "week")

    @rx.event
    def new_layer(self) -> None:
        """Open the editor on a fresh weekly layer starting next Monday 09:00 (schedule's clock)."""
        zone = load_zone(self.schedule_zone)
        today = wall_at(utcnow(), zone).date()
        monday = today + dt.timedelta(days=(7 - today.weekday()) % 7 or 7)
        self.e_layer_id = 0
        self.e_name = f"Layer {len(self.layers) + 1}"
        self.e_kind, self.e_interval, self.e_unit = "weekly", "1", "week"
        self.e_start, self.e_end = f"{monday.isoformat()}T09:00", ""
        self.e_handoff, self.e_handoff_weekday, self.e_handoff_day = "09:00", "auto", ""
        self.e_shift_hours, self.e_priority, self.e_timezone = "", str(len(self.layers)), ""
        self.e_participants, self.e_restrictions = [], []
        self.editor_error = ""
        self.editor_open = True
        self._recompute()

    @rx.event
    def edit_layer(self, layer_id: str) -> None:
        """Open the editor on a stored layer."""
        form = self._layer_forms.get(int(layer_id)) if layer_id.isdigit() else None
        if form is None:
            return
        for key, value in form.items():
            setattr(self, key, value)
        self.e_layer_id = int(layer_id)
        self.editor_error = ""
        self.editor_open = True
        self._recompute()

    @rx.event
    def close_editor(self) -> None:
        """Drop the unsaved layer."""
        self.editor_open = False

    @rx.event
    def set_editor(self, name: str, value: str) -> None:
        """Change one editor field and refresh the preview."""
        if name in _EDITOR_FIELDS:
            setattr(self, name, str(value)[:200])
            self._recompute()

    @rx.event
    def add_participant(self, user_id: str) -> None:
        """Append a team member to the rotation (someone may appear more than once)."""
        if user_id in {m["id"] for m in self.members}:
            self.e_participants = [*self.e_participants, user_id]
            self._recompute()

    @rx.event
    def move_participant(self, index: str, delta: int) -> None:
        """Move a participant up (-1) or down (+1) in the order."""
        i = int(index)
        j = i + delta
        order = list(self.e_participants)
        if 0 <= i < len(order) and 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
            self.e_participants = order
            self._recompute()

    @rx.event
    def remove_participant(self, index: str) -> None:
        """Take one slot out of the rotation."""
        i = int(index)
        self.e_participants = [u for k, u in enumerate(self.e_participants) if k != i]
        self._recompute()

    @rx.event
    def add_restriction(self) -> None:
        """Add a window (weekdays 09:00-17:00 by default)."""
        self.e_restrictions = [*self.e_restrictions, RestrictionDraft()]
        self._recompute()

    @rx.event
    def set_restriction(self, index: int, name: str, value: str) -> None:
        """Change one field of a restriction."""
        if name not in ("kind", "start", "end", "start_weekday", "end_weekday"):
            return
        items = list(self.e_restrictions)
        if 0 <= index < len(items):
            items[index] = dataclasses.replace(items[index], **{name: str(value)[:10]})
            self.e_restrictions = items
            self._recompute()

    @rx.event
    def remove_restriction(self, index: int) -> None:
        """Drop a restriction."""
        self.e_restrictions = [r for k, r in enumerate(self.e_restrictions) if k != index]
        self._recompute()

    def _fields(self) -> dict[str, Any]:
        """The editor's layer in the service's field names; Refused for unreadable input."""
        zone = self.e_timezone.strip() or self.schedule_zone
        try:
            load_zone(zone)
        except ValueError:
            raise Refused(f"Layer timezone: unknown zone {zone!r}.") from None
        kind = self.e_kind if self.e_kind in service.KINDS else "weekly"
        unit = self.e_unit if kind == "custom" else None
        hours = parse_int(self.e_shift_hours, what="On duty (hours)", low=1, high=24 * 366)
        weekday = int(self.e_handoff_weekday) if self.e_handoff_weekday.isdigit() else None
        restrictions = [
            {
                "kind": r.kind,
                "start": r.start,
                "end": r.end,
                "start_weekday": int(r.start_weekday)
                if r.kind == "weekly" and r.start_weekday.isdigit()
                else None,
                "end_weekday": int(r.end_weekday) if r.kind == "weekly" and r.end_weekday.isdigit() else None,
            }
            for r in self.e_restrictions
        ]
        return {
            "name": self.e_name,
            "priority": parse_int(self.e_priority, what="Priority", low=-10_000, high=10_000, default=0),
            "kind": kind,
            "interval": parse_int(self.e_interval, what="Interval", low=1, high=1000, default=1),
            "unit": unit,
            "shift_length_minutes": hours * 60 if hours else None,
            "handoff_time": self.e_handoff.strip() or None,
            "handoff_weekday": weekday if self.editor_unit == "week" else None,
            "handoff_day": parse_int(self.e_handoff_day, what="Hand-off day", low=1, high=31)
            if self.editor_unit == "month"
            else None,
            "timezone": self.e_timezone.strip() or None,
            "start_at": parse_local(self.e_start, zone, what="Start"),
            "end_at": parse_local(self.e_end, zone, what="End") if self.e_end.strip() else None,
            "restrictions": restrictions,
            "participants": [int(u) for u in self.e_participants if u.isdigit()],
        }

    def _recompute(self) -> None:
        """Refresh the live preview from the unsaved editor values."""
        self.preview, self.preview_error = [], ""
        try:
            fields = self._fields()
            if not fields["participants"]:
                self.preview_error = "Add at least one participant to see the shifts."
                return
            self.preview = preview_layer(
                fields,
                schedule_zone=self.schedule_zone,
                team_id=self._team_id,
                members={int(m["id"]) for m in self.members},
                names=self._names(),
                viewer_zone=self.viewer_zone,
                now=utcnow(),
            )
        except Refused as exc:
            self.preview_error = exc.message
        except ValidationFailed as exc:
            self.preview_error = sentence(f"{exc.field}: {exc.message}" if exc.field else exc.message)
        except (ValueError, engine.ScheduleError) as exc:
            self.preview_error = sentence(str(exc))

    @rx.event
    async def save_layer(self) -> Any:
        """Create or change the layer (team administrators only, checked on the server)."""
        try:
            fields = self._fields()
        except Refused as exc:
            self.editor_error = exc.message
            return rx.toast.error(exc.message)
        sid, layer_id = self.schedule_id, self.e_layer_id

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            schedule = _schedule_for(session, principal, sid, "admin")
            if layer_id:
                layer = service.get_layer(session, schedule=schedule, layer_id=layer_id)
                service.update_layer(session, schedule=schedule, layer=layer, changes=fields, actor=actor)
            else:
                service.create_layer(session, schedule=schedule, fields=fields, actor=actor)

        try:
            await attempt(self, action)
        except Refused as exc:
            self.editor_error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.editor_error, self.editor_open = "", False
        await self._refresh()
        return rx.toast.success(f"Layer {self.e_name.strip()!r} saved")

    @rx.event
    async def delete_layer(self, layer_id: str) -> Any:
        """Remove a layer (team administrators only)."""
        sid, lid = self.schedule_id, int(layer_id)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            schedule = _schedule_for(session, principal, sid, "admin")
            layer = service.get_layer(session, schedule=schedule, layer_id=lid)
            service.delete_layer(session, schedule=schedule, layer=layer, actor=actor)

        return await self._act(action, "Layer deleted")

    # --- overrides -------------------------------------------------------------------------

    @rx.event
    def set_override(self, name: str, value: str) -> None:
        """Change one field of the override form."""
        if name in _OVERRIDE_FIELDS:
            setattr(self, name, str(value)[:2000])

    @rx.event
    async def create_override(self) -> Any:
        """Put someone on call for the chosen range (responders and admins), read on the viewer's clock."""
        try:
            if not self.o_user.isdigit():
                raise Refused("Choose who covers the range.")
            start = parse_local(self.o_start, self.viewer_zone, what="From")
            end = parse_local(self.o_end, self.viewer_zone, what="Until")
        except Refused as exc:
            self.override_error = exc.message
            return rx.toast.error(exc.message)
        sid, user_id, reason = self.schedule_id, int(self.o_user), self.o_reason.strip()

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            schedule = _schedule_for(session, principal, sid, "write")
            service.create_override(
                session,
                schedule=schedule,
                user_id=user_id,
                start_at=start,
                end_at=end,
                reason=reason,
                actor=actor,
            )

        try:
            await attempt(self, action)
        except Refused as exc:
            self.override_error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.override_error, self.o_start, self.o_end, self.o_reason = "", "", "", ""
        await self._refresh()
        return rx.toast.success("Override added")

    @rx.event
    async def delete_override(self, override_id: str) -> Any:
        """Delete an override (both halves of a swap)."""
        sid, oid = self.schedule_id, int(override_id)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            schedule = _schedule_for(session, principal, sid, "write")
            row = service.get_override(session, schedule=schedule, override_id=oid)
            service.delete_override(session, schedule=schedule, override=row, actor=actor)

        return await self._act(action, "Override deleted")

    # --- calendar feed ---------------------------------------------------------------------

    @rx.event
    async def issue_feed(self) -> Any:
        """A new iCal subscription URL for this schedule (shown once; the previous one stops working)."""
        sid = self.schedule_id

        def action(session: Session, principal: Principal, actor: Actor) -> str:
            schedule = _schedule_for(session, principal, sid, "write")
            return calendars.rotate_schedule_token(session, schedule=schedule, actor=actor)

        try:
            token = await attempt(self, action)
        except Refused as exc:
            return rx.toast.error(exc.message, duration=8000)
        url = calendars.feed_url(base_url=get_settings().base_url, kind="schedules", token=token)
        self.feed_url, self.webcal_url = url, "webcal://" + url.split("://", 1)[1]
        return rx.toast.success("New calendar link: copy it now, it is shown only once")

    async def _act(self, action: Any, done: str) -> Any:
        try:
            await attempt(self, action)
        except Refused as exc:
            self.error_text = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.error_text = ""
        await self._refresh()
        return rx.toast.success(done)

    # --- live ------------------------------------------------------------------------------

    def live_scope(self) -> LiveScope | None:
        """This schedule's team; on-call changes only."""
        if not self._ready or not self._team_id:
            return None
        return LiveScope(
            teams=frozenset({self._team_id}),
            wants_alerts=False,
            params={
                "schedule_id": self.schedule_id,
                "view": self.view,
                "anchor": self._anchor_date(),
                "zone": self.viewer_zone,
            },
        )

    @staticmethod
    def live_fetch(session: Session, scope: LiveScope, batch: LiveBatch) -> Any:
        """Reload everything shown when on-call may have changed."""
        if not (batch.oncall or batch.resync):
            return None
        p = scope.params
        return load_detail(
            session,
            schedule_id=p["schedule_id"],
            view=p["view"],
            anchor=p["anchor"],
            viewer_zone=p["zone"],
            now=utcnow(),
        )

    def live_apply(self, batch: LiveBatch, fetched: Any) -> None:
        """Show the reloaded schedule (an open editor keeps its unsaved values)."""
        if isinstance(fetched, Detail) and fetched.schedule_id == self.schedule_id:
            self._show(fetched)


live.register("schedule_detail", ScheduleDetailState)


def _schedule_for(session: Session, principal: Principal, schedule_id: int, action: str) -> Schedule:
    """The schedule, if the person may `action` in its team (404 for other teams' schedules)."""
    try:
        schedule = service.get_schedule(session, schedule_id=schedule_id)
    except NotFound:
        schedule = None
    team_id = schedule.team_id if schedule is not None else None
    principal.require_visible(team_id, action, what="schedule", ident=schedule_id, field="schedule_id")
    assert schedule is not None
    return schedule


# --- view: calendar ----------------------------------------------------------------------------

S = ScheduleDetailState


def _segment(seg: Any, *, compact: bool) -> rx.Component:
    is_gap = seg.kind == "gap"
    is_override = seg.kind == "override"
    body = rx.vstack(
        rx.hstack(
            rx.text(seg.who, size="1", weight="bold", trim="both", class_name="seg-who"),
            rx.cond(is_override, rx.badge("override", size="1", color_scheme="amber", variant="solid")),
            spacing="1",
            align="center",
            wrap="wrap",
        ),
        rx.text(
            seg.start,
            "\u2013",
            seg.end,
            size="1",
            color_scheme="gray",
            display=rx.cond(seg.full_day, "none", "block") if compact else "block",
        ),
        rx.cond(
            seg.alt != "",
            rx.text(seg.alt, size="1", color_scheme="gray", display="none" if compact else "block"),
        ),
        spacing="0",
        align="start",
    )
    return rx.box(
        body,
        title=seg.title,
        class_name="shift-seg",
        custom_attrs={"data-kind": seg.kind, "data-user": seg.user_id, "data-who": seg.who},
        padding_x="0.4rem",
        padding_y="0.2rem",
        border_radius="var(--radius-2)",
        border_left=rx.cond(is_gap, "3px dashed var(--red-9)", "3px solid var(--" + seg.color + "-9)"),
        background=rx.cond(
            is_gap,
            "repeating-linear-gradient(135deg, var(--red-a3), var(--red-a3) 6px, transparent 6px, transparent 12px)",
            "var(--" + seg.color + "-a3)",
        ),
        outline=rx.cond(is_override, "2px solid var(--amber-9)", "none"),
        width="100%",
    )


def _day(day: Any, *, compact: bool) -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.text(rx.cond(compact, day.day, day.label), size="2", weight="bold"),
            rx.cond(day.today, rx.badge("today", size="1", color_scheme="grass")),
            spacing="2",
            align="center",
            padding_bottom="0.3rem",
        ),
        rx.vstack(
            rx.foreach(day.segments, lambda seg: _segment(seg, compact=compact)), spacing="1", width="100%"
        ),
        id="day-" + day.date,
        class_name="calendar-day",
        custom_attrs={"data-date": day.date},
        on_click=ev(S.pick_day, day.date),
        padding="0.4rem",
        border="1px solid var(--gray-a5)",
        border_radius="var(--radius-3)",
        background=rx.cond(day.today, "var(--grass-a2)", "var(--color-panel-solid)"),
        opacity=rx.cond(day.outside, "0.45", "1"),
        min_height="6rem" if compact else rx.breakpoints(initial="auto", lg="9rem"),
        cursor=rx.cond(S.can_write, "pointer", "default"),
    )


def _week() -> rx.Component:
    return rx.grid(
        rx.foreach(S.days, lambda d: _day(d, compact=False)),
        columns=rx.breakpoints(initial="1", sm="2", lg="7"),
        spacing="2",
        width="100%",
        id="calendar-week",
    )


def _month() -> rx.Component:
    return scroll_x(
        rx.box(
            rx.grid(
                *[
                    rx.text(name, size="1", weight="bold", color_scheme="gray", text_align="center")
                    for name in WEEKDAYS
                ],
                rx.foreach(S.days, lambda d: _day(d, compact=True)),
                columns="7",
                spacing="1",
                width="100%",
            ),
            min_width="760px",
            id="calendar-month",
        )
    )


def _calendar() -> rx.Component:
    return section(
        "Calendar",
        rx.flex(
            rx.hstack(
                rx.icon_button(
                    rx.icon("chevron-left"),
                    variant="soft",
                    on_click=ev(S.move, -1),
                    id="cal-prev",
                    aria_label="Previous",
                ),
                rx.button("Today", variant="soft", on_click=S.go_today, id="cal-today"),
                rx.icon_button(
                    rx.icon("chevron-right"),
                    variant="soft",
                    on_click=ev(S.move, 1),
                    id="cal-next",
                    aria_label="Next",
                ),
                rx.heading(S.range_label, size="3", id="cal-range"),
                align="center",
                spacing="2",
            ),
            rx.spacer(),
            rx.segmented_control.root(
                rx.segmented_control.item("Week", value="week"),
                rx.segmented_control.item("Month", value="month"),
                value=S.view,
                on_change=S.set_view,
                id="cal-view",
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            spacing="2",
            width="100%",
        ),
        rx.text(
            "Times in your zone ",
            rx.code(S.viewer_zone),
            " · schedule zone ",
            rx.code(S.schedule_zone),
            rx.cond(S.can_write, " · click a day, then another, to select an override range", ""),
            size="1",
            color_scheme="gray",
            id="cal-zones",
        ),
        rx.hstack(
            rx.foreach(S.legend, lambda p: rx.badge(p["name"], color_scheme=p["color"], variant="soft")),
            rx.badge("override", color_scheme="amber", variant="outline"),
            rx.badge("gap: nobody on call", color_scheme="red", variant="outline"),
            wrap="wrap",
            spacing="2",
        ),
        rx.cond(S.view == "month", _month(), _week()),
    )


# --- view: layers ------------------------------------------------------------------------------


def _layer_card(layer: Any) -> rx.Component:
    return rx.card(
        rx.flex(
            rx.vstack(
                rx.hstack(
                    rx.text(layer["name"], weight="bold"),
                    rx.badge("priority ", layer["priority"], variant="soft", size="1"),
                    spacing="2",
                    align="center",
                ),
                rx.text(layer["rhythm"], " · ", layer["handoff"], " (", layer["zone"], ")", size="2"),
                rx.text(layer["participants"], size="2", weight="medium", class_name="layer-participants"),
                rx.text(
                    "from ",
                    layer["start"],
                    rx.cond(layer["end"] != "", " until " + layer["end"], ""),
                    size="1",
                    color_scheme="gray",
                ),
                rx.cond(
                    layer["restrictions"] != "",
                    rx.text("only ", layer["restrictions"], size="1", color_scheme="gray"),
                ),
                rx.cond(
                    layer["on_duty"] != "",
                    rx.text(
                        "on duty ", layer["on_duty"], " after each hand-off", size="1", color_scheme="gray"
                    ),
                ),
                spacing="1",
                align="start",
            ),
            rx.spacer(),
            rx.cond(
                S.can_admin,
                rx.hstack(
                    rx.button(
                        "Edit",
                        size="1",
                        variant="soft",
                        on_click=ev(S.edit_layer, layer["id"]),
                        class_name="layer-edit",
                    ),
                    row_danger_button("Delete", ev(S.delete_layer, layer["id"]), class_name="layer-delete"),
                    spacing="2",
                ),
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            spacing="2",
            width="100%",
        ),
        id="layer-" + layer["id"],
        class_name="layer-card",
        width="100%",
    )


def _editor_field(
    label: str, name: str, value: Any, *, kind: str = "text", hint: str = "", **props: Any
) -> rx.Component:
    return labeled(
        label,
        rx.input(
            width="100%",
            value=value,
            on_change=lambda v: ev(S.set_editor, name, v),
            type=kind,
            id=name.replace("_", "-"),
            **props,
        ),
        hint=hint,
    )


def _participants_editor() -> rx.Component:
    return labeled(
        "Participants, in rotation order",
        rx.vstack(
            rx.foreach(
                S.participant_rows,
                lambda p: rx.hstack(
                    rx.badge(p["pos"], variant="outline"),
                    rx.text(p["name"], size="2", class_name="participant-name"),
                    rx.spacer(),
                    rx.icon_button(
                        rx.icon("arrow-up", size=14),
                        size="1",
                        variant="ghost",
                        on_click=ev(S.move_participant, p["index"], -1),
                        aria_label="Move up",
                    ),
                    rx.icon_button(
                        rx.icon("arrow-down", size=14),
                        size="1",
                        variant="ghost",
                        on_click=ev(S.move_participant, p["index"], 1),
                        aria_label="Move down",
                    ),
                    rx.icon_button(
                        rx.icon("x", size=14),
                        size="1",
                        variant="ghost",
                        color_scheme="red",
                        on_click=ev(S.remove_participant, p["index"]),
                        aria_label="Remove",
                    ),
                    width="100%",
                    align="center",
                    class_name="participant-row",
                ),
            ),
            rx.select.root(
                rx.select.trigger(placeholder="Add a participant…", id="e-add-participant", width="100%"),
                rx.select.content(rx.foreach(S.members, lambda m: rx.select.item(m["name"], value=m["id"]))),
                value="",
                on_change=S.add_participant,
            ),
            spacing="1",
            width="100%",
        ),
    )


def _restriction_row(r: Any, index: Any) -> rx.Component:
    return rx.flex(
        select_fixed(
            RESTRICTION_KINDS,
            r.kind,
            lambda v: ev(S.set_restriction, index, "kind", v),
            class_name="restriction-kind",
            width="9rem",
        ),
        rx.cond(
            r.kind == "weekly",
            select_fixed(
                WEEKDAY_ONLY,
                r.start_weekday,
                lambda v: ev(S.set_restriction, index, "start_weekday", v),
                class_name="restriction-start-day",
                width="5.5rem",
            ),
        ),
        rx.input(
            value=r.start,
            type="time",
            on_change=lambda v: ev(S.set_restriction, index, "start", v),
            width="7rem",
        ),
        rx.text("to", size="1"),
        rx.cond(
            r.kind == "weekly",
            select_fixed(
                WEEKDAY_ONLY,
                r.end_weekday,
                lambda v: ev(S.set_restriction, index, "end_weekday", v),
                class_name="restriction-end-day",
                width="5.5rem",
            ),
        ),
        rx.input(
            value=r.end, type="time", on_change=lambda v: ev(S.set_restriction, index, "end", v), width="7rem"
        ),
        rx.icon_button(
            rx.icon("x", size=14),
            size="1",
            variant="ghost",
            color_scheme="red",
            on_click=ev(S.remove_restriction, index),
            aria_label="Remove window",
        ),
        wrap="wrap",
        spacing="2",
        align="center",
        class_name="restriction-row",
    )


def _preview() -> rx.Component:
    return rx.vstack(
        rx.heading("Preview: the next shifts of this layer", size="2"),
        rx.text("Before saving; times in your zone ", rx.code(S.viewer_zone), size="1", color_scheme="gray"),
        rx.cond(
            S.preview_error != "",
            rx.callout(
                S.preview_error, icon="info", color_scheme="amber", size="1", id="preview-error", width="100%"
            ),
        ),
        data_table(
            ["Who", "From", "Until", "Length"],
            S.preview,
            lambda s: rx.table.row(
                rx.table.cell(s["who"], class_name="preview-who"),
                rx.table.cell(s["start"], white_space="nowrap"),
                rx.table.cell(s["end"], white_space="nowrap"),
                rx.table.cell(s["length"], white_space="nowrap"),
                class_name="preview-row",
            ),
            size="1",
            min_width="28rem",
            id="layer-preview",
        ),
        spacing="2",
        width="100%",
    )


def _editor() -> rx.Component:
    unit = S.editor_unit
    return section(
        rx.cond(S.e_layer_id > 0, "Edit layer", "New layer"),
        rx.grid(
            rx.vstack(
                _editor_field("Name", "e_name", S.e_name),
                rx.grid(
                    labeled(
                        "Rotation",
                        select_fixed(
                            KIND_CHOICES, S.e_kind, lambda v: ev(S.set_editor, "e_kind", v), id="e-kind"
                        ),
                    ),
                    _editor_field("Every", "e_interval", S.e_interval, kind="number", min=1),
                    rx.cond(
                        S.e_kind == "custom",
                        labeled(
                            "Unit",
                            select_fixed(
                                UNIT_CHOICES, S.e_unit, lambda v: ev(S.set_editor, "e_unit", v), id="e-unit"
                            ),
                        ),
                    ),
                    columns="3",
                    spacing="2",
                    width="100%",
                ),
                rx.grid(
                    _editor_field("Start (schedule's clock)", "e_start", S.e_start, kind="datetime-local"),
                    _editor_field("End (optional)", "e_end", S.e_end, kind="datetime-local"),
                    columns=rx.breakpoints(initial="1", sm="2"),
                    spacing="2",
                    width="100%",
                ),
                rx.grid(
                    rx.cond(
                        unit != "hour", _editor_field("Hand-off time", "e_handoff", S.e_handoff, kind="time")
                    ),
                    rx.cond(
                        unit == "week",
                        labeled(
                            "Hand-off day",
                            select_fixed(
                                WEEKDAY_CHOICES,
                                S.e_handoff_weekday,
                                lambda v: ev(S.set_editor, "e_handoff_weekday", v),
                                id="e-handoff-weekday",
                            ),
                        ),
                    ),
                    rx.cond(
                        unit == "month",
                        _editor_field(
                            "Hand-off day of month",
                            "e_handoff_day",
                            S.e_handoff_day,
                            kind="number",
                            min=1,
                            max=31,
                        ),
                    ),
                    _editor_field("Priority", "e_priority", S.e_priority, kind="number", hint="higher wins"),
                    columns=rx.breakpoints(initial="2", sm="3"),
                    spacing="2",
                    width="100%",
                ),
                rx.grid(
                    _editor_field(
                        "On duty (hours)",
                        "e_shift_hours",
                        S.e_shift_hours,
                        kind="number",
                        hint="blank: the whole shift",
                    ),
                    _editor_field(
                        "Layer timezone",
                        "e_timezone",
                        S.e_timezone,
                        hint="blank: the schedule's",
                        custom_attrs={"list": "tz-names"},
                    ),
                    columns="2",
                    spacing="2",
                    width="100%",
                ),
                _participants_editor(),
                labeled(
                    "Restrictions (only on call within these windows)",
                    rx.vstack(
                        rx.foreach(S.e_restrictions, _restriction_row),
                        rx.button(
                            "Add a window",
                            size="1",
                            variant="soft",
                            on_click=S.add_restriction,
                            id="e-add-restriction",
                        ),
                        spacing="2",
                        width="100%",
                    ),
                ),
                spacing="3",
                width="100%",
            ),
            _preview(),
            columns=rx.breakpoints(initial="1", lg="2"),
            spacing="4",
            width="100%",
        ),
        error_callout(S.editor_error, id="layer-error"),
        rx.hstack(
            rx.button("Save layer", on_click=S.save_layer, id="layer-save"),
            rx.button("Cancel", variant="soft", color_scheme="gray", on_click=S.close_editor),
            spacing="2",
        ),
        id="layer-editor",
    )


def _layers() -> rx.Component:
    return section(
        "Rotation layers",
        rx.cond(size(S.layers) == 0, empty_note("No layers yet: nobody is on call."), rx.fragment()),
        rx.vstack(rx.foreach(S.layers, _layer_card), spacing="2", width="100%"),
        rx.cond(S.editor_open, _editor()),
        actions=rx.cond(
            S.can_admin & ~S.editor_open,
            rx.button("Add layer", size="2", on_click=S.new_layer, id="add-layer"),
        ),
    )


# --- view: overrides and feed ------------------------------------------------------------------


def _override_row(o: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(o["who"], weight="medium"),
        rx.table.cell(o["start"], white_space="nowrap"),
        rx.table.cell(o["end"], white_space="nowrap"),
        rx.table.cell(rx.cond(o["swap"] != "", rx.badge("swap", size="1"), ""), o["reason"]),
        rx.table.cell(
            rx.cond(
                S.can_write,
                row_danger_button("Delete", ev(S.delete_override, o["id"])),
            )
        ),
        class_name="override-row",
    )


def _overrides() -> rx.Component:
    return section(
        "Overrides",
        data_table(
            ["Who", "From", "Until", "Reason", ""],
            S.overrides,
            _override_row,
            empty="No current or upcoming overrides.",
            size="1",
            id="overrides-table",
        ),
        rx.cond(
            S.can_write,
            rx.vstack(
                rx.text("New override (your clock, ", S.viewer_zone, ")", size="2", weight="medium"),
                rx.flex(
                    labeled(
                        "Who",
                        select_from(
                            S.members, S.o_user, lambda v: ev(S.set_override, "o_user", v), id="o-user"
                        ),
                    ),
                    labeled(
                        "From",
                        rx.input(
                            width="100%",
                            type="datetime-local",
                            value=S.o_start,
                            on_change=lambda v: ev(S.set_override, "o_start", v),
                            id="o-start",
                        ),
                    ),
                    labeled(
                        "Until",
                        rx.input(
                            width="100%",
                            type="datetime-local",
                            value=S.o_end,
                            on_change=lambda v: ev(S.set_override, "o_end", v),
                            id="o-end",
                        ),
                    ),
                    labeled(
                        "Reason",
                        rx.input(
                            width="100%",
                            value=S.o_reason,
                            on_change=lambda v: ev(S.set_override, "o_reason", v),
                            id="o-reason",
                        ),
                    ),
                    rx.button("Add override", on_click=S.create_override, id="o-create", align_self="end"),
                    direction=rx.breakpoints(initial="column", md="row"),
                    spacing="2",
                    width="100%",
                ),
                error_callout(S.override_error, id="override-error"),
                spacing="2",
                width="100%",
            ),
        ),
    )


def _feed() -> rx.Component:
    return section(
        "Calendar subscription",
        rx.text(
            "Subscribe in Google Calendar, Outlook or Apple Calendar to see this schedule's shifts. "
            "A new link replaces the previous one.",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(
            S.feed_url != "",
            rx.vstack(
                rx.callout(
                    "Copy the link now: it is shown only once.",
                    icon="key-round",
                    size="1",
                    color_scheme="amber",
                ),
                copy_row("iCal (https)", S.feed_url, id="feed-url"),
                copy_row("webcal", S.webcal_url, id="feed-webcal"),
                width="100%",
            ),
        ),
        rx.cond(
            S.can_write,
            rx.button("New subscription link", variant="soft", on_click=S.issue_feed, id="feed-issue"),
        ),
    )


def _header() -> rx.Component:
    return rx.card(
        rx.flex(
            rx.vstack(
                rx.text("Team ", rx.text.strong(S.team), size="2"),
                rx.text("Schedule zone ", rx.code(S.schedule_zone), size="2"),
                rx.cond(S.description != "", rx.text(S.description, size="2", color_scheme="gray")),
                spacing="1",
            ),
            rx.spacer(),
            rx.vstack(
                rx.text("On call now", size="1", color_scheme="gray"),
                rx.cond(
                    S.on_call != "",
                    rx.hstack(
                        rx.heading(S.on_call, size="4", id="on-call-now"),
                        rx.cond(
                            S.on_call_until != "",
                            rx.text("for ", until(S.on_call_until), size="2", color_scheme="gray"),
                        ),
                        align="baseline",
                        spacing="2",
                        wrap="wrap",
                    ),
                    rx.badge("nobody", color_scheme="red", size="2", id="on-call-now"),
                ),
                spacing="1",
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _body() -> rx.Component:
    return rx.vstack(
        rx.link("← All schedules", href="/schedules", size="2"),
        _header(),
        error_callout(S.error_text, id="schedule-error"),
        read_only_note(
            ~S.can_write,
            "You can look at this schedule; changing it needs a responder or admin role in its team.",
        ),
        _calendar(),
        _layers(),
        _overrides(),
        _feed(),
        timezone_datalist(),
        spacing="4",
        width="100%",
    )


def index() -> rx.Component:
    """The schedule page."""
    return shell(
        "Schedule",
        rx.cond(
            S.loaded,
            rx.cond(
                S.found,
                rx.vstack(
                    rx.heading(S.name, size="5", id="schedule-name"), _body(), spacing="3", width="100%"
                ),
                empty_note("This schedule does not exist or belongs to a team you are not in."),
            ),
            rx.center(rx.spinner(size="3"), padding="3rem"),
        ),
    )


ON_LOAD = [AuthState.require_login, ScheduleDetailState.load, ev(LiveState.attach, "schedule_detail")]
