"""Schedules: rows ↔ the on-call engine, CRUD with audit and live events, on-call queries, export/import.

Field names in errors are the API's: ``start_at`` (not the engine's ``start``),
``shift_length_minutes``, ``restrictions[1].end``; callers pass a prefix such as
``schedules[0].layers[2]`` when the input is part of a larger document.
Every change writes the audit log and publishes ``oncall.changed`` in the same
transaction. Single changes are validated before anything is written; a bulk import
validates each schedule as it goes, so its caller must roll back on error (API requests do).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app import bus
from sentinel_app.domain import schedule as engine
from sentinel_app.domain.schedule_model import RestrictionKind, RotationKind, RotationUnit
from sentinel_app.domain.wallclock import load_zone, to_utc, wall_at
from sentinel_app.models import (
    EscalationStep,
    LayerParticipant,
    RotationLayer,
    Schedule,
    ScheduleOverride,
    Team,
    TeamMembership,
    User,
)
from sentinel_app.models.base import require_id
from sentinel_app.services import audit
from sentinel_app.services.actor import SYSTEM, Actor
from sentinel_app.services.errors import Conflict, NotFound, ValidationFailed

ONCALL_CHANGED = "oncall.changed"
# Longest range a shift plan may cover in one request.
MAX_RANGE = dt.timedelta(days=400)
DOCUMENT_VERSION = 1
KINDS: tuple[str, ...] = ("hourly", "daily", "weekly", "monthly", "custom")
UNITS: tuple[str, ...] = ("hour", "day", "week", "month")
MAX_NAME = 200
# Instants outside these bounds are refused: far enough for "forever", yet zone arithmetic stays in range.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
# A 1000-month shift is the longest the engine allows; anything above is refused early.
MAX_SHIFT_MINUTES = 1000 * 31 * 24 * 60
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# The engine's layer field names that differ from the API's.
_LAYER_FIELDS = {"start": "start_at", "end": "end_at", "shift_length": "shift_length_minutes"}
_OVERRIDE_FIELDS = {"start": "start_at", "end": "end_at"}
# Column values a layer is compared and stored by (participants are kept apart).
LAYER_COLUMNS = (
    "name",
    "priority",
    "kind",
    "interval",
    "unit",
    "shift_length_minutes",
    "handoff_time",
    "handoff_weekday",
    "handoff_day",
    "timezone",
    "start_at",
    "end_at",
    "start_index",
    "restrictions",
)


# --- small parsers ---------------------------------------------------------------------------


def _path(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def parse_hhmm(value: object, *, field: str) -> dt.time:
    """Parse a wall-clock time written "HH:MM" (00:00 to 23:59)."""
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValidationFailed(f'{value!r} is not a time of day written "HH:MM" (00:00-23:59)', field=field)
    return dt.time(int(value[:2]), int(value[3:]))


def format_hhmm(value: dt.time) -> str:
    """Write a wall-clock time as "HH:MM"."""
    return f"{value.hour:02d}:{value.minute:02d}"


def parse_instant(value: object, *, field: str) -> dt.datetime:
    """Return `value` (an aware datetime or ISO 8601 text with an offset) as a UTC datetime."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed(f"{value!r} is not an ISO 8601 date and time", field=field) from None
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ValidationFailed(
            "needs a date and time with a timezone offset, e.g. 2026-11-01T09:00:00-05:00", field=field
        )
    try:
        instant: dt.datetime | None = to_utc(value)
    except OverflowError:
        instant = None
    if instant is None or not EARLIEST <= instant <= LATEST:
        raise ValidationFailed(
            f"must lie between {EARLIEST.year} and {LATEST.year} (got {value.isoformat()})", field=field
        )
    return instant


def check_timezone(name: object, *, field: str = "timezone") -> str:
    """Return `name` if it is an IANA timezone the engine knows."""
    if not isinstance(name, str):
        raise ValidationFailed("must be an IANA timezone name such as Europe/Berlin", field=field)
    try:
        load_zone(name)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field=field) from None
    return name


