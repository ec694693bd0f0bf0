"""iCalendar (RFC 5545): on-call feeds behind rotatable secret URLs, and overrides imported from .ics files.

Feeds list each shift as a VEVENT in UTC with a UID that stays the same from one fetch to
the next (schedule, source, person and the shift's real start), so calendar clients update
events instead of duplicating them. Only a SHA-256 hash of each feed token is stored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import icalendar
from icalendar.error import BrokenCalendarProperty
from sqlmodel import Session, col, or_, select

from sentinel_app.domain import schedule as engine
from sentinel_app.domain.wallclock import load_zone, to_instant, to_utc
from sentinel_app.models import (
    LayerParticipant,
    RotationLayer,
    Schedule,
    ScheduleOverride,
    TeamMembership,
    User,
)
from sentinel_app.models.base import require_id
from sentinel_app.security import hash_token, new_token
from sentinel_app.services import audit
from sentinel_app.services import schedules as service
from sentinel_app.services.errors import ValidationFailed

FEED_PAST = dt.timedelta(days=30)
FEED_FUTURE = dt.timedelta(days=90)
# Shifts are computed from this much earlier than the feed's first day, so a shift already
# running then keeps its real start (and UID) instead of one clipped to the window.
LOOKBACK = dt.timedelta(days=35)
MAX_IMPORT_EVENTS = 1000
PRODID = "-//Fangorn Sentinel//On-call schedules//EN"
UID_DOMAIN = "fangorn-sentinel"
TOKEN_KIND = "cal"
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

FeedKind = Literal["schedules", "users"]


# --- tokens ----------------------------------------------------------------------------------


def feed_url(*, base_url: str, kind: FeedKind, token: str) -> str:
    """The public URL of a feed."""
    return f"{base_url.rstrip('/')}/api/v1/calendars/{kind}/{token}.ics"


def rotate_schedule_token(
    session: Session, *, schedule: Schedule, actor: service.Actor = service.SYSTEM
) -> str:
    """Issue a new feed token for a schedule; the previous feed URL stops working at once."""
    token = new_token(TOKEN_KIND)
    schedule.ical_token_hash = hash_token(token)
    session.add(schedule)
    session.flush()
    audit.record_by(
        session,
        actor,
        action="schedule.rotate_calendar_token",
        entity_type="schedule",
        entity_id=schedule.id,
        team_id=schedule.team_id,
    )
    service.publish_changed(session, schedule)
    return token


def rotate_user_token(session: Session, *, user: User, actor: service.Actor = service.SYSTEM) -> str:
    """Issue a new personal feed token for `user`; the previous one stops working at once."""
    token = new_token(TOKEN_KIND)
    user.ical_token_hash = hash_token(token)
    session.add(user)
    session.flush()
    audit.record(
        session,
        action="user.rotate_calendar_token",
        entity_type="user",
        entity_id=user.id,
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
    )
    return token


def schedule_for_token(session: Session, *, token: str) -> Schedule | None:
    """The schedule whose current feed token is `token`."""
    if not token.startswith(f"{TOKEN_KIND}_"):
        return None
    return session.exec(select(Schedule).where(Schedule.ical_token_hash == hash_token(token))).first()


def user_for_token(session: Session, *, token: str) -> User | None:
    """The active user whose current feed token is `token`."""
    if not token.startswith(f"{TOKEN_KIND}_"):
        return None
    user = session.exec(select(User).where(User.ical_token_hash == hash_token(token))).first()
    return user if user is not None and user.is_active else None


# --- feeds -----------------------------------------------------------------------------------


def feed_window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The range a feed covers: whole UTC days from 30 days back to 90 days ahead."""
    today = to_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - FEED_PAST, today + FEED_FUTURE + dt.timedelta(days=1)


def shift_uid(schedule_id: int, shift: engine.Shift) -> str:
    """A UID that names the shift by what it is, not by when the feed was fetched."""
    start = shift.start.strftime("%Y%m%dT%H%M%SZ")
    return f"s{schedule_id}-{shift.source_kind}{shift.source_id}-u{shift.user_id}-{start}@{UID_DOMAIN}"


