"""Rotation hand-off grids and a layer's own timeline (before priorities and overrides).

Semantics the storage/API layer must know:

* Hand-offs follow the wall clock of the layer's zone. ``hourly`` (and custom
  unit ``hour``): every `interval` wall-clock hours counted from the local
  reading at `start` (``handoff_time`` does not apply). ``daily``: every
  `interval` days at ``handoff_time``; ``weekly``: on ``handoff_weekday``;
  ``monthly``: on ``handoff_day``, or the month's last day if it is shorter.
  Unset hand-off fields default to the local time, weekday and day at `start`.
* A reading skipped by a DST gap happens when the gap ends; a repeated one at
  its first occurrence. So shifts on change days are shorter or longer, and an
  hourly slot lying wholly inside a gap lasts nothing (its holder's turn is
  skipped; the order carries on).
* Shift 0 is the shift in progress at `start`: it runs from `start` itself to
  the next hand-off. Multi-unit intervals count from the slot in progress at
  `start` (every 2 days at 09:00 started Friday 10:00: hand-offs Sunday 09:00,
  Tuesday 09:00, ...). Shift k belongs to participants[(start_index + k) % n].
* ``shift_length``: on duty for that much wall-clock time after each nominal
  hand-off (also for the clipped shift 0), never past the next hand-off.

A grid numbers wall-clock "slots" (hours, days, weeks or months at the hand-off
time) with integers, both ways and by arithmetic, so finding the shift at any
instant costs the same however far it lies from the anchor. Slot m happens at
``to_instant(grid.wall(m))``.
"""

from __future__ import annotations

import calendar
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol

from sentinel_app.domain import restriction
from sentinel_app.domain.schedule_model import Layer, Restriction, RotationUnit
from sentinel_app.domain.wallclock import load_zone, to_instant, to_utc, wall_at

HOUR = timedelta(hours=1)
EPOCH = date(1970, 1, 1)
EPOCH_MONDAY = date(1970, 1, 5)
UNIT_OF_KIND: dict[str, RotationUnit] = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
}


class Grid(Protocol):
    """Numbered wall-clock slots, strictly increasing in wall time."""

    def wall(self, m: int) -> datetime:
        """Return the naive wall time of slot `m`."""
        ...

    def index_at_or_before(self, wall: datetime) -> int:
        """Return the largest m with ``self.wall(m) <= wall``."""
        ...


@dataclass(frozen=True, slots=True)
class HourGrid:
    """Every wall-clock hour counted from the anchor's reading (so 08:00/20:00 stay put)."""

    origin: datetime

    def wall(self, m: int) -> datetime:
        """Return the naive wall time of slot `m`."""
        return self.origin + m * HOUR

    def index_at_or_before(self, wall: datetime) -> int:
        """Return the largest m with ``self.wall(m) <= wall``."""
        return (wall - self.origin) // HOUR


@dataclass(frozen=True, slots=True)
class DayGrid:
    """Every day at `at`."""

    at: time

    def wall(self, m: int) -> datetime:
        """Return the naive wall time of slot `m`."""
        return datetime.combine(EPOCH + timedelta(days=m), self.at)

    def index_at_or_before(self, wall: datetime) -> int:
        """Return the largest m with ``self.wall(m) <= wall``."""
        m = (wall.date() - EPOCH).days
        return m - 1 if wall.time() < self.at else m


@dataclass(frozen=True, slots=True)
class WeekGrid:
    """Every week on `weekday` (0 = Monday) at `at`."""

    weekday: int
    at: time

    def wall(self, m: int) -> datetime:
        """Return the naive wall time of slot `m`."""
        return datetime.combine(EPOCH_MONDAY + timedelta(days=7 * m + self.weekday), self.at)

    def index_at_or_before(self, wall: datetime) -> int:
        """Return the largest m with ``self.wall(m) <= wall``."""
        m, weekday = divmod((wall.date() - EPOCH_MONDAY).days, 7)
        return m - 1 if (weekday, wall.time()) < (self.weekday, self.at) else m


@dataclass(frozen=True, slots=True)
class MonthGrid:
    """Every month on `day` at `at`; a day past the month's end means its last day."""

    day: int
    at: time

    def _day_in(self, year: int, month: int) -> int:
        return min(self.day, calendar.monthrange(year, month)[1])

    def wall(self, m: int) -> datetime:
        """Return the naive wall time of slot `m` (months since January of year 0)."""
        year, month0 = divmod(m, 12)
        return datetime.combine(date(year, month0 + 1, self._day_in(year, month0 + 1)), self.at)

    def index_at_or_before(self, wall: datetime) -> int:
        """Return the largest m with ``self.wall(m) <= wall``."""
        m = wall.year * 12 + wall.month - 1
        return m - 1 if (wall.day, wall.time()) < (self._day_in(wall.year, wall.month), self.at) else m


def unit_of(layer: Layer) -> RotationUnit:
    """Return the grid unit of `layer` (custom layers name it, the others imply it)."""
    if layer.kind == "custom":
        assert layer.unit is not None, "validated: custom layers name their unit"
        return layer.unit
    return UNIT_OF_KIND[layer.kind]


LONGEST_UNIT: dict[str, timedelta] = {
    "hour": HOUR,
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=31),
}


def nominal_span(unit: RotationUnit, interval: int) -> timedelta:
    """Return the longest wall-clock length one shift of `interval` units can have."""
    return LONGEST_UNIT[unit] * interval


