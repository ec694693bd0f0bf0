"""A deliberately naive reference for the schedule engine, used only by the tests.

It shares no logic with the engine (only the input dataclasses). It walks time in
fixed steps and decides from first principles, using one observation: a wall-clock
event ("09:00 local") has happened by instant t exactly when the local clock has
shown that reading, or a later one, at some moment up to t. So it keeps, per zone,
the largest reading seen so far (`high`) and never converts a wall time to an
instant: DST gaps and folds need no special handling. Hand-off slots are
enumerated one local day (or hour) at a time from before the anchor, and counted
as the clock passes them.

Every instant and wall time fed to it must lie on the step grid (the engine's
answer is then constant between grid points, so comparing at grid points
compares whole timelines).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sentinel_app.domain.schedule_model import Layer, Override, Restriction, Schedule

STEP = timedelta(minutes=15)
ONE_DAY = timedelta(days=1)
UNITS = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}

Answer = tuple[int, str, int] | None  # (user_id, source_kind, source_id) or a gap


def _wall(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None, fold=0)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += ONE_DAY


def _is_last_day_of_month(day: date) -> bool:
    return (day + ONE_DAY).month != day.month


def _slot_walls(layer: Layer, zone: str, until: date) -> list[datetime]:
    """Every hand-off slot reading from well before the anchor to `until`, one by one."""
    anchor = _wall(layer.start, zone)
    unit = layer.unit if layer.kind == "custom" else UNITS[layer.kind]
    first = anchor.date() - timedelta(days=40)
    if unit == "hour":
        walls, reading = [], anchor - timedelta(days=40)
        while reading.date() <= until:
            walls.append(reading)
            reading += timedelta(hours=1)
        return walls
    at = layer.handoff_time if layer.handoff_time is not None else anchor.time()
    weekday = layer.handoff_weekday if layer.handoff_weekday is not None else anchor.weekday()
    dom = layer.handoff_day if layer.handoff_day is not None else anchor.day

    def is_handoff_day(day: date) -> bool:
        if unit == "day":
            return True
        if unit == "week":
            return day.weekday() == weekday
        # Monthly: the named day, or the month's last day when the month is too short.
        return day.day == dom or (day.day < dom and _is_last_day_of_month(day))

    picked = [day for day in _days(first, until) if is_handoff_day(day)]
    return [datetime.combine(day, at) for day in picked]


def _window_walls(restriction: Restriction, day: date) -> tuple[datetime, datetime] | None:
    """The occurrence of `restriction` that starts on local `day`, if one does."""
    begin = datetime.combine(day, restriction.start)
    if restriction.kind == "daily":
        finish = datetime.combine(day, restriction.end)
        return begin, finish if finish > begin else finish + ONE_DAY
    if day.weekday() != restriction.start_weekday:
        return None
    for later in _days(day, day + timedelta(days=7)):
        finish = datetime.combine(later, restriction.end)
        if later.weekday() == restriction.end_weekday and finish > begin:
            return begin, finish
    raise AssertionError("unreachable: a weekday recurs within a week")


def _inside_restrictions(layer: Layer, high: datetime) -> bool:
    for restriction in layer.restrictions:
        for day in _days(high.date() - timedelta(days=8), high.date() + ONE_DAY):
            window = _window_walls(restriction, day)
            if window is not None and window[0] <= high < window[1]:
                return True
    return False


@dataclass
class _LayerWalk:
    layer: Layer
    zone: str
    walls: list[datetime]
    start: datetime = field(init=False)
    end: datetime | None = field(init=False)
    passed: int = 0  # how many slots the clock has reached
    first: int | None = None  # index of the slot in progress at the layer's start

    def __post_init__(self) -> None:
        self.start = self.layer.start.astimezone(UTC)
        self.end = None if self.layer.end is None else self.layer.end.astimezone(UTC)

    def advance(self, t: datetime, high: datetime) -> None:
        while self.passed < len(self.walls) and self.walls[self.passed] <= high:
            self.passed += 1
        if t == self.start:
            self.first = self.passed - 1

    def user(self, t: datetime, high: datetime) -> int | None:
        layer = self.layer
        if t < self.start or (self.end is not None and t >= self.end):
            return None
        assert self.first is not None, "the walk must pass the layer's start on a grid point"
        k = (self.passed - 1 - self.first) // layer.interval
        duty_from = self.walls[self.first + k * layer.interval]
        if layer.shift_length is not None and high >= duty_from + layer.shift_length:
            return None
        if layer.restrictions and not _inside_restrictions(layer, high):
            return None
        return layer.participants[(layer.start_index + k) % len(layer.participants)]


def reference_timeline(
    schedule: Schedule, start: datetime, end: datetime, step: timedelta = STEP
) -> list[tuple[datetime, Answer]]:
    """Return (t, answer) for every grid instant t in [start, end)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    origin = min([start, *(layer.start.astimezone(UTC) for layer in schedule.layers)]) - 2 * ONE_DAY
    dated = [start, end]
    dated += [la.start for la in schedule.layers] + [la.end for la in schedule.layers if la.end is not None]
    dated += [o.start for o in schedule.overrides] + [o.end for o in schedule.overrides]
    for instant in dated:
        assert (instant.astimezone(UTC) - origin) % step == timedelta(0), f"{instant} is off the step grid"
    walks = []
    for layer in sorted(schedule.layers, key=lambda la: (-la.priority, la.id)):
        zone = layer.timezone or schedule.timezone
        walks.append(_LayerWalk(layer, zone, _slot_walls(layer, zone, _wall(end, zone).date() + 2 * ONE_DAY)))
    overrides = [(o.start.astimezone(UTC), o.end.astimezone(UTC), o) for o in schedule.overrides]
    high: dict[str, datetime] = {}
    out: list[tuple[datetime, Answer]] = []
    t = origin
    while t < end:
        for zone in {walk.zone for walk in walks}:
            reading = _wall(t, zone)
            high[zone] = max(high.get(zone, reading), reading)
        for walk in walks:
            walk.advance(t, high[walk.zone])
        if t >= start:
            out.append((t, _answer(t, walks, overrides, high)))
        t += step
    return out


def _answer(
    t: datetime,
    walks: list[_LayerWalk],
    overrides: list[tuple[datetime, datetime, Override]],
    high: dict[str, datetime],
) -> Answer:
    covering = [o for lo, hi, o in overrides if lo <= t < hi]
    if covering:
        best = max(covering, key=lambda o: (o.created_seq, o.id))
        return (best.user_id, "override", best.id)
    for walk in walks:  # best priority first
        user = walk.user(t, high[walk.zone])
        if user is not None:
            return (user, "layer", walk.layer.id)
    return None