@dataclass(frozen=True)
class FeedShift:
    """A shift to publish, with its schedule."""

    schedule: Schedule
    shift: engine.Shift


def feed_shifts(
    session: Session, *, schedules: Sequence[Schedule], now: dt.datetime, user_id: int | None = None
) -> list[FeedShift]:
    """The shifts a feed publishes: those overlapping the feed window (optionally one person's)."""
    lo, hi = feed_window(now)
    loaded = service.load_schedules(
        session, schedule_ids=[require_id(s) for s in schedules], start=lo - LOOKBACK, end=hi
    )
    found: list[FeedShift] = []
    for schedule in schedules:
        plan = engine.shifts(loaded[require_id(schedule)], lo - LOOKBACK, hi)
        found.extend(
            FeedShift(schedule, s)
            for s in plan.shifts
            if s.end > lo and (user_id is None or s.user_id == user_id)
        )
    found.sort(key=lambda f: (f.shift.start, require_id(f.schedule)))
    return found


def _calendar(name: str, description: str) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-caldesc", description)
    calendar.add("x-published-ttl", "PT1H")
    return calendar


def render_feed(
    session: Session, *, name: str, description: str, shifts: Iterable[FeedShift], now: dt.datetime
) -> bytes:
    """An iCalendar document with one VEVENT per shift."""
    items = list(shifts)
    calendar = _calendar(name, description)
    people = service.users_by_id(session, user_ids=[f.shift.user_id for f in items])
    layer_ids = {f.shift.source_id for f in items if f.shift.source_kind == "layer"}
    layers = (
        {
            require_id(r): r.name
            for r in session.exec(select(RotationLayer).where(col(RotationLayer.id).in_(layer_ids)))
        }
        if layer_ids
        else {}
    )
    stamp = to_utc(now).replace(microsecond=0)
    for item in items:
        shift, schedule = item.shift, item.schedule
        person = people.get(shift.user_id)
        who = person.name if person is not None else f"user {shift.user_id}"
        event = icalendar.Event()
        event.add("uid", shift_uid(require_id(schedule), shift))
        event.add("dtstamp", stamp)
        event.add("dtstart", shift.start)
        event.add("dtend", shift.end)
        event.add("summary", f"On call: {who} ({schedule.name})")
        if shift.source_kind == "layer":
            detail = f"Layer {layers.get(shift.source_id, shift.source_id)} of schedule {schedule.name}"
        else:
            detail = f"Override of schedule {schedule.name}"
        event.add("description", detail)
        event.add("transp", "TRANSPARENT")
        event.add("categories", ["on-call"])
        if person is not None:
            attendee = icalendar.vCalAddress(f"mailto:{person.email}")
            attendee.params["cn"] = person.name
            event.add("attendee", attendee)
        calendar.add_component(event)
    return calendar.to_ical()


def schedule_feed(session: Session, *, schedule: Schedule, now: dt.datetime) -> bytes:
    """The schedule's feed: everyone's shifts."""
    return render_feed(
        session,
        name=f"On call: {schedule.name}",
        description=f"Who is on call in {schedule.name} (Fangorn Sentinel)",
        shifts=feed_shifts(session, schedules=[schedule], now=now),
        now=now,
    )


def schedules_of_user(session: Session, *, user_id: int) -> list[Schedule]:
    """Schedules in which `user_id` may be on call: their teams', and any naming them."""
    teams = select(TeamMembership.team_id).where(TeamMembership.user_id == user_id)
    layers = (
        select(RotationLayer.schedule_id)
        .join(LayerParticipant, col(LayerParticipant.layer_id) == col(RotationLayer.id))
        .where(LayerParticipant.user_id == user_id)
    )
    overrides = select(ScheduleOverride.schedule_id).where(ScheduleOverride.user_id == user_id)
    query = select(Schedule).where(
        or_(
            col(Schedule.team_id).in_(teams),
            col(Schedule.id).in_(layers),
            col(Schedule.id).in_(overrides),
        )
    )
    return list(session.exec(query.order_by(col(Schedule.id))))


