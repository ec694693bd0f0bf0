"""REST for schedules: CRUD of schedules, layers and overrides, on-call questions, export/import, iCalendar."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from sentinel_app.api.deps import Principal, principal, read_db, write_db
from sentinel_app.api.errors import ApiError
from sentinel_app.api.schemas import Strict
from sentinel_app.db import utcnow
from sentinel_app.domain import schedule as engine
from sentinel_app.models import RotationLayer, Schedule, ScheduleOverride, User
from sentinel_app.models.base import require_id
from sentinel_app.services import calendars
from sentinel_app.services import schedules as service
from sentinel_app.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["schedules"])

Kind = Literal["hourly", "daily", "weekly", "monthly", "custom"]
Unit = Literal["hour", "day", "week", "month"]
MAX_ID = 2**63 - 1
# Ids beyond a 64-bit integer cannot exist; refusing them early keeps PostgreSQL from erroring.
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
HHMM = Annotated[str, Field(max_length=16, description='wall-clock time "HH:MM"', examples=["09:00"])]


# --- bodies ----------------------------------------------------------------------------------


class ScheduleIn(Strict):
    """A new schedule."""

    team_id: BodyId
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default="UTC", max_length=64, description="IANA zone, e.g. America/New_York")
    description: str = Field(default="", max_length=2_000)


class SchedulePatch(Strict):
    """Changes to a schedule; omitted fields stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=2_000)


class RestrictionIn(Strict):
    """A window in which the layer is active, on the layer's wall clock (0 = Monday)."""

    kind: Literal["daily", "weekly"]
    start: HHMM
    end: HHMM
    start_weekday: int | None = Field(default=None, description="weekly windows only")
    end_weekday: int | None = Field(default=None, description="weekly windows only")


class _LayerFields(Strict):
    name: str = Field(min_length=1, max_length=200)
    priority: int = Field(default=0, ge=-10_000, le=10_000, description="larger wins")
    kind: Kind = "weekly"
    interval: int = Field(default=1, description="hand off every `interval` units")
    unit: Unit | None = Field(default=None, description="custom rotations only")
    shift_length_minutes: int | None = Field(
        default=None, description="on duty this long after each hand-off"
    )
    handoff_time: HHMM | None = Field(default=None, description="default: the local time of start_at")
    handoff_weekday: int | None = Field(default=None, description="0 = Monday; default: start_at's weekday")
    handoff_day: int | None = Field(default=None, description="1..31; default: start_at's day")
    timezone: str | None = Field(default=None, max_length=64, description="default: the schedule's zone")
    start_at: AwareDatetime
    end_at: AwareDatetime | None = None
    start_index: int = Field(default=0, description="who holds the first shift (index into participants)")
    restrictions: list[RestrictionIn] = Field(default_factory=list, max_length=100)


class LayerIn(_LayerFields):
    """A new rotation layer."""

    participants: list[BodyId] = Field(
        max_length=1_000, description="user ids in rotation order; repeats allowed"
    )


