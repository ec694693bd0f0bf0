"""Restriction windows: midnight and week-boundary spans, DST nights, unions, layer zones."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from sentinel_app.domain.schedule import Layer, Restriction, Schedule, on_call, shifts
from tests.domain.test_schedule_rotation import KOLKATA, NY, local, show

NIGHTS = Restriction(kind="daily", start=time(22), end=time(6))
WORK_WEEK = Restriction(kind="weekly", start_weekday=0, start=time(9), end_weekday=4, end=time(17))
WEEKEND = Restriction(kind="weekly", start_weekday=4, start=time(18), end_weekday=0, end=time(8))


def restricted(*windows: Restriction, zone: str | None = None, **fields: object) -> Schedule:
    """One always-the-same-person layer (New York schedule) limited to `windows`."""
    layer_fields: dict[str, object] = {"kind": "weekly", **fields}
    layer = Layer(
        id=1,
        priority=0,
        participants=[1],
        start=local(NY, "2026-01-01 00:00"),
        timezone=zone,
        restrictions=windows,
        **layer_fields,  # type: ignore[arg-type]
    )
    return Schedule(timezone=NY, layers=[layer])


def windows_in(schedule: Schedule, zone: str, start: str, end: str) -> list[tuple[str, float]]:
    plan = shifts(schedule, local(zone, start), local(zone, end))
    return [(show(zone, s.start), (s.end - s.start) / timedelta(hours=1)) for s in plan.shifts]


@pytest.mark.parametrize(
    ("query", "active"),
    [
        ("2026-05-05 21:59", False),
        ("2026-05-05 22:00", True),
        ("2026-05-05 23:59", True),
        ("2026-05-06 00:00", True),
        ("2026-05-06 05:59", True),
        ("2026-05-06 06:00", False),
        ("2026-05-06 12:00", False),
    ],
)
def test_daily_window_spanning_midnight(query: str, active: bool) -> None:
    assert bool(on_call(restricted(NIGHTS), local(NY, query))) is active


@pytest.mark.parametrize(
    ("night", "expected"),
    [
        pytest.param("2026-03-07", [("2026-03-07 22:00-0500", 7.0)], id="spring-forward-night-7h"),
        pytest.param("2026-10-31", [("2026-10-31 22:00-0400", 9.0)], id="fall-back-night-9h"),
        pytest.param("2026-05-05", [("2026-05-05 22:00-0400", 8.0)], id="ordinary-night-8h"),
    ],
)
def test_night_window_on_dst_nights(night: str, expected: list[tuple[str, float]]) -> None:
    day_after = (datetime.fromisoformat(night) + timedelta(days=1)).date()
    assert windows_in(restricted(NIGHTS), NY, f"{night} 12:00", f"{day_after} 12:00") == expected


@pytest.mark.parametrize(
    ("query", "active"),
    [
        pytest.param("2026-05-04 08:59", False, id="monday-before"),
        pytest.param("2026-05-04 09:00", True, id="monday-start"),
        pytest.param("2026-05-06 03:00", True, id="wednesday-night"),
        pytest.param("2026-05-08 16:59", True, id="friday-before-end"),
        pytest.param("2026-05-08 17:00", False, id="friday-end"),
        pytest.param("2026-05-08 17:59", False, id="between-windows"),
        pytest.param("2026-05-08 18:00", True, id="weekend-starts"),
        pytest.param("2026-05-09 12:00", True, id="saturday"),
        pytest.param("2026-05-10 23:59", True, id="sunday-midnight-crossing"),
        pytest.param("2026-05-11 07:59", True, id="monday-early"),
        pytest.param("2026-05-11 08:00", False, id="weekend-ends"),
    ],
)
def test_weekly_windows_including_one_across_the_week_boundary(query: str, active: bool) -> None:
    assert bool(on_call(restricted(WORK_WEEK, WEEKEND), local(NY, query))) is active


def test_week_boundary_window_on_the_spring_forward_weekend() -> None:
    # Fri 18:00 EST -> Mon 08:00 EDT: 62 wall hours, 61 real ones.
    assert windows_in(restricted(WEEKEND), NY, "2026-03-06 12:00", "2026-03-09 12:00") == [
        ("2026-03-06 18:00-0500", 61.0)
    ]


def test_window_edge_on_a_skipped_reading_moves_to_the_end_of_the_gap() -> None:
    window = Restriction(kind="daily", start=time(2, 30), end=time(5))
    assert windows_in(restricted(window), NY, "2026-03-08 00:00", "2026-03-08 12:00") == [
        ("2026-03-08 03:00-0400", 2.0)
    ]


def test_window_edge_on_a_repeated_reading_uses_the_first_one() -> None:
    window = Restriction(kind="daily", start=time(0), end=time(1, 30))
    assert windows_in(restricted(window), NY, "2026-11-01 00:00", "2026-11-01 12:00") == [
        ("2026-11-01 00:00-0400", 1.5)
    ]


def test_windows_union_and_touching_windows_merge() -> None:
    morning = Restriction(kind="daily", start=time(8), end=time(12))
    noon = Restriction(kind="daily", start=time(12), end=time(13))
    overlapping = Restriction(kind="daily", start=time(11), end=time(14))
    evening = Restriction(kind="daily", start=time(18), end=time(19))
    found = windows_in(
        restricted(morning, noon, overlapping, evening), NY, "2026-05-05 00:00", "2026-05-06 00:00"
    )
    assert found == [("2026-05-05 08:00-0400", 6.0), ("2026-05-05 18:00-0400", 1.0)]


def test_windows_are_read_in_the_layers_own_zone() -> None:
    # Kolkata business hours, schedule in New York: 09:00-17:00 IST = 23:30-07:30 EDT.
    window = Restriction(kind="daily", start=time(9), end=time(17))
    found = windows_in(restricted(window, zone=KOLKATA), NY, "2026-05-05 12:00", "2026-05-06 12:00")
    assert found == [("2026-05-05 23:30-0400", 8.0)]


def test_windows_and_shift_length_combine() -> None:
    # Duty 09:00-17:00 after each daily hand-off, but only inside 12:00-20:00.
    schedule = restricted(
        Restriction(kind="daily", start=time(12), end=time(20)),
        kind="daily",
        handoff_time=time(9),
        shift_length=timedelta(hours=8),
    )
    assert windows_in(schedule, NY, "2026-05-05 00:00", "2026-05-06 00:00") == [
        ("2026-05-05 12:00-0400", 5.0)
    ]