def user_feed(session: Session, *, user: User, now: dt.datetime) -> bytes:
    """A person's feed: their own shifts across every schedule."""
    user_id = require_id(user)
    return render_feed(
        session,
        name=f"On call: {user.name}",
        description=f"{user.name}'s on-call shifts (Fangorn Sentinel)",
        shifts=feed_shifts(
            session, schedules=schedules_of_user(session, user_id=user_id), now=now, user_id=user_id
        ),
        now=now,
    )


# --- import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IcsEvent:
    """A VEVENT reduced to what an override needs."""

    index: int
    uid: str
    summary: str
    start: dt.datetime
    end: dt.datetime
    emails: tuple[str, ...]  # ATTENDEE, then ORGANIZER, then SUMMARY addresses


@dataclass
class IcsImportResult:
    """What an import did: overrides created, events already present, events skipped."""

    created: list[ScheduleOverride] = field(default_factory=list)
    unchanged: int = 0
    skipped: int = 0


def _addresses(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value] if value is not None else []
    found = []
    for item in values:
        text = str(item).strip()
        if text.lower().startswith("mailto:"):
            text = text[len("mailto:") :]
        if _EMAIL.fullmatch(text):
            found.append(text.lower())
    return found


def _moment(value: object, zone_name: str, *, field: str) -> dt.datetime:
    """A DTSTART/DTEND value as UTC: floating times and dates are read in the schedule's zone."""
    try:
        return service.parse_instant(_utc(value, zone_name, field=field), field=field)
    except OverflowError:
        raise ValidationFailed("is out of range", field=field) from None


