"""Exhaustive matrix: every rotation kind x every DST change x every skipped/repeated reading, vs the reference.

Deterministic counterpart of the property tests: each case puts a hand-off (or a
restriction edge) exactly on a reading the change skips or repeats, and compares
the whole timeline around the change, grid point by grid point, with the naive
reference in tests/domain/schedule_reference.py.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest

from sentinel_app.domain.schedule import Layer, Restriction, Schedule
from tests.domain.test_schedule_properties import RISKY_READINGS, compare_with_reference

CHANGES = [
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Europe/London", date(2026, 3, 29)),
    ("Europe/London", date(2026, 10, 25)),
    ("Australia/Lord_Howe", date(2026, 4, 5)),
    ("Australia/Lord_Howe", date(2026, 10, 4)),
    ("Asia/Kolkata", date(2026, 3, 8)),
    ("UTC", date(2026, 3, 29)),
]

LayerFactory = Callable[[time, date, datetime], Layer]


def _anchor(day: date, zone: str, reading: time, days_before: int) -> datetime:
    """An anchor instant `days_before` days before `day`, showing `reading` on the local clock."""
    local = datetime.combine(day - timedelta(days=days_before), reading, zoneinfo.ZoneInfo(zone))
    return local.astimezone(UTC)


def _layer(**fields: object) -> Layer:
    base: dict[str, object] = {"id": 1, "priority": 0, "participants": [1, 2, 3]}
    return Layer(**{**base, **fields})  # type: ignore[arg-type]


CONFIGS: dict[str, Callable[[str, date, time], Layer]] = {
    "hourly-1": lambda z, d, r: _layer(kind="hourly", start=_anchor(d, z, r, 3)),
    "hourly-5": lambda z, d, r: _layer(kind="hourly", interval=5, start=_anchor(d, z, r, 3)),
    "hourly-12": lambda z, d, r: _layer(kind="hourly", interval=12, start=_anchor(d, z, r, 3)),
    "custom-hour-2-duty": lambda z, d, r: _layer(
        kind="custom", unit="hour", interval=2, shift_length=timedelta(minutes=75), start=_anchor(d, z, r, 3)
    ),
    "daily": lambda z, d, r: _layer(kind="daily", handoff_time=r, start=_anchor(d, z, time(12), 9)),
    "daily-2": lambda z, d, r: _layer(
        kind="daily", interval=2, handoff_time=r, start=_anchor(d, z, time(12), 9)
    ),
    "daily-duty-1h": lambda z, d, r: _layer(
        kind="daily", handoff_time=r, shift_length=timedelta(hours=1), start=_anchor(d, z, time(12), 9)
    ),
    "weekly-on-change-day": lambda z, d, r: _layer(
        kind="weekly", handoff_weekday=d.weekday(), handoff_time=r, start=_anchor(d, z, time(12), 30)
    ),
    "monthly-on-change-day": lambda z, d, r: _layer(
        kind="monthly", handoff_day=d.day, handoff_time=r, start=_anchor(d, z, time(12), 95)
    ),
    "custom-day-3": lambda z, d, r: _layer(
        kind="custom", unit="day", interval=3, handoff_time=r, start=_anchor(d, z, time(12), 10)
    ),
    "daily-window-from-reading": lambda z, d, r: _layer(
        kind="hourly",
        interval=3,
        start=_anchor(d, z, time(0), 5),
        restrictions=[Restriction(kind="daily", start=r, end=time(4))],
    ),
    "daily-window-until-reading": lambda z, d, r: _layer(
        kind="hourly",
        interval=3,
        start=_anchor(d, z, time(0), 5),
        restrictions=[Restriction(kind="daily", start=time(22), end=r)],
    ),
    "weekly-window-from-change-day": lambda z, d, r: _layer(
        kind="daily",
        handoff_time=time(0),
        start=_anchor(d, z, time(0), 5),
        restrictions=[
            Restriction(kind="weekly", start=r, end=time(9), start_weekday=d.weekday(), end_weekday=1)
        ],
    ),
}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize(("zone", "day"), CHANGES, ids=[f"{z}-{d}" for z, d in CHANGES])
def test_dst_change_matches_reference(zone: str, day: date, config: str) -> None:
    start = _anchor(day, zone, time(12), 1)
    end = _anchor(day, zone, time(12), -1)
    for reading in [time.fromisoformat(r) for r in RISKY_READINGS[zone]]:
        layer = CONFIGS[config](zone, day, reading)
        compare_with_reference(Schedule(timezone=zone, layers=[layer]), start, end)
