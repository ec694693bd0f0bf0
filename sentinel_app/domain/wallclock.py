"""Conversions between instants and local wall-clock readings, with on-call DST rules.

A wall-clock event ("09:00 in New York") happens at the first instant the local
clock shows that reading or a later one. So a reading skipped by a spring-forward
gap happens when the gap ends, and a reading repeated by a fall-back fold happens
at its first occurrence.
"""

from __future__ import annotations

import math
import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import pendulum


@lru_cache(maxsize=256)
def load_zone(name: str) -> zoneinfo.ZoneInfo:
    """Return the IANA zone called `name`; raise ValueError if there is none."""
    try:
        zone = pendulum.timezone(name)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ValueError(f"unknown IANA timezone {name!r}") from exc
    # pendulum also accepts fixed offsets, which have no DST rules to honour.
    if not isinstance(zone, zoneinfo.ZoneInfo):
        raise ValueError(f"{name!r} is not an IANA timezone name")
    return zone


def to_utc(moment: datetime) -> datetime:
    """Return the instant `moment` as a plain UTC datetime; reject naive datetimes."""
    if type(moment) is datetime and moment.tzinfo is UTC:
        return moment
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"{moment!r} is naive; an aware datetime is required")
    # Rebuilt field by field so pendulum subclasses come out as plain datetimes.
    plain = datetime(
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second, moment.microsecond
    )
    return (plain - offset).replace(tzinfo=UTC)


def wall_at(instant: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """Return the naive local wall-clock reading in `zone` at the aware `instant`."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def to_instant(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """Return the first UTC instant at which the clock in `zone` reaches the naive `wall`."""
    before = wall.replace(tzinfo=zone, fold=0).utcoffset()
    after = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None and after is not None  # a ZoneInfo always has an offset
    naive = wall.replace(fold=0)
    if before >= after:
        # Valid or repeated reading: fold=0 is the earlier occurrence (PEP 495).
        return (naive - before).replace(tzinfo=UTC)
    return _gap_end(naive - after, naive - before, zone, after)


def _gap_end(lo: datetime, hi: datetime, zone: zoneinfo.ZoneInfo, new_offset: timedelta) -> datetime:
    """Return the transition instant in (lo, hi] where the clock jumps over a gap.

    pendulum and zoneinfo shift a skipped reading forward by the gap length
    (02:30 -> 03:30); a hand-off must instead happen when the gap ends (03:00).
    No library exposes the transition, so bisect for it; tzdata transitions
    fall on whole seconds.
    """
    epoch = datetime(1970, 1, 1)
    low = math.floor((lo - epoch).total_seconds())
    high = math.ceil((hi - epoch).total_seconds())
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == new_offset:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, UTC)