def _utc(value: object, zone_name: str, *, field: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.utcoffset() is None:
            return to_instant(value, load_zone(zone_name))
        return to_utc(value)
    if isinstance(value, dt.date):
        return to_instant(dt.datetime.combine(value, dt.time()), load_zone(zone_name))
    raise ValidationFailed("must be a date or a date-time", field=field)


def _single(event: icalendar.cal.Component, name: str, where: str) -> Any:
    """The value of a date, date-time or duration property that may appear at most once (None: absent)."""
    prop = event.get(name)
    if prop is None:
        return None
    if isinstance(prop, list):
        raise ValidationFailed(f"{name} appears more than once", field=f"{where}.{name.lower()}")
    try:
        return prop.dt
    except (AttributeError, ValueError, BrokenCalendarProperty):
        raise ValidationFailed(f"{name} is not a valid value", field=f"{where}.{name.lower()}") from None


def _end_of(
    event: icalendar.cal.Component, start_value: dt.date | dt.datetime, zone_name: str, where: str
) -> dt.datetime:
    end_value = _single(event, "DTEND", where)
    if end_value is not None:
        return _moment(end_value, zone_name, field=f"{where}.dtend")
    duration = _single(event, "DURATION", where)
    if duration is not None:
        if not isinstance(duration, dt.timedelta):
            raise ValidationFailed("DURATION must be a duration", field=f"{where}.duration")
        if isinstance(start_value, dt.datetime) and start_value.utcoffset() is not None:
            # An exact duration from an exact instant.
            start = _moment(start_value, zone_name, field=f"{where}.dtstart")
            try:
                return service.parse_instant(start + duration, field=f"{where}.duration")
            except OverflowError:
                raise ValidationFailed("is out of range", field=f"{where}.duration") from None
        base = (
            start_value
            if isinstance(start_value, dt.datetime)
            else dt.datetime.combine(start_value, dt.time())
        )
        # A floating start plus a duration is still a wall-clock reading in the schedule's zone.
        try:
            moved = base + duration
        except OverflowError:
            raise ValidationFailed("is out of range", field=f"{where}.duration") from None
        return _moment(moved, zone_name, field=f"{where}.duration")
    if isinstance(start_value, dt.date) and not isinstance(start_value, dt.datetime):
        # RFC 5545 3.6.1: an all-day event without an end lasts that one day.
        try:
            following = start_value + dt.timedelta(days=1)
        except OverflowError:
            raise ValidationFailed("is out of range", field=f"{where}.dtstart") from None
        return _moment(following, zone_name, field=f"{where}.dtstart")
    raise ValidationFailed("needs DTEND or DURATION", field=f"{where}.dtend")


def parse_events(text: str, *, timezone: str) -> tuple[list[IcsEvent], int]:
    """Parse the VEVENTs of an iCalendar text; returns the events and how many were cancelled."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValidationFailed(f"not an iCalendar document: {exc}", field="ics") from None
    raw_events = list(calendar.walk("VEVENT"))
    if not raw_events:
        raise ValidationFailed("the calendar has no VEVENT", field="ics")
    if len(raw_events) > MAX_IMPORT_EVENTS:
        raise ValidationFailed(f"at most {MAX_IMPORT_EVENTS} events per import", field="ics")
    events: list[IcsEvent] = []
    cancelled = 0
    for index, event in enumerate(raw_events):
        where = f"events[{index}]"
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            cancelled += 1
            continue
        if event.get("RRULE") is not None or event.get("RDATE") is not None:
            raise ValidationFailed(
                "recurring events are not supported; export single events", field=f"{where}.rrule"
            )
        start_value = _single(event, "DTSTART", where)
        if start_value is None:
            raise ValidationFailed("needs DTSTART", field=f"{where}.dtstart")
        if not isinstance(start_value, dt.date):
            raise ValidationFailed("must be a date or a date-time", field=f"{where}.dtstart")
        start = _moment(start_value, timezone, field=f"{where}.dtstart")
        end = _end_of(event, start_value, timezone, where)
        summary = str(event.get("SUMMARY", ""))
        emails = [*_addresses(event.get("ATTENDEE")), *_addresses(event.get("ORGANIZER"))]
        emails += [m.lower() for m in _EMAIL.findall(summary)]
        events.append(
            IcsEvent(
                index=index,
                uid=str(event.get("UID", "")),
                summary=summary,
                start=start,
                end=end,
                emails=tuple(dict.fromkeys(emails)),
            )
        )
    return events, cancelled


def import_overrides(
    session: Session,
    *,
    schedule: Schedule,
    text: str,
    reason: str = "",
    actor: service.Actor = service.SYSTEM,
) -> IcsImportResult:
    """Turn each VEVENT into an override for the team member named by its ATTENDEE, ORGANIZER or SUMMARY.

    Validated like any override (errors name ``events[i].start_at`` and so on); an event
    already imported (same person, start and end) is left alone, so importing twice is harmless.
    """
    events, cancelled = parse_events(text, timezone=schedule.timezone)
    service.lock_schedule(session, schedule)
    members = service.team_member_ids(session, team_id=schedule.team_id)
    emails = sorted({e for event in events for e in event.emails})
    people = (
        {u.email: require_id(u) for u in session.exec(select(User).where(col(User.email).in_(emails)))}
        if emails
        else {}
    )
    result = IcsImportResult(skipped=cancelled)
    for event in events:
        where = f"events[{event.index}]"
        user_id = next((people[e] for e in event.emails if e in people and people[e] in members), None)
        if user_id is None:
            named = ", ".join(event.emails) or "no email address"
            raise ValidationFailed(
                f"no member of the schedule's team found in ATTENDEE, ORGANIZER or SUMMARY ({named})",
                field=f"{where}.attendee",
            )
        same = session.exec(
            select(ScheduleOverride).where(
                ScheduleOverride.schedule_id == schedule.id,
                ScheduleOverride.user_id == user_id,
                ScheduleOverride.start_at == event.start,
                ScheduleOverride.end_at == event.end,
            )
        ).first()
        if same is not None:
            result.unchanged += 1
            continue
        user, start, end = service.check_override(
            session,
            schedule=schedule,
            members=members,
            user_id=user_id,
            start_at=event.start,
            end_at=event.end,
            prefix=where,
        )
        note = reason or f"imported from iCalendar: {event.summary}".strip()
        row = service.add_override(
            session,
            schedule=schedule,
            user_id=user,
            start_at=start,
            end_at=end,
            reason=note[:2000],
            swap_group=None,
            actor=actor,
        )
        service.audit_override(session, actor, schedule, row, "override.create")
        result.created.append(row)
    if result.created:
        service.publish_changed(session, schedule)
    return result