class LayerPatch(Strict):
    """Changes to a layer; omitted fields stay as they are, the result is validated as a whole."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    priority: int | None = Field(default=None, ge=-10_000, le=10_000)
    kind: Kind | None = None
    interval: int | None = None
    unit: Unit | None = None
    shift_length_minutes: int | None = None
    handoff_time: HHMM | None = None
    handoff_weekday: int | None = None
    handoff_day: int | None = None
    timezone: str | None = Field(default=None, max_length=64)
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    start_index: int | None = None
    restrictions: list[RestrictionIn] | None = Field(default=None, max_length=100)
    participants: list[BodyId] | None = Field(default=None, max_length=1_000)


class OverrideIn(Strict):
    """Put someone on call in [start_at, end_at), whatever the layers say."""

    user_id: BodyId
    start_at: AwareDatetime
    end_at: AwareDatetime
    reason: str = Field(default="", max_length=2_000)


class SwapSideIn(Strict):
    """A shift that `user_id` holds and hands to the other person."""

    user_id: BodyId
    start_at: AwareDatetime
    end_at: AwareDatetime


class SwapIn(Strict):
    """Two people trade shifts: `second.user_id` covers the first shift, `first.user_id` the second."""

    first: SwapSideIn
    second: SwapSideIn
    reason: str = Field(default="", max_length=2_000)


class IcsImportIn(Strict):
    """An iCalendar text whose events become overrides."""

    ics: str = Field(min_length=1)
    reason: str = Field(default="", max_length=2_000)


class DocumentLayer(_LayerFields):
    """A layer in an export document; participants by email."""

    participants: list[str] = Field(max_length=1_000)


class DocumentOverride(Strict):
    """An override in an export document."""

    user: str = Field(description="email")
    start_at: AwareDatetime
    end_at: AwareDatetime
    reason: str = Field(default="", max_length=2_000)
    swap_group: str | None = Field(default=None, max_length=36)


class DocumentSchedule(Strict):
    """A schedule in an export document; its team by slug (`team`) or id (`team_id`)."""

    team: str | None = Field(default=None, max_length=100)
    team_id: BodyId | None = None
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    description: str = Field(default="", max_length=2_000)
    layers: list[DocumentLayer] = Field(default_factory=list)
    overrides: list[DocumentOverride] = Field(default_factory=list)


class ScheduleDocument(Strict):
    """Schedules as exported, and as accepted by import."""

    version: int = service.DOCUMENT_VERSION
    schedules: list[DocumentSchedule]


# --- answers ---------------------------------------------------------------------------------


class LayerOut(BaseModel):
    """A rotation layer."""

    id: int
    schedule_id: int
    name: str
    priority: int
    kind: str
    interval: int
    unit: str | None
    shift_length_minutes: int | None
    handoff_time: str
    handoff_weekday: int | None
    handoff_day: int | None
    timezone: str | None
    start_at: dt.datetime
    end_at: dt.datetime | None
    start_index: int
    restrictions: list[dict[str, Any]]
    participants: list[int]
    created_at: dt.datetime
    updated_at: dt.datetime


class ScheduleOut(BaseModel):
    """A schedule."""

    id: int
    team_id: int
    name: str
    description: str
    timezone: str
    calendar_feed: bool = Field(description="whether a calendar feed URL has been issued")
    created_at: dt.datetime
    updated_at: dt.datetime


class ScheduleDetail(ScheduleOut):
    """A schedule with its layers, best priority first."""

    layers: list[LayerOut]


class OverrideOut(BaseModel):
    """An override."""

    id: int
    schedule_id: int
    user_id: int
    user_name: str
    start_at: dt.datetime
    end_at: dt.datetime
    reason: str
    swap_group: str | None
    created_by_id: int | None
    created_at: dt.datetime


class SwapOut(BaseModel):
    """Both halves of a swap."""

    swap_group: str
    overrides: list[OverrideOut]


class IcsImportOut(BaseModel):
    """What an iCalendar import did."""

    created: list[OverrideOut]
    unchanged: int = Field(description="events already imported before")
    skipped: int = Field(description="cancelled events")


class Person(BaseModel):
    """Someone on call and why."""

    user_id: int
    user_name: str
    user_email: str
    source: str = Field(description="layer or override")
    source_id: int


class OnCallOut(BaseModel):
    """Who is on call at an instant, and until when."""

    schedule_id: int
    at: dt.datetime
    on_call: list[Person]
    until: dt.datetime | None = Field(description="the next hand-off (null: nothing ever changes)")


class ShiftOut(Person):
    """A maximal stretch of one person from one source."""

    start: dt.datetime
    end: dt.datetime


class GapOut(BaseModel):
    """A stretch with nobody on call."""

    start: dt.datetime
    end: dt.datetime


class ShiftsOut(BaseModel):
    """Shifts and gaps that together tile [start, end)."""

    schedule_id: int
    start: dt.datetime
    end: dt.datetime
    shifts: list[ShiftOut]
    gaps: list[GapOut]


class NextHandoffOut(BaseModel):
    """When the on-call answer next changes, and to whom."""

    schedule_id: int
    at: dt.datetime
    next_handoff: dt.datetime | None
    current: list[Person]
    next: list[Person]


class OnCallNowItem(Person):
    """Someone on call right now in one schedule."""

    schedule_id: int
    schedule_name: str
    team_id: int
    shift_end: dt.datetime | None
    seconds_left: int | None


class OnCallNowOut(BaseModel):
    """Everyone on call now across the visible schedules."""

    at: dt.datetime
    items: list[OnCallNowItem]


class ImportedOut(BaseModel):
    """What importing one schedule did."""

    schedule_id: int
    team_id: int
    name: str
    status: Literal["created", "updated", "unchanged"]


class ImportOut(BaseModel):
    """The outcome of an import, in document order."""

    items: list[ImportedOut]


class CalendarTokenOut(BaseModel):
    """A new feed URL; shown only now (only its hash is stored)."""

    url: str
    webcal_url: str
    token: str


# --- helpers ---------------------------------------------------------------------------------


def _actor(who: Principal) -> service.Actor:
    return service.Actor(user_id=who.user_id, label=who.user.name, api_key_id=who.api_key_id)


def _schedule(session: Session, who: Principal, schedule_id: PathId, action: str) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    team_id = schedule.team_id if schedule else None
    who.require_visible(team_id, action, what="schedule", ident=schedule_id, field="schedule_id")
    assert schedule is not None
    return schedule


def _schedule_out(schedule: Schedule) -> ScheduleOut:
    return ScheduleOut(
        **schedule.model_dump(exclude={"ical_token_hash"}), calendar_feed=bool(schedule.ical_token_hash)
    )


def _layer_out(layer: RotationLayer, participants: list[int]) -> LayerOut:
    return LayerOut(**layer.model_dump(), participants=participants)


def _override_out(row: ScheduleOverride, people: dict[int, User]) -> OverrideOut:
    person = people.get(row.user_id)
    return OverrideOut(**row.model_dump(), user_name=person.name if person else "")


def _overrides_out(session: Session, rows: list[ScheduleOverride]) -> list[OverrideOut]:
    people = service.users_by_id(session, user_ids=[r.user_id for r in rows])
    return [_override_out(r, people) for r in rows]


def _person(answer: engine.OnCall | engine.Shift, people: dict[int, User]) -> dict[str, Any]:
    user = people.get(answer.user_id)
    return {
        "user_id": answer.user_id,
        "user_name": user.name if user else "",
        "user_email": user.email if user else "",
        "source": answer.source_kind,
        "source_id": answer.source_id,
    }


# --- schedules -------------------------------------------------------------------------------


@router.get("/schedules", response_model=list[ScheduleOut], summary="List schedules")
def list_schedules(
    who: Principal = Depends(principal), session: Session = Depends(read_db), team_id: QueryId = None
) -> list[ScheduleOut]:
    """Schedules the caller can see, by team and name."""
    visible = who.visible_team_ids()
    if team_id is not None:
        visible = {team_id} if visible is None or team_id in visible else set()
    return [_schedule_out(s) for s in service.list_schedules(session, team_ids=visible)]


@router.post("/schedules", response_model=ScheduleOut, status_code=201, summary="Create a schedule")
def create_schedule(
    body: ScheduleIn, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> ScheduleOut:
    """Create an empty schedule (team administrators)."""
    who.require("admin", body.team_id)
    schedule = service.create_schedule(
        session,
        team_id=body.team_id,
        name=body.name,
        timezone=body.timezone,
        description=body.description,
        actor=_actor(who),
    )
    return _schedule_out(schedule)


@router.post("/schedules/import", response_model=ImportOut, summary="Import schedules (idempotent)")
def import_schedules(
    body: ScheduleDocument, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> ImportOut:
    """Create or update schedules from an export document; importing the same document again changes nothing.

    Schedules are matched by team and name, layers by name (the document's layers replace the
    schedule's), overrides by person, start and end (missing ones are added, others kept).
    """
    result = service.import_document(
        session,
        document=body.model_dump(exclude_unset=False),
        authorize=lambda team_id: who.require("admin", team_id),
        actor=_actor(who),
    )
    return ImportOut(items=[ImportedOut(**vars(item)) for item in result.items])


@router.get("/schedules/{schedule_id}", response_model=ScheduleDetail, summary="A schedule with its layers")
def get_schedule(
    schedule_id: PathId, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> ScheduleDetail:
    """One schedule and its layers."""
    schedule = _schedule(session, who, schedule_id, "read")
    layers = [_layer_out(row, ps) for row, ps in service.list_layers(session, schedule_id=schedule_id)]
    return ScheduleDetail(**_schedule_out(schedule).model_dump(), layers=layers)


@router.patch("/schedules/{schedule_id}", response_model=ScheduleOut, summary="Change a schedule")
def update_schedule(
    schedule_id: PathId,
    body: SchedulePatch,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> ScheduleOut:
    """Rename a schedule or change its timezone or description (team administrators)."""
    schedule = _schedule(session, who, schedule_id, "admin")
    changes = body.model_dump(exclude_unset=True)
    for required in ("name", "timezone", "description"):
        if required in changes and changes[required] is None:
            raise ApiError(422, "must not be null", field=required)
    service.update_schedule(session, schedule=schedule, changes=changes, actor=_actor(who))
    return _schedule_out(schedule)


@router.delete("/schedules/{schedule_id}", status_code=204, summary="Delete a schedule")
def delete_schedule(
    schedule_id: PathId, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> None:
    """Delete a schedule with its layers and overrides (team administrators)."""
    schedule = _schedule(session, who, schedule_id, "admin")
    service.delete_schedule(session, schedule=schedule, actor=_actor(who))


@router.get(
    "/schedules/{schedule_id}/export", response_model=ScheduleDocument, summary="Export a schedule as JSON"
)
def export_schedule(
    schedule_id: PathId, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> ScheduleDocument:
    """The schedule, its layers (participants by email) and overrides, ready for import."""
    schedule = _schedule(session, who, schedule_id, "read")
    return ScheduleDocument.model_validate(service.export_schedule(session, schedule=schedule))


# --- layers ----------------------------------------------------------------------------------


@router.get("/schedules/{schedule_id}/layers", response_model=list[LayerOut], summary="List layers")
def list_layers(
    schedule_id: PathId, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> list[LayerOut]:
    """The schedule's layers, best priority first."""
    _schedule(session, who, schedule_id, "read")
    return [_layer_out(row, ps) for row, ps in service.list_layers(session, schedule_id=schedule_id)]


@router.post(
    "/schedules/{schedule_id}/layers", response_model=LayerOut, status_code=201, summary="Add a layer"
)
def create_layer(
    schedule_id: PathId,
    body: LayerIn,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> LayerOut:
    """Add a rotation layer (team administrators)."""
    schedule = _schedule(session, who, schedule_id, "admin")
    fields = body.model_dump()
    row, participants = service.create_layer(session, schedule=schedule, fields=fields, actor=_actor(who))
    return _layer_out(row, participants)


@router.get("/schedules/{schedule_id}/layers/{layer_id}", response_model=LayerOut, summary="A layer")
def get_layer(
    schedule_id: PathId,
    layer_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
) -> LayerOut:
    """One layer."""
    schedule = _schedule(session, who, schedule_id, "read")
    layer = service.get_layer(session, schedule=schedule, layer_id=layer_id)
    return _layer_out(layer, service.participants_of(session, layer_ids=[layer_id])[layer_id])


@router.patch("/schedules/{schedule_id}/layers/{layer_id}", response_model=LayerOut, summary="Change a layer")
def update_layer(
    schedule_id: PathId,
    layer_id: PathId,
    body: LayerPatch,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> LayerOut:
    """Change a layer (team administrators); `participants`, when given, replaces the whole order."""
    schedule = _schedule(session, who, schedule_id, "admin")
    layer = service.get_layer(session, schedule=schedule, layer_id=layer_id)
    row, participants = service.update_layer(
        session,
        schedule=schedule,
        layer=layer,
        changes=body.model_dump(exclude_unset=True),
        actor=_actor(who),
    )
    return _layer_out(row, participants)


@router.delete("/schedules/{schedule_id}/layers/{layer_id}", status_code=204, summary="Delete a layer")
def delete_layer(
    schedule_id: PathId,
    layer_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> None:
    """Remove a layer (team administrators)."""
    schedule = _schedule(session, who, schedule_id, "admin")
    layer = service.get_layer(session, schedule=schedule, layer_id=layer_id)
    service.delete_layer(session, schedule=schedule, layer=layer, actor=_actor(who))


# --- overrides -------------------------------------------------------------------------------


@router.get("/schedules/{schedule_id}/overrides", response_model=list[OverrideOut], summary="List overrides")
def list_overrides(
    schedule_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
) -> list[OverrideOut]:
    """Overrides that intersect [start, end) (either bound may be left open), by start."""
    _schedule(session, who, schedule_id, "read")
    return _overrides_out(
        session, service.list_overrides(session, schedule_id=schedule_id, start=start, end=end)
    )


@router.post(
    "/schedules/{schedule_id}/overrides",
    response_model=OverrideOut,
    status_code=201,
    summary="Add an override",
)
def create_override(
    schedule_id: PathId,
    body: OverrideIn,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> OverrideOut:
    """Put a team member on call for a while (responders and administrators); the newest override wins."""
    schedule = _schedule(session, who, schedule_id, "write")
    row = service.create_override(
        session,
        schedule=schedule,
        user_id=body.user_id,
        start_at=body.start_at,
        end_at=body.end_at,
        reason=body.reason,
        actor=_actor(who),
    )
    return _overrides_out(session, [row])[0]


@router.delete(
    "/schedules/{schedule_id}/overrides/{override_id}", status_code=204, summary="Delete an override"
)
def delete_override(
    schedule_id: PathId,
    override_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> None:
    """Delete an override; deleting either half of a swap deletes both."""
    schedule = _schedule(session, who, schedule_id, "write")
    override = service.get_override(session, schedule=schedule, override_id=override_id)
    service.delete_override(session, schedule=schedule, override=override, actor=_actor(who))


@router.post(
    "/schedules/{schedule_id}/swaps", response_model=SwapOut, status_code=201, summary="Swap two shifts"
)
def create_swap(
    schedule_id: PathId,
    body: SwapIn,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> SwapOut:
    """Two people trade shifts: an override pair sharing one `swap_group`, created atomically."""
    schedule = _schedule(session, who, schedule_id, "write")
    rows = service.create_swap(
        session,
        schedule=schedule,
        first=service.SwapSide(body.first.user_id, body.first.start_at, body.first.end_at),
        second=service.SwapSide(body.second.user_id, body.second.start_at, body.second.end_at),
        reason=body.reason,
        actor=_actor(who),
    )
    return SwapOut(swap_group=rows[0].swap_group or "", overrides=_overrides_out(session, rows))


async def _ics_body(request: Request) -> tuple[str, str]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if media == "text/calendar":
        try:
            return raw.decode("utf-8"), ""
        except UnicodeDecodeError:
            raise ApiError(400, "the calendar is not UTF-8 text", field="body") from None
    if media == "application/json":
        try:
            body = IcsImportIn.model_validate(json.loads(raw))
        except json.JSONDecodeError:
            raise ApiError(
                400, "request body is not valid JSON", field="body", code="malformed_json"
            ) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise ApiError(422, f"{where}: {first['msg']}", field=where) from None
        return body.ics, body.reason
    raise ApiError(415, 'send text/calendar, or JSON {"ics": "..."}', field="body")


@router.post(
    "/schedules/{schedule_id}/overrides/import-ics",
    response_model=IcsImportOut,
    summary="Import overrides from iCalendar",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/calendar": {"schema": {"type": "string"}},
                "application/json": {"schema": IcsImportIn.model_json_schema()},
            },
        }
    },
)
async def import_ics(
    schedule_id: PathId,
    request: Request,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> IcsImportOut:
    """Each VEVENT becomes an override for the team member whose email is in ATTENDEE, ORGANIZER or SUMMARY."""
    text, reason = await _ics_body(request)

    def run() -> IcsImportOut:
        schedule = _schedule(session, who, schedule_id, "write")
        result = calendars.import_overrides(
            session, schedule=schedule, text=text, reason=reason, actor=_actor(who)
        )
        return IcsImportOut(
            created=_overrides_out(session, result.created),
            unchanged=result.unchanged,
            skipped=result.skipped,
        )

    # Database work stays off the event loop, like in the synchronous routes.
    return await run_in_threadpool(run)


# --- on-call questions -----------------------------------------------------------------------


def _schedule_at(
    session: Session, who: Principal, schedule_id: int, at: dt.datetime | None
) -> tuple[dt.datetime, engine.Schedule]:
    """The instant asked about (default now) and the schedule loaded for it, after the read check."""
    _schedule(session, who, schedule_id, "read")
    moment = service.parse_instant(at, field="at") if at is not None else utcnow()
    return moment, service.load_schedule(session, schedule_id=schedule_id, start=moment)


@router.get("/schedules/{schedule_id}/oncall", response_model=OnCallOut, summary="Who is on call")
def on_call(
    schedule_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
    at: Annotated[AwareDatetime | None, Query(description="default: now")] = None,
) -> OnCallOut:
    """Who is on call at `at`, and until when."""
    moment, model = _schedule_at(session, who, schedule_id, at)
    answers = engine.on_call(model, moment)
    people = service.users_by_id(session, user_ids=[a.user_id for a in answers])
    return OnCallOut(
        schedule_id=schedule_id,
        at=moment,
        on_call=[Person(**_person(a, people)) for a in answers],
        until=engine.next_handoff(model, moment),
    )


@router.get("/schedules/{schedule_id}/shifts", response_model=ShiftsOut, summary="Shifts in a range")
def shifts(
    schedule_id: PathId,
    start: AwareDatetime,
    end: AwareDatetime,
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
) -> ShiftsOut:
    """The shifts and gaps that tile [start, end) (at most 400 days)."""
    _schedule(session, who, schedule_id, "read")
    plan = service.shift_plan(session, schedule_id=schedule_id, start=start, end=end)
    people = service.users_by_id(session, user_ids=[s.user_id for s in plan.shifts])
    return ShiftsOut(
        schedule_id=schedule_id,
        start=start,
        end=end,
        shifts=[ShiftOut(**_person(s, people), start=s.start, end=s.end) for s in plan.shifts],
        gaps=[GapOut(start=lo, end=hi) for lo, hi in plan.gaps],
    )


@router.get(
    "/schedules/{schedule_id}/next-handoff", response_model=NextHandoffOut, summary="The next hand-off"
)
def next_handoff(
    schedule_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
    at: Annotated[AwareDatetime | None, Query(description="default: now")] = None,
) -> NextHandoffOut:
    """When the on-call answer next changes after `at`, who is on call now and who then."""
    moment, model = _schedule_at(session, who, schedule_id, at)
    when = engine.next_handoff(model, moment)
    current = engine.on_call(model, moment)
    upcoming = engine.on_call(model, when) if when is not None else []
    people = service.users_by_id(session, user_ids=[a.user_id for a in current + upcoming])
    return NextHandoffOut(
        schedule_id=schedule_id,
        at=moment,
        next_handoff=when,
        current=[Person(**_person(a, people)) for a in current],
        next=[Person(**_person(a, people)) for a in upcoming],
    )


@router.get("/oncall", response_model=OnCallNowOut, summary="Everyone on call now")
def everyone_on_call(
    who: Principal = Depends(principal), session: Session = Depends(read_db), team_id: QueryId = None
) -> OnCallNowOut:
    """Everyone on call now across the schedules the caller can see, with the time left in each shift."""
    now = utcnow()
    visible = who.visible_team_ids()
    if team_id is not None:
        visible = {team_id} if visible is None or team_id in visible else set()
    found = service.on_call_now(session, team_ids=visible, at=now)
    people = service.users_by_id(session, user_ids=[f.user_id for f in found])
    items = []
    for entry in found:
        user = people.get(entry.user_id)
        left = int((entry.shift_end - now).total_seconds()) if entry.shift_end is not None else None
        items.append(
            OnCallNowItem(
                user_id=entry.user_id,
                user_name=user.name if user else "",
                user_email=user.email if user else "",
                source=entry.source_kind,
                source_id=entry.source_id,
                schedule_id=require_id(entry.schedule),
                schedule_name=entry.schedule.name,
                team_id=entry.schedule.team_id,
                shift_end=entry.shift_end,
                seconds_left=left,
            )
        )
    return OnCallNowOut(at=now, items=items)


# --- iCalendar feeds -------------------------------------------------------------------------


def _token_out(kind: calendars.FeedKind, token: str) -> CalendarTokenOut:
    url = calendars.feed_url(base_url=get_settings().base_url, kind=kind, token=token)
    return CalendarTokenOut(url=url, webcal_url="webcal://" + url.split("://", 1)[1], token=token)


@router.post(
    "/schedules/{schedule_id}/calendar-token",
    response_model=CalendarTokenOut,
    summary="New schedule feed URL",
)
def rotate_schedule_calendar_token(
    schedule_id: PathId, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> CalendarTokenOut:
    """Issue a new iCalendar feed URL for the schedule (shown only now); the previous URL stops working."""
    schedule = _schedule(session, who, schedule_id, "write")
    return _token_out(
        "schedules", calendars.rotate_schedule_token(session, schedule=schedule, actor=_actor(who))
    )


@router.post("/users/me/calendar-token", response_model=CalendarTokenOut, summary="New personal feed URL")
def rotate_my_calendar_token(
    who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> CalendarTokenOut:
    """Issue a new feed URL of the caller's own shifts (shown only now); the previous URL stops working."""
    if not who.has_scope("write"):
        raise ApiError(403, "a read-only key cannot issue calendar URLs")
    user = session.get(User, who.user_id)
    assert user is not None
    return _token_out("users", calendars.rotate_user_token(session, user=user, actor=_actor(who)))


def _ics(body: bytes, filename: str) -> Response:
    return Response(
        content=body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Disposition": f'inline; filename="{filename}"',
        },
    )


_FEED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {"schema": {"type": "string"}}}, "description": "RFC 5545 calendar"}
}


@router.get(
    "/calendars/schedules/{token}.ics",
    response_class=Response,
    responses=_FEED_RESPONSES,
    summary="Schedule feed (no auth; the token is the secret)",
)
def schedule_calendar(token: str, session: Session = Depends(read_db)) -> Response:
    """Everyone's shifts in the schedule, 30 days back to 90 days ahead."""
    schedule = calendars.schedule_for_token(session, token=token)
    if schedule is None:
        raise ApiError(404, "unknown calendar feed", field="token")
    return _ics(
        calendars.schedule_feed(session, schedule=schedule, now=utcnow()), f"schedule-{schedule.id}.ics"
    )


@router.get(
    "/calendars/users/{token}.ics",
    response_class=Response,
    responses=_FEED_RESPONSES,
    summary="Personal feed (no auth; the token is the secret)",
)
def user_calendar(token: str, session: Session = Depends(read_db)) -> Response:
    """One person's shifts across all schedules, 30 days back to 90 days ahead."""
    user = calendars.user_for_token(session, token=token)
    if user is None:
        raise ApiError(404, "unknown calendar feed", field="token")
    return _ics(calendars.user_feed(session, user=user, now=utcnow()), "oncall.ics")