def _grid(layer: Layer, anchor_wall: datetime) -> Grid:
    unit = unit_of(layer)
    at = layer.handoff_time if layer.handoff_time is not None else anchor_wall.time()
    if unit == "hour":
        # Hourly hand-offs follow the anchor's own reading; handoff_time does not apply.
        return HourGrid(anchor_wall)
    if unit == "day":
        return DayGrid(at)
    if unit == "week":
        weekday = layer.handoff_weekday if layer.handoff_weekday is not None else anchor_wall.weekday()
        return WeekGrid(weekday, at)
    day = layer.handoff_day if layer.handoff_day is not None else anchor_wall.day
    return MonthGrid(day, at)


def slot_at(grid: Grid, zone: zoneinfo.ZoneInfo, instant: datetime) -> int:
    """Return the largest slot m whose hand-off instant is at or before `instant`."""
    m = grid.index_at_or_before(wall_at(instant, zone))
    # Wall order and instant order only disagree inside a fold, where the clock
    # reads earlier than slots that have already happened.
    while to_instant(grid.wall(m + 1), zone) <= instant:
        m += 1
    return m


@dataclass(frozen=True, slots=True)
class Rotation:
    """A validated layer compiled for fast queries; all instants are UTC."""

    layer_id: int
    priority: int
    zone: zoneinfo.ZoneInfo
    grid: Grid
    interval: int
    first_slot: int  # the slot in progress at `start`; shift 0 runs from `start`
    start: datetime
    end: datetime | None
    participants: tuple[int, ...]
    start_index: int
    shift_length: timedelta | None
    restrictions: tuple[Restriction, ...]
    span: timedelta  # the longest wall-clock length of one shift
    solo: int | None  # the only participant, if all entries name the same user

    def shift_number(self, instant: datetime) -> int:
        """Return k for the shift in progress at `instant` (which must be >= start)."""
        return (slot_at(self.grid, self.zone, instant) - self.first_slot) // self.interval

    def handoff(self, k: int) -> datetime:
        """Return the instant shift `k` (k >= 0) begins."""
        if k == 0:
            return self.start
        return to_instant(self.grid.wall(self.first_slot + k * self.interval), self.zone)

    def duty_end(self, k: int) -> datetime | None:
        """Return when shift `k`'s on-duty part ends, or None if it lasts the whole shift."""
        if self.shift_length is None:
            return None
        # Wall-clock length, like hand-offs, so a full-length duty never leaves a DST hole.
        return to_instant(self.grid.wall(self.first_slot + k * self.interval) + self.shift_length, self.zone)

    def always_staffed(self) -> bool:
        """Return True if someone is on duty at every instant between start and end."""
        # A duty as long as the longest possible shift never leaves anyone off duty.
        full_duty = self.shift_length is None or self.shift_length >= self.span
        return full_duty and (not self.restrictions or restriction.covers_every_week(self.restrictions))

    def user(self, k: int) -> int:
        """Return who holds shift `k`."""
        return self.participants[(self.start_index + k) % len(self.participants)]

    def user_at(self, instant: datetime) -> int | None:
        """Return who this layer alone puts on call at `instant`, or None."""
        if instant < self.start or (self.end is not None and instant >= self.end):
            return None
        k = self.shift_number(instant)
        duty_end = self.duty_end(k)
        if duty_end is not None and instant >= duty_end:
            return None
        if self.restrictions and not restriction.covers(self.restrictions, self.zone, instant):
            return None
        return self.user(k)

    def segments(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime, int]]:
        """Return this layer's (start, end, user) stretches inside [start, end), sorted and disjoint."""
        lo = max(start, self.start)
        hi = end if self.end is None else min(end, self.end)
        if lo >= hi:
            return []
        if self.shift_length is None and self.solo is not None:
            # Hand-offs from one person to the same person change nothing: skip them.
            found = [(lo, hi, self.solo)]
        else:
            found = self._rotating_segments(lo, hi)
        if self.restrictions:
            found = clip(found, restriction.windows(self.restrictions, self.zone, lo, hi))
        return found

    def _rotating_segments(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime, int]]:
        found: list[tuple[datetime, datetime, int]] = []
        k = self.shift_number(lo)
        begin = self.handoff(k)
        while begin < hi:
            following = self.handoff(k + 1)
            stop = min(following, hi)
            duty_end = self.duty_end(k)
            if duty_end is not None:
                stop = min(stop, duty_end)
            if max(begin, lo) < stop:
                found.append((max(begin, lo), stop, self.user(k)))
            k, begin = k + 1, following
        return found


def clip(
    segments: list[tuple[datetime, datetime, int]], allowed: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime, int]]:
    """Clip sorted disjoint (start, end, user) `segments` to sorted disjoint `allowed` intervals."""
    out: list[tuple[datetime, datetime, int]] = []
    i = j = 0
    while i < len(segments) and j < len(allowed):
        seg_lo, seg_hi, user = segments[i]
        lo, hi = max(seg_lo, allowed[j][0]), min(seg_hi, allowed[j][1])
        if lo < hi:
            out.append((lo, hi, user))
        if seg_hi <= allowed[j][1]:
            i += 1
        else:
            j += 1
    return out


def compile_layer(layer: Layer, schedule_zone: str) -> Rotation:
    """Compile a validated `layer`; its zone defaults to `schedule_zone`."""
    zone = load_zone(layer.timezone or schedule_zone)
    start = to_utc(layer.start)
    grid = _grid(layer, wall_at(start, zone))
    return Rotation(
        layer_id=layer.id,
        priority=layer.priority,
        zone=zone,
        grid=grid,
        interval=layer.interval,
        first_slot=slot_at(grid, zone, start),
        start=start,
        end=None if layer.end is None else to_utc(layer.end),
        participants=tuple(layer.participants),
        start_index=layer.start_index,
        shift_length=layer.shift_length,
        restrictions=tuple(layer.restrictions),
        span=nominal_span(unit_of(layer), layer.interval),
        solo=layer.participants[0] if len(set(layer.participants)) == 1 else None,
    )