def _name(value: object, *, field: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationFailed("must not be empty", field=field)
    if len(text) > MAX_NAME:
        raise ValidationFailed(f"must be at most {MAX_NAME} characters", field=field)
    return text


INT32 = 2**31 - 1
INT64 = 2**63 - 1


def _int(value: object, *, field: str, default: int | None = None, limit: int = INT32) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{value!r} is not a whole number", field=field)
    if abs(value) > limit:
        raise ValidationFailed(f"{value} is out of range", field=field)
    return value


def _layer_error(error: engine.ScheduleError, prefix: str) -> ValidationFailed:
    """Translate an engine path such as ``layers[0].start`` into the API's ``start_at``."""
    rest = error.field.split(".", 1)[1] if error.field.startswith("layers[") else error.field
    head, dot, tail = rest.partition(".")
    return ValidationFailed(error.message, field=_path(prefix, _LAYER_FIELDS.get(head, head) + dot + tail))


def _override_error(error: engine.ScheduleError, prefix: str) -> ValidationFailed:
    rest = error.field.split(".", 1)[1] if error.field.startswith("overrides[") else error.field
    return ValidationFailed(error.message, field=_path(prefix, _OVERRIDE_FIELDS.get(rest, rest)))


# --- rows → engine ---------------------------------------------------------------------------


def to_domain_restriction(raw: Mapping[str, Any]) -> engine.Restriction:
    """A stored restriction (``{"kind", "start": "HH:MM", …}``) as the engine's Restriction."""
    return engine.Restriction(
        kind=cast(RestrictionKind, raw["kind"]),
        start=dt.time.fromisoformat(raw["start"]),
        end=dt.time.fromisoformat(raw["end"]),
        start_weekday=raw.get("start_weekday"),
        end_weekday=raw.get("end_weekday"),
    )


def to_domain_layer(
    row: RotationLayer, participants: Sequence[int], *, layer_id: int | None = None
) -> engine.Layer:
    """A layer row and its participants (in position order) as the engine's Layer."""
    return engine.Layer(
        id=layer_id if layer_id is not None else require_id(row),
        priority=row.priority,
        participants=list(participants),
        kind=cast(RotationKind, row.kind),
        interval=row.interval,
        unit=cast(RotationUnit | None, row.unit),
        shift_length=(
            dt.timedelta(minutes=row.shift_length_minutes) if row.shift_length_minutes is not None else None
        ),
        handoff_time=dt.time.fromisoformat(row.handoff_time),
        handoff_weekday=row.handoff_weekday,
        handoff_day=row.handoff_day,
        timezone=row.timezone,
        start=row.start_at,
        end=row.end_at,
        start_index=row.start_index,
        restrictions=[to_domain_restriction(r) for r in row.restrictions],
    )


def to_domain_override(row: ScheduleOverride) -> engine.Override:
    """An override row; its id grows with creation, so it doubles as the engine's `created_seq`."""
    override_id = require_id(row)
    return engine.Override(
        id=override_id, user_id=row.user_id, start=row.start_at, end=row.end_at, created_seq=override_id
    )


def participants_of(session: Session, *, layer_ids: Iterable[int]) -> dict[int, list[int]]:
    """The user ids of each layer's participants, in position order."""
    ids = sorted(set(layer_ids))
    found: dict[int, list[int]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = session.exec(
        select(LayerParticipant)
        .where(col(LayerParticipant.layer_id).in_(ids))
        .order_by(col(LayerParticipant.layer_id), col(LayerParticipant.position))
    )
    for row in rows:
        found[row.layer_id].append(row.user_id)
    return found


def load_schedules(
    session: Session,
    *,
    schedule_ids: Iterable[int],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[int, engine.Schedule]:
    """Load several schedules for the engine in a fixed number of queries.

    Only overrides that intersect [start, end) are loaded (an open bound loads all on that side):
    the others cannot change any answer inside the range.
    """
    ids = sorted(set(schedule_ids))
    if not ids:
        return {}
    rows = session.exec(select(Schedule).where(col(Schedule.id).in_(ids))).all()
    layers = session.exec(
        select(RotationLayer).where(col(RotationLayer.schedule_id).in_(ids)).order_by(col(RotationLayer.id))
    ).all()
    participants = participants_of(session, layer_ids=[require_id(layer) for layer in layers])
    query = select(ScheduleOverride).where(col(ScheduleOverride.schedule_id).in_(ids))
    if start is not None:
        query = query.where(col(ScheduleOverride.end_at) > to_utc(start))
    if end is not None:
        query = query.where(col(ScheduleOverride.start_at) < to_utc(end))
    overrides: dict[int, list[engine.Override]] = defaultdict(list)
    for row in session.exec(query.order_by(col(ScheduleOverride.id))):
        overrides[row.schedule_id].append(to_domain_override(row))
    by_schedule: dict[int, list[engine.Layer]] = defaultdict(list)
    for layer in layers:
        by_schedule[layer.schedule_id].append(to_domain_layer(layer, participants[require_id(layer)]))
    return {
        require_id(row): engine.Schedule(
            timezone=row.timezone,
            layers=by_schedule[require_id(row)],
            overrides=overrides[require_id(row)],
        )
        for row in rows
    }


def load_schedule(
    session: Session,
    *,
    schedule_id: int,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> engine.Schedule:
    """Load one schedule for the engine; see `load_schedules` for the override range."""
    loaded = load_schedules(session, schedule_ids=[schedule_id], start=start, end=end)
    if schedule_id not in loaded:
        raise NotFound(f"schedule {schedule_id} not found", field="schedule_id")
    return loaded[schedule_id]


# --- lookups ---------------------------------------------------------------------------------


def get_schedule(session: Session, *, schedule_id: int) -> Schedule:
    """The schedule with this id."""
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound(f"schedule {schedule_id} not found", field="schedule_id")
    return schedule


def get_layer(session: Session, *, schedule: Schedule, layer_id: int) -> RotationLayer:
    """A layer of `schedule`."""
    layer = session.get(RotationLayer, layer_id)
    if layer is None or layer.schedule_id != schedule.id:
        raise NotFound(f"layer {layer_id} not found in schedule {schedule.id}", field="layer_id")
    return layer


def get_override(session: Session, *, schedule: Schedule, override_id: int) -> ScheduleOverride:
    """An override of `schedule`."""
    override = session.get(ScheduleOverride, override_id)
    if override is None or override.schedule_id != schedule.id:
        raise NotFound(f"override {override_id} not found in schedule {schedule.id}", field="override_id")
    return override


def list_schedules(session: Session, *, team_ids: set[int] | None = None) -> list[Schedule]:
    """Schedules of `team_ids` (None: every team), by team and name."""
    query = select(Schedule).order_by(col(Schedule.team_id), col(Schedule.name))
    if team_ids is not None:
        query = query.where(col(Schedule.team_id).in_(sorted(team_ids)))
    return list(session.exec(query))


def list_layers(session: Session, *, schedule_id: int) -> list[tuple[RotationLayer, list[int]]]:
    """The schedule's layers (best priority first) with their participants."""
    rows = session.exec(
        select(RotationLayer)
        .where(RotationLayer.schedule_id == schedule_id)
        .order_by(col(RotationLayer.priority).desc(), col(RotationLayer.id))
    ).all()
    participants = participants_of(session, layer_ids=[require_id(r) for r in rows])
    return [(row, participants[require_id(row)]) for row in rows]


def list_overrides(
    session: Session,
    *,
    schedule_id: int,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[ScheduleOverride]:
    """The schedule's overrides that intersect [start, end) (open bounds: all), by start."""
    query = select(ScheduleOverride).where(ScheduleOverride.schedule_id == schedule_id)
    if start is not None:
        query = query.where(col(ScheduleOverride.end_at) > parse_instant(start, field="start"))
    if end is not None:
        query = query.where(col(ScheduleOverride.start_at) < parse_instant(end, field="end"))
    return list(session.exec(query.order_by(col(ScheduleOverride.start_at), col(ScheduleOverride.id))))


def users_by_id(session: Session, *, user_ids: Iterable[int]) -> dict[int, User]:
    """Users by id (missing ids are left out)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return {require_id(u): u for u in session.exec(select(User).where(col(User.id).in_(ids)))}


def team_member_ids(session: Session, *, team_id: int) -> set[int]:
    """Ids of the team's members (any role)."""
    rows = session.exec(select(TeamMembership.user_id).where(TeamMembership.team_id == team_id))
    return set(rows)


def lock_schedule(session: Session, schedule: Schedule) -> None:
    """Serialise override changes of one schedule, so two overlapping requests cannot both pass the check.

    A row lock on PostgreSQL; SQLite writers already hold the database's write lock.
    """
    session.exec(select(Schedule.id).where(Schedule.id == schedule.id).with_for_update()).first()


def _require_member(members: set[int], user_id: int, team_id: int, *, field: str) -> None:
    if user_id not in members:
        raise ValidationFailed(f"user {user_id} is not a member of team {team_id}", field=field)


def publish_changed(session: Session, schedule: Schedule) -> None:
    """Tell live views that who is on call may have changed (delivered only on commit)."""
    schedule_id = require_id(schedule)
    bus.publish(
        session,
        ONCALL_CHANGED,
        {"schedule_id": schedule_id, "team_id": schedule.team_id},
        key=f"schedule:{schedule_id}",
    )


# --- schedules -------------------------------------------------------------------------------


def _schedule_named(session: Session, team_id: int, name: str) -> Schedule | None:
    return session.exec(select(Schedule).where(Schedule.team_id == team_id, Schedule.name == name)).first()


def create_schedule(
    session: Session,
    *,
    team_id: int,
    name: str,
    timezone: str = "UTC",
    description: str = "",
    actor: Actor = SYSTEM,
) -> Schedule:
    """Create an empty schedule; its name must be new within the team."""
    name = _name(name, field="name")
    check_timezone(timezone)
    if not 0 < team_id <= INT64 or session.get(Team, team_id) is None:
        raise ValidationFailed(f"team {team_id} does not exist", field="team_id")
    if _schedule_named(session, team_id, name) is not None:
        raise Conflict(f"team {team_id} already has a schedule named {name!r}", field="name")
    schedule = Schedule(team_id=team_id, name=name, timezone=timezone, description=description)
    session.add(schedule)
    session.flush()
    audit.record_by(
        session,
        actor,
        action="schedule.create",
        entity_type="schedule",
        entity_id=schedule.id,
        team_id=team_id,
        after=audit.snapshot(schedule),
    )
    publish_changed(session, schedule)
    return schedule


def update_schedule(
    session: Session, *, schedule: Schedule, changes: Mapping[str, Any], actor: Actor = SYSTEM
) -> Schedule:
    """Change a schedule's name, timezone or description."""
    unknown = set(changes) - {"name", "timezone", "description"}
    if unknown:
        raise ValidationFailed(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    values = dict(changes)
    if "name" in values:
        values["name"] = _name(values["name"], field="name")
        other = _schedule_named(session, schedule.team_id, values["name"])
        if other is not None and other.id != schedule.id:
            raise Conflict(
                f"team {schedule.team_id} already has a schedule named {values['name']!r}", field="name"
            )
    if "timezone" in values:
        check_timezone(values["timezone"])
    if "description" in values and not isinstance(values["description"], str):
        raise ValidationFailed("must be text", field="description")
    values = {k: v for k, v in values.items() if getattr(schedule, k) != v}
    if not values:
        return schedule
    before = audit.snapshot(schedule)
    for key, value in values.items():
        setattr(schedule, key, value)
    session.add(schedule)
    session.flush()
    audit.record_by(
        session,
        actor,
        action="schedule.update",
        entity_type="schedule",
        entity_id=schedule.id,
        team_id=schedule.team_id,
        before=before,
        after=audit.snapshot(schedule),
    )
    publish_changed(session, schedule)
    return schedule


def policies_using(session: Session, *, schedule_id: int) -> list[int]:
    """Ids of escalation policies with a step that targets the schedule."""
    found: set[int] = set()
    for step in session.exec(select(EscalationStep)):
        targets = step.targets if isinstance(step.targets, dict) else {}
        if schedule_id in (targets.get("schedule_ids") or []):
            found.add(step.policy_id)
    return sorted(found)


def delete_schedule(session: Session, *, schedule: Schedule, actor: Actor = SYSTEM) -> None:
    """Delete a schedule with its layers and overrides, unless an escalation policy still pages it."""
    schedule_id = require_id(schedule)
    using = policies_using(session, schedule_id=schedule_id)
    if using:
        raise Conflict(
            f"schedule {schedule_id} is a target of escalation policies {using}; remove it there first",
            field="schedule_id",
        )
    audit.record_by(
        session,
        actor,
        action="schedule.delete",
        entity_type="schedule",
        entity_id=schedule_id,
        team_id=schedule.team_id,
        before=audit.snapshot(schedule),
    )
    publish_changed(session, schedule)
    # Children first: the ORM knows no relationships, and SQLite may run without cascades.
    layer_ids = select(RotationLayer.id).where(RotationLayer.schedule_id == schedule_id)
    session.execute(sa.delete(LayerParticipant).where(col(LayerParticipant.layer_id).in_(layer_ids)))
    session.execute(sa.delete(RotationLayer).where(col(RotationLayer.schedule_id) == schedule_id))
    session.execute(sa.delete(ScheduleOverride).where(col(ScheduleOverride.schedule_id) == schedule_id))
    session.delete(schedule)
    session.flush()


# --- layers ----------------------------------------------------------------------------------


def _restriction_values(raw: object, *, prefix: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("must be an object with kind, start and end", field=prefix)
    kind = raw.get("kind")
    if kind not in ("daily", "weekly"):
        raise ValidationFailed(f"{kind!r} is not one of daily, weekly", field=_path(prefix, "kind"))
    return {
        "kind": kind,
        "start": format_hhmm(parse_hhmm(raw.get("start"), field=_path(prefix, "start"))),
        "end": format_hhmm(parse_hhmm(raw.get("end"), field=_path(prefix, "end"))),
        "start_weekday": _int(raw.get("start_weekday"), field=_path(prefix, "start_weekday")),
        "end_weekday": _int(raw.get("end_weekday"), field=_path(prefix, "end_weekday")),
    }


def prepare_layer(
    fields: Mapping[str, Any],
    *,
    schedule_timezone: str,
    team_id: int,
    members: set[int],
    prefix: str = "",
) -> tuple[dict[str, Any], list[int]]:
    """Validate a layer given with the API's field names; return its column values and participants.

    An omitted `handoff_time` becomes the local time of `start_at` (the engine's default);
    omitted `handoff_weekday`/`handoff_day` stay unset and follow `start_at` in the engine.
    """
    unknown = set(fields) - {*LAYER_COLUMNS, "participants"}
    if unknown:
        raise ValidationFailed("unknown field", field=_path(prefix, sorted(unknown)[0]))
    kind = fields.get("kind", "weekly")
    if kind not in KINDS:
        raise ValidationFailed(f"{kind!r} is not one of {', '.join(KINDS)}", field=_path(prefix, "kind"))
    unit = fields.get("unit")
    if unit is not None and unit not in UNITS:
        raise ValidationFailed(f"{unit!r} is not one of {', '.join(UNITS)}", field=_path(prefix, "unit"))
    zone = fields.get("timezone")
    if zone is not None:
        check_timezone(zone, field=_path(prefix, "timezone"))
    if fields.get("start_at") is None:
        raise ValidationFailed("is required", field=_path(prefix, "start_at"))
    start_at = parse_instant(fields["start_at"], field=_path(prefix, "start_at"))
    end_raw = fields.get("end_at")
    end_at = parse_instant(end_raw, field=_path(prefix, "end_at")) if end_raw is not None else None
    handoff_raw = fields.get("handoff_time")
    if handoff_raw is None:
        local = wall_at(start_at, load_zone(zone or schedule_timezone))
        handoff = dt.time(local.hour, local.minute)
    else:
        handoff = parse_hhmm(handoff_raw, field=_path(prefix, "handoff_time"))
    raw_restrictions = fields.get("restrictions") or []
    if not isinstance(raw_restrictions, list | tuple):
        raise ValidationFailed("must be a list", field=_path(prefix, "restrictions"))
    values: dict[str, Any] = {
        "name": _name(fields.get("name"), field=_path(prefix, "name")),
        "priority": _int(fields.get("priority"), field=_path(prefix, "priority"), default=0),
        "kind": kind,
        "interval": _int(fields.get("interval"), field=_path(prefix, "interval"), default=1),
        "unit": unit,
        "shift_length_minutes": _shift_minutes(fields.get("shift_length_minutes"), prefix),
        "handoff_time": format_hhmm(handoff),
        "handoff_weekday": _int(fields.get("handoff_weekday"), field=_path(prefix, "handoff_weekday")),
        "handoff_day": _int(fields.get("handoff_day"), field=_path(prefix, "handoff_day")),
        "timezone": zone,
        "start_at": start_at,
        "end_at": end_at,
        "start_index": _int(fields.get("start_index"), field=_path(prefix, "start_index"), default=0),
        "restrictions": [
            _restriction_values(r, prefix=_path(prefix, f"restrictions[{j}]"))
            for j, r in enumerate(raw_restrictions)
        ],
    }
    participants = fields.get("participants")
    if not isinstance(participants, list | tuple):
        raise ValidationFailed("must be a list of user ids", field=_path(prefix, "participants"))
    for k, user_id in enumerate(participants):
        where = _path(prefix, f"participants[{k}]")
        _int(user_id, field=where, limit=INT64)
        _require_member(members, user_id, team_id, field=where)
    candidate = to_domain_layer(RotationLayer(schedule_id=0, **values), list(participants), layer_id=0)
    try:
        engine.validate_schedule(engine.Schedule(timezone=schedule_timezone, layers=[candidate]))
    except engine.ScheduleError as error:
        raise _layer_error(error, prefix) from None
    return values, list(participants)


def _shift_minutes(value: object, prefix: str) -> int | None:
    minutes = _int(value, field=_path(prefix, "shift_length_minutes"))
    if minutes is not None and abs(minutes) > MAX_SHIFT_MINUTES:
        raise ValidationFailed(
            "is longer than any rotation interval", field=_path(prefix, "shift_length_minutes")
        )
    return minutes


def layer_values(row: RotationLayer) -> dict[str, Any]:
    """A layer row's column values in the form `prepare_layer` returns."""
    return {name: getattr(row, name) for name in LAYER_COLUMNS}


def _layer_named(session: Session, schedule_id: int, name: str) -> RotationLayer | None:
    return session.exec(
        select(RotationLayer).where(RotationLayer.schedule_id == schedule_id, RotationLayer.name == name)
    ).first()


def _set_participants(session: Session, layer_id: int, participants: Sequence[int]) -> None:
    session.execute(sa.delete(LayerParticipant).where(col(LayerParticipant.layer_id) == layer_id))
    session.flush()
    for position, user_id in enumerate(participants):
        session.add(LayerParticipant(layer_id=layer_id, position=position, user_id=user_id))
    session.flush()


def _layer_snapshot(row: RotationLayer, participants: Sequence[int]) -> dict[str, Any]:
    return {**audit.snapshot(row), "participants": list(participants)}


def _write_layer(
    session: Session,
    *,
    schedule: Schedule,
    row: RotationLayer | None,
    values: Mapping[str, Any],
    participants: Sequence[int],
    current: Sequence[int] = (),
) -> RotationLayer:
    if row is None:
        row = RotationLayer(schedule_id=require_id(schedule), **values)
        session.add(row)
        session.flush()
        _set_participants(session, require_id(row), participants)
        return row
    for key, value in values.items():
        setattr(row, key, value)
    session.add(row)
    session.flush()
    if list(participants) != list(current):
        _set_participants(session, require_id(row), participants)
    return row


def create_layer(
    session: Session, *, schedule: Schedule, fields: Mapping[str, Any], actor: Actor = SYSTEM
) -> tuple[RotationLayer, list[int]]:
    """Add a rotation layer (API field names; `participants` are user ids, repeats allowed)."""
    values, participants = prepare_layer(
        fields,
        schedule_timezone=schedule.timezone,
        team_id=schedule.team_id,
        members=team_member_ids(session, team_id=schedule.team_id),
    )
    if _layer_named(session, require_id(schedule), values["name"]) is not None:
        raise Conflict(f"schedule {schedule.id} already has a layer named {values['name']!r}", field="name")
    row = _write_layer(session, schedule=schedule, row=None, values=values, participants=participants)
    audit.record_by(
        session,
        actor,
        action="layer.create",
        entity_type="rotation_layer",
        entity_id=row.id,
        team_id=schedule.team_id,
        after=_layer_snapshot(row, participants),
    )
    publish_changed(session, schedule)
    return row, participants


def update_layer(
    session: Session,
    *,
    schedule: Schedule,
    layer: RotationLayer,
    changes: Mapping[str, Any],
    actor: Actor = SYSTEM,
) -> tuple[RotationLayer, list[int]]:
    """Change some of a layer's fields; the result is validated as a whole."""
    layer_id = require_id(layer)
    current = participants_of(session, layer_ids=[layer_id])[layer_id]
    merged: dict[str, Any] = {**layer_values(layer), "participants": current, **changes}
    if "kind" in changes and changes["kind"] != "custom" and "unit" not in changes:
        merged["unit"] = None  # a unit left over from a custom rotation would contradict the new kind
    values, participants = prepare_layer(
        merged,
        schedule_timezone=schedule.timezone,
        team_id=schedule.team_id,
        members=team_member_ids(session, team_id=schedule.team_id),
    )
    other = _layer_named(session, require_id(schedule), values["name"])
    if other is not None and other.id != layer_id:
        raise Conflict(f"schedule {schedule.id} already has a layer named {values['name']!r}", field="name")
    if values == layer_values(layer) and participants == current:
        return layer, current
    before = _layer_snapshot(layer, current)
    _write_layer(
        session, schedule=schedule, row=layer, values=values, participants=participants, current=current
    )
    audit.record_by(
        session,
        actor,
        action="layer.update",
        entity_type="rotation_layer",
        entity_id=layer_id,
        team_id=schedule.team_id,
        before=before,
        after=_layer_snapshot(layer, participants),
    )
    publish_changed(session, schedule)
    return layer, participants


def delete_layer(
    session: Session, *, schedule: Schedule, layer: RotationLayer, actor: Actor = SYSTEM
) -> None:
    """Remove a layer and its participants."""
    layer_id = require_id(layer)
    current = participants_of(session, layer_ids=[layer_id])[layer_id]
    audit.record_by(
        session,
        actor,
        action="layer.delete",
        entity_type="rotation_layer",
        entity_id=layer_id,
        team_id=schedule.team_id,
        before=_layer_snapshot(layer, current),
    )
    session.execute(sa.delete(LayerParticipant).where(col(LayerParticipant.layer_id) == layer_id))
    session.delete(layer)
    session.flush()
    publish_changed(session, schedule)


# --- overrides -------------------------------------------------------------------------------


def check_override(
    session: Session,
    *,
    schedule: Schedule,
    members: set[int],
    user_id: object,
    start_at: object,
    end_at: object,
    prefix: str = "",
) -> tuple[int, dt.datetime, dt.datetime]:
    """Validate one override against the team and the schedule's existing overrides."""
    user = _int(user_id, field=_path(prefix, "user_id"), limit=INT64)
    if user is None:
        raise ValidationFailed("is required", field=_path(prefix, "user_id"))
    start = parse_instant(start_at, field=_path(prefix, "start_at"))
    end = parse_instant(end_at, field=_path(prefix, "end_at"))
    try:
        engine.validate_schedule(
            engine.Schedule(
                timezone=schedule.timezone,
                overrides=[engine.Override(id=0, user_id=user, start=start, end=end, created_seq=0)],
            )
        )
    except engine.ScheduleError as error:
        raise _override_error(error, prefix) from None
    _require_member(members, user, schedule.team_id, field=_path(prefix, "user_id"))
    clash = session.exec(
        select(ScheduleOverride).where(
            ScheduleOverride.schedule_id == schedule.id,
            ScheduleOverride.user_id == user,
            col(ScheduleOverride.start_at) < end,
            col(ScheduleOverride.end_at) > start,
        )
    ).first()
    if clash is not None:
        raise ValidationFailed(
            f"overlaps override {clash.id} of user {user} "
            f"({clash.start_at.isoformat()} to {clash.end_at.isoformat()})",
            field=_path(prefix, "start_at"),
        )
    return user, start, end


def add_override(
    session: Session,
    *,
    schedule: Schedule,
    user_id: int,
    start_at: dt.datetime,
    end_at: dt.datetime,
    reason: str,
    swap_group: str | None,
    actor: Actor,
) -> ScheduleOverride:
    """Insert an already validated override (no audit entry, no event)."""
    row = ScheduleOverride(
        schedule_id=require_id(schedule),
        user_id=user_id,
        start_at=start_at,
        end_at=end_at,
        reason=reason,
        swap_group=swap_group,
        created_by_id=actor.user_id,
    )
    session.add(row)
    # Flushed at once so that the next override of a batch sees this one when checking overlaps.
    session.flush()
    return row


def audit_override(
    session: Session, actor: Actor, schedule: Schedule, row: ScheduleOverride, action: str
) -> None:
    """Record an override's creation or deletion."""
    snapshot = audit.snapshot(row)
    audit.record_by(
        session,
        actor,
        action=action,
        entity_type="schedule_override",
        entity_id=row.id,
        team_id=schedule.team_id,
        before=snapshot if action.endswith("delete") else None,
        after=None if action.endswith("delete") else snapshot,
    )


def create_override(
    session: Session,
    *,
    schedule: Schedule,
    user_id: int,
    start_at: dt.datetime,
    end_at: dt.datetime,
    reason: str = "",
    actor: Actor = SYSTEM,
) -> ScheduleOverride:
    """Put `user_id` on call in [start_at, end_at) whatever the layers say."""
    lock_schedule(session, schedule)
    members = team_member_ids(session, team_id=schedule.team_id)
    user, start, end = check_override(
        session, schedule=schedule, members=members, user_id=user_id, start_at=start_at, end_at=end_at
    )
    row = add_override(
        session,
        schedule=schedule,
        user_id=user,
        start_at=start,
        end_at=end,
        reason=reason,
        swap_group=None,
        actor=actor,
    )
    audit_override(session, actor, schedule, row, "override.create")
    publish_changed(session, schedule)
    return row


@dataclass(frozen=True)
class SwapSide:
    """One person's shift in a swap: `user_id` normally holds [start_at, end_at)."""

    user_id: int
    start_at: dt.datetime
    end_at: dt.datetime


def create_swap(
    session: Session,
    *,
    schedule: Schedule,
    first: SwapSide,
    second: SwapSide,
    reason: str = "",
    actor: Actor = SYSTEM,
) -> list[ScheduleOverride]:
    """Swap two shifts: `second.user_id` covers the first range and `first.user_id` the second.

    Both overrides share one `swap_group` and are created together or not at all. Whether the
    two people really hold those shifts is not checked: the ranges are whatever they agreed on.
    """
    lock_schedule(session, schedule)
    members = team_member_ids(session, team_id=schedule.team_id)
    if first.user_id == second.user_id:
        raise ValidationFailed("a swap needs two different people", field="second.user_id")
    first_start = parse_instant(first.start_at, field="first.start_at")
    first_end = parse_instant(first.end_at, field="first.end_at")
    second_start = parse_instant(second.start_at, field="second.start_at")
    second_end = parse_instant(second.end_at, field="second.end_at")
    if second_start < first_end and first_start < second_end:
        raise ValidationFailed("the two shifts of a swap must not overlap", field="second.start_at")
    _require_member(members, first.user_id, schedule.team_id, field="first.user_id")
    _require_member(members, second.user_id, schedule.team_id, field="second.user_id")
    # Each range is covered by the other person, so a clash is reported on that range's fields.
    cover_first = check_override(
        session,
        schedule=schedule,
        members=members,
        user_id=second.user_id,
        start_at=first_start,
        end_at=first_end,
        prefix="first",
    )
    cover_second = check_override(
        session,
        schedule=schedule,
        members=members,
        user_id=first.user_id,
        start_at=second_start,
        end_at=second_end,
        prefix="second",
    )
    group = str(uuid.uuid4())
    text = reason or "shift swap"
    rows = [
        add_override(
            session,
            schedule=schedule,
            user_id=user,
            start_at=start,
            end_at=end,
            reason=text,
            swap_group=group,
            actor=actor,
        )
        for user, start, end in (cover_first, cover_second)
    ]
    for row in rows:
        audit_override(session, actor, schedule, row, "override.create")
    publish_changed(session, schedule)
    return rows


def delete_override(
    session: Session, *, schedule: Schedule, override: ScheduleOverride, actor: Actor = SYSTEM
) -> list[int]:
    """Delete an override; deleting either half of a swap deletes both. Returns the deleted ids."""
    rows = [override]
    if override.swap_group:
        rows = list(
            session.exec(
                select(ScheduleOverride).where(
                    ScheduleOverride.schedule_id == schedule.id,
                    ScheduleOverride.swap_group == override.swap_group,
                )
            )
        )
    for row in rows:
        audit_override(session, actor, schedule, row, "override.delete")
        session.delete(row)
    session.flush()
    publish_changed(session, schedule)
    return sorted(require_id(r) for r in rows)


# --- questions -------------------------------------------------------------------------------

_TICK = dt.timedelta(microseconds=1)


def on_call_at(session: Session, *, schedule_id: int, at: dt.datetime) -> list[engine.OnCall]:
    """Who is on call at the instant `at`."""
    at = parse_instant(at, field="at")
    return engine.on_call(load_schedule(session, schedule_id=schedule_id, start=at, end=at + _TICK), at)


def next_handoff_at(session: Session, *, schedule_id: int, at: dt.datetime) -> dt.datetime | None:
    """The next instant after `at` when the on-call answer changes (None: never)."""
    at = parse_instant(at, field="at")
    return engine.next_handoff(load_schedule(session, schedule_id=schedule_id, start=at), at)


def check_range(start: object, end: object) -> tuple[dt.datetime, dt.datetime]:
    """Validate a [start, end) query range: end not before start, at most MAX_RANGE long."""
    lo = parse_instant(start, field="start")
    hi = parse_instant(end, field="end")
    if hi < lo:
        raise ValidationFailed(f"{hi.isoformat()} is before start {lo.isoformat()}", field="end")
    if hi - lo > MAX_RANGE:
        raise ValidationFailed(f"the range may cover at most {MAX_RANGE.days} days", field="end")
    return lo, hi


def shift_plan(
    session: Session, *, schedule_id: int, start: dt.datetime, end: dt.datetime
) -> engine.ShiftPlan:
    """The shifts and gaps that tile [start, end)."""
    lo, hi = check_range(start, end)
    return engine.shifts(load_schedule(session, schedule_id=schedule_id, start=lo, end=hi), lo, hi)


@dataclass(frozen=True)
class OnCallNow:
    """Someone on call in a schedule right now, and until when."""

    schedule: Schedule
    user_id: int
    source_kind: str
    source_id: int
    shift_end: dt.datetime | None


def on_call_now(session: Session, *, team_ids: set[int] | None, at: dt.datetime) -> list[OnCallNow]:
    """Everyone on call at `at` in the schedules of `team_ids` (None: all teams)."""
    at = parse_instant(at, field="at")
    schedules = list_schedules(session, team_ids=team_ids)
    loaded = load_schedules(session, schedule_ids=[require_id(s) for s in schedules], start=at)
    found: list[OnCallNow] = []
    for schedule in schedules:
        model = loaded[require_id(schedule)]
        answers = engine.on_call(model, at)
        if not answers:
            continue
        until = engine.next_handoff(model, at)
        found.extend(OnCallNow(schedule, a.user_id, a.source_kind, a.source_id, until) for a in answers)
    return found


# --- export and import -----------------------------------------------------------------------


def export_schedule(session: Session, *, schedule: Schedule) -> dict[str, Any]:
    """A self-contained JSON document of one schedule; people are named by email."""
    layers = list_layers(session, schedule_id=require_id(schedule))
    overrides = list_overrides(session, schedule_id=require_id(schedule))
    people = users_by_id(
        session,
        user_ids=[u for _, ps in layers for u in ps] + [o.user_id for o in overrides],
    )
    team = session.get(Team, schedule.team_id)
    assert team is not None
    return {
        "version": DOCUMENT_VERSION,
        "schedules": [
            {
                "team": team.slug,
                "name": schedule.name,
                "timezone": schedule.timezone,
                "description": schedule.description,
                "layers": [
                    {
                        **{k: _jsonable(v) for k, v in layer_values(row).items()},
                        "participants": [people[u].email for u in participants],
                    }
                    for row, participants in sorted(layers, key=lambda lp: require_id(lp[0]))
                ],
                "overrides": [
                    {
                        "user": people[o.user_id].email,
                        "start_at": o.start_at.isoformat(),
                        "end_at": o.end_at.isoformat(),
                        "reason": o.reason,
                        "swap_group": o.swap_group,
                    }
                    for o in overrides
                ],
            }
        ],
    }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


@dataclass
class ImportedSchedule:
    """What importing one schedule entry did: created, updated or unchanged."""

    schedule_id: int
    team_id: int
    name: str
    status: str


@dataclass
class ImportResult:
    """The outcome of an import, one item per schedule in the document."""

    items: list[ImportedSchedule] = field(default_factory=list)


def _team_of(session: Session, entry: Mapping[str, Any], prefix: str) -> Team:
    slug, team_id = entry.get("team"), entry.get("team_id")
    if (slug is None) == (team_id is None):
        raise ValidationFailed(
            "name the team by slug (team) or by id (team_id), not both", field=_path(prefix, "team")
        )
    if team_id is not None:
        team = session.get(Team, team_id) if isinstance(team_id, int) and 0 < team_id <= INT64 else None
        if team is None:
            raise ValidationFailed(f"team {team_id!r} does not exist", field=_path(prefix, "team_id"))
        return team
    team = session.exec(select(Team).where(Team.slug == slug)).first()
    if team is None:
        raise ValidationFailed(f"no team with slug {slug!r}", field=_path(prefix, "team"))
    return team


def _user_ids_by_email(session: Session, emails: Iterable[str]) -> dict[str, int]:
    wanted = sorted({e.strip().lower() for e in emails if isinstance(e, str)})
    if not wanted:
        return {}
    rows = session.exec(select(User).where(col(User.email).in_(wanted)))
    return {u.email: require_id(u) for u in rows}


def _email_to_id(ids: Mapping[str, int], email: object, *, field: str) -> int:
    key = email.strip().lower() if isinstance(email, str) else ""
    if key not in ids:
        raise ValidationFailed(f"no user with email {email!r}", field=field)
    return ids[key]


def import_document(
    session: Session,
    *,
    document: Mapping[str, Any],
    authorize: Callable[[int], None] | None = None,
    actor: Actor = SYSTEM,
) -> ImportResult:
    """Create or bring up to date the schedules of an export document; idempotent.

    A schedule is matched by team and name, its layers by name: the document's layers replace
    the schedule's (layers missing from it are deleted). Overrides are merged: those not yet
    present (same person, start and end) are added, others are kept. `authorize(team_id)` is
    called before anything is changed in a team and may raise.
    """
    version = document.get("version", DOCUMENT_VERSION)
    if version != DOCUMENT_VERSION:
        raise ValidationFailed(f"unsupported document version {version!r}", field="version")
    entries = document.get("schedules")
    if not isinstance(entries, list):
        raise ValidationFailed("must be a list", field="schedules")
    result = ImportResult()
    seen: set[tuple[int, str]] = set()
    for i, entry in enumerate(entries):
        prefix = f"schedules[{i}]"
        if not isinstance(entry, Mapping):
            raise ValidationFailed("must be an object", field=prefix)
        team = _team_of(session, entry, prefix)
        team_id = require_id(team)
        if authorize is not None:
            authorize(team_id)
        name = _name(entry.get("name"), field=_path(prefix, "name"))
        if (team_id, name) in seen:
            raise ValidationFailed(
                f"schedule {name!r} appears twice for team {team.slug}", field=_path(prefix, "name")
            )
        seen.add((team_id, name))
        result.items.append(
            _import_schedule(session, team_id=team_id, name=name, entry=entry, prefix=prefix, actor=actor)
        )
    return result


def _import_schedule(
    session: Session, *, team_id: int, name: str, entry: Mapping[str, Any], prefix: str, actor: Actor
) -> ImportedSchedule:
    timezone = check_timezone(entry.get("timezone", "UTC"), field=_path(prefix, "timezone"))
    description = entry.get("description") or ""
    if not isinstance(description, str):
        raise ValidationFailed("must be text", field=_path(prefix, "description"))
    members = team_member_ids(session, team_id=team_id)
    raw_layers = entry.get("layers") or []
    raw_overrides = entry.get("overrides") or []
    if not isinstance(raw_layers, list) or not isinstance(raw_overrides, list):
        raise ValidationFailed("layers and overrides must be lists", field=_path(prefix, "layers"))
    emails = [
        e for layer in raw_layers if isinstance(layer, Mapping) for e in layer.get("participants") or []
    ]
    emails += [o.get("user") for o in raw_overrides if isinstance(o, Mapping)]
    ids = _user_ids_by_email(session, emails)

    # Validate every layer before anything is written.
    layers: list[tuple[dict[str, Any], list[int]]] = []
    names: set[str] = set()
    for j, raw in enumerate(raw_layers):
        where = _path(prefix, f"layers[{j}]")
        if not isinstance(raw, Mapping):
            raise ValidationFailed("must be an object", field=where)
        people = raw.get("participants")
        if not isinstance(people, list):
            raise ValidationFailed("must be a list of emails", field=_path(where, "participants"))
        fields = {
            **raw,
            "participants": [
                _email_to_id(ids, e, field=_path(where, f"participants[{k}]")) for k, e in enumerate(people)
            ],
        }
        values, participants = prepare_layer(
            fields, schedule_timezone=timezone, team_id=team_id, members=members, prefix=where
        )
        if values["name"] in names:
            raise ValidationFailed(f"layer {values['name']!r} appears twice", field=_path(where, "name"))
        names.add(values["name"])
        layers.append((values, participants))

    schedule = _schedule_named(session, team_id, name)
    if schedule is not None:
        lock_schedule(session, schedule)
    before = export_schedule(session, schedule=schedule) if schedule is not None else {}
    changed = False
    if schedule is None:
        schedule = Schedule(team_id=team_id, name=name, timezone=timezone, description=description)
        session.add(schedule)
        session.flush()
        changed = True
    elif (schedule.timezone, schedule.description) != (timezone, description):
        schedule.timezone, schedule.description = timezone, description
        session.add(schedule)
        session.flush()
        changed = True

    existing = {row.name: (row, ps) for row, ps in list_layers(session, schedule_id=require_id(schedule))}
    for gone in set(existing) - names:
        row, _ = existing[gone]
        session.execute(sa.delete(LayerParticipant).where(col(LayerParticipant.layer_id) == row.id))
        session.delete(row)
        session.flush()
        changed = True
    for values, participants in layers:
        row_ps = existing.get(values["name"])
        if row_ps is None:
            _write_layer(session, schedule=schedule, row=None, values=values, participants=participants)
            changed = True
        elif layer_values(row_ps[0]) != values or row_ps[1] != participants:
            _write_layer(
                session,
                schedule=schedule,
                row=row_ps[0],
                values=values,
                participants=participants,
                current=row_ps[1],
            )
            changed = True

    for k, raw in enumerate(raw_overrides):
        where = _path(prefix, f"overrides[{k}]")
        if not isinstance(raw, Mapping):
            raise ValidationFailed("must be an object", field=where)
        user_id = _email_to_id(ids, raw.get("user"), field=_path(where, "user"))
        start = parse_instant(raw.get("start_at"), field=_path(where, "start_at"))
        end = parse_instant(raw.get("end_at"), field=_path(where, "end_at"))
        same = session.exec(
            select(ScheduleOverride).where(
                ScheduleOverride.schedule_id == schedule.id,
                ScheduleOverride.user_id == user_id,
                ScheduleOverride.start_at == start,
                ScheduleOverride.end_at == end,
            )
        ).first()
        if same is not None:
            continue
        user, start, end = check_override(
            session,
            schedule=schedule,
            members=members,
            user_id=user_id,
            start_at=start,
            end_at=end,
            prefix=where,
        )
        group = raw.get("swap_group")
        add_override(
            session,
            schedule=schedule,
            user_id=user,
            start_at=start,
            end_at=end,
            reason=str(raw.get("reason") or ""),
            swap_group=str(group)[:36] if group else None,
            actor=actor,
        )
        changed = True

    status = "unchanged"
    if changed:
        status = "updated" if before else "created"
        audit.record_by(
            session,
            actor,
            action="schedule.import",
            entity_type="schedule",
            entity_id=schedule.id,
            team_id=team_id,
            before=before,
            after=export_schedule(session, schedule=schedule),
        )
        publish_changed(session, schedule)
    return ImportedSchedule(require_id(schedule), team_id, name, status)
