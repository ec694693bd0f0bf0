"""Restriction windows: when a layer is allowed to put anyone on call.

A layer with windows is active only inside their union. Windows are read on the
layer zone's wall clock with the same DST rule as hand-offs: an occurrence runs
from the instant the clock first reaches its start reading to the instant it
first reaches its end reading (22:00-06:00 lasts 7 h on a spring-forward night
and 9 h on a fall-back night).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta

from sentinel_app.domain.schedule_model import Restriction
from sentinel_app.domain.wallclock import to_instant, wall_at

DAY = timedelta(days=1)
WEEK = timedelta(days=7)

Interval = tuple[datetime, datetime]


def _offset(weekday: int | None, at: time) -> timedelta:
    """Return the wall-clock distance from Monday 00:00 to `weekday` `at`."""
    return timedelta(
        days=weekday or 0, hours=at.hour, minutes=at.minute, seconds=at.second, microseconds=at.microsecond
    )


def wall_span(restriction: Restriction) -> tuple[timedelta, timedelta]:
    """Return (start, end) of one occurrence as offsets from its day's (daily) or week's (weekly) 00:00."""
    if restriction.kind == "daily":
        start, end, period = _offset(0, restriction.start), _offset(0, restriction.end), DAY
    else:
        start = _offset(restriction.start_weekday, restriction.start)
        end = _offset(restriction.end_weekday, restriction.end)
        period = WEEK
    # A window ending at or before its start wraps past midnight / the week boundary.
    return (start, end if end > start else end + period)


def _wall_occurrences(
    restriction: Restriction, first: date, last: date
) -> Iterator[tuple[datetime, datetime]]:
    """Yield wall-clock occurrences whose day (or week's Monday) lies in [first, last]."""
    start, end = wall_span(restriction)
    if restriction.kind == "daily":
        day, step = first, DAY
    else:
        day, step = first - timedelta(days=first.weekday()), WEEK
    while day <= last:
        origin = datetime(day.year, day.month, day.day)
        yield origin + start, origin + end
        day += step


def windows(
    restrictions: Sequence[Restriction], zone: zoneinfo.ZoneInfo, start: datetime, end: datetime
) -> list[Interval]:
    """Return the union of the windows as sorted, disjoint UTC intervals clipped to [start, end)."""
    # One day (daily) or week (weekly) of slack: an occurrence that began earlier can still be
    # running, and a fold near midnight can make the clock show tomorrow's date early.
    first, last = wall_at(start, zone).date(), wall_at(end, zone).date() + DAY
    found: list[Interval] = []
    for restriction in restrictions:
        back = DAY if restriction.kind == "daily" else WEEK
        for wall_start, wall_end in _wall_occurrences(restriction, first - back, last):
            lo, hi = max(to_instant(wall_start, zone), start), min(to_instant(wall_end, zone), end)
            if lo < hi:
                found.append((lo, hi))
    found.sort()
    merged: list[Interval] = []
    for lo, hi in found:
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def covers(restrictions: Sequence[Restriction], zone: zoneinfo.ZoneInfo, instant: datetime) -> bool:
    """Return True if `instant` lies inside at least one window."""
    today = wall_at(instant, zone).date()
    for restriction in restrictions:
        back = DAY if restriction.kind == "daily" else WEEK
        for wall_start, wall_end in _wall_occurrences(restriction, today - back, today + DAY):
            if to_instant(wall_start, zone) <= instant < to_instant(wall_end, zone):
                return True
    return False


def covers_every_week(restrictions: Sequence[Restriction]) -> bool:
    """Return True if the windows together cover the whole week, i.e. restrict nothing."""
    spans: list[tuple[timedelta, timedelta]] = []
    for restriction in restrictions:
        start, end = wall_span(restriction)
        repeats = 7 if restriction.kind == "daily" else 1
        period = DAY if restriction.kind == "daily" else WEEK
        for n in range(repeats):
            lo, hi = start + n * period, end + n * period
            # Fold the part past the week's end back to its beginning.
            spans.append((lo, min(hi, WEEK)))
            if hi > WEEK:
                spans.append((timedelta(0), hi - WEEK))
    reached = timedelta(0)
    for lo, hi in sorted(spans):
        if lo > reached:
            return False
        reached = max(reached, hi)
    return reached >= WEEK
