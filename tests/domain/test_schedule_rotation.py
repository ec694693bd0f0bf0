"""Table-driven rotation tests: every kind, hand-offs on the local wall clock across DST changes."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time, timedelta

import pendulum
import pytest

from sentinel_app.domain.schedule import Layer, Schedule, layer_shifts, on_call, shifts

NY, LONDON, LORD_HOWE, KOLKATA = "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"


def local(zone: str, text: str) -> datetime:
    """The instant the clock in `zone` shows `text` (an existing reading; first one if repeated)."""
    return datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone), fold=0).astimezone(UTC)


def show(zone: str, instant: datetime) -> str:
    return instant.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M%z")


def layer(**fields: object) -> Layer:
    base: dict[str, object] = {"id": 1, "priority": 0, "participants": [1, 2, 3]}
    return Layer(**{**base, **fields})  # type: ignore[arg-type]


def handoffs(zone: str, the_layer: Layer, start: str, end: str) -> list[tuple[str, int, float]]:
    """(local start, user, hours) of the layer's shifts in [start, end) read in `zone`."""
    found = layer_shifts(the_layer, local(zone, start), local(zone, end), zone)
    return [(show(zone, s.start), s.user_id, (s.end - s.start) / timedelta(hours=1)) for s in found]


DAILY_9 = {"kind": "daily", "handoff_time": time(9)}


@pytest.mark.parametrize(
    ("zone", "anchor", "window", "expected"),
    [
        pytest.param(
            NY,
            "2026-03-01 09:00",
            ("2026-03-07 09:00", "2026-03-09 09:00"),
            [("2026-03-07 09:00-0500", 1, 23.0), ("2026-03-08 09:00-0400", 2, 24.0)],
            id="new-york-spring-forward-23h",
        ),
        pytest.param(
            NY,
            "2026-10-25 09:00",
            ("2026-10-31 09:00", "2026-11-02 09:00"),
            [("2026-10-31 09:00-0400", 1, 25.0), ("2026-11-01 09:00-0500", 2, 24.0)],
            id="new-york-fall-back-25h",
        ),
        pytest.param(
            LONDON,
            "2026-03-22 09:00",
            ("2026-03-28 09:00", "2026-03-30 09:00"),
            [("2026-03-28 09:00+0000", 1, 23.0), ("2026-03-29 09:00+0100", 2, 24.0)],
            id="london-spring-forward-23h",
        ),
        pytest.param(
            LONDON,
            "2026-10-18 09:00",
            ("2026-10-24 09:00", "2026-10-26 09:00"),
            [("2026-10-24 09:00+0100", 1, 25.0), ("2026-10-25 09:00+0000", 2, 24.0)],
            id="london-fall-back-25h",
        ),
        pytest.param(
            LORD_HOWE,
            "2026-03-29 09:00",
            ("2026-04-04 09:00", "2026-04-06 09:00"),
            [("2026-04-04 09:00+1100", 1, 24.5), ("2026-04-05 09:00+1030", 2, 24.0)],
            id="lord-howe-half-hour-back-24h30",
        ),
        pytest.param(
            LORD_HOWE,
            "2026-09-27 09:00",
            ("2026-10-03 09:00", "2026-10-05 09:00"),
            [("2026-10-03 09:00+1030", 1, 23.5), ("2026-10-04 09:00+1100", 2, 24.0)],
            id="lord-howe-half-hour-forward-23h30",
        ),
        pytest.param(
            KOLKATA,
            "2026-03-01 09:00",
            ("2026-03-07 09:00", "2026-03-09 09:00"),
            [("2026-03-07 09:00+0530", 1, 24.0), ("2026-03-08 09:00+0530", 2, 24.0)],
            id="kolkata-no-dst",
        ),
    ],
)
def test_daily_handoff_keeps_local_time(
    zone: str, anchor: str, window: tuple[str, str], expected: list[tuple[str, int, float]]
) -> None:
    # Anchor 6 days before the window: shift 6 -> participants[6 % 3] = 1.
    assert handoffs(zone, layer(**DAILY_9, start=local(zone, anchor)), *window) == expected


@pytest.mark.parametrize(
    ("zone", "reading", "day", "expected_start"),
    [
        # Skipped readings hand off when the gap ends, not "gap length later" as pendulum would.
        pytest.param(NY, time(2, 30), "2026-03-08", "2026-03-08 03:00-0400", id="new-york-gap"),
        pytest.param(NY, time(2, 0), "2026-03-08", "2026-03-08 03:00-0400", id="new-york-gap-start"),
        pytest.param(LONDON, time(1, 30), "2026-03-29", "2026-03-29 02:00+0100", id="london-gap"),
        pytest.param(LORD_HOWE, time(2, 15), "2026-10-04", "2026-10-04 02:30+1100", id="lord-howe-gap"),
        # Repeated readings hand off at their first occurrence (pendulum defaults to the second).
        pytest.param(NY, time(1, 30), "2026-11-01", "2026-11-01 01:30-0400", id="new-york-fold"),
        pytest.param(LONDON, time(1, 0), "2026-10-25", "2026-10-25 01:00+0100", id="london-fold"),
        pytest.param(LORD_HOWE, time(1, 45), "2026-04-05", "2026-04-05 01:45+1100", id="lord-howe-fold"),
        pytest.param(KOLKATA, time(2, 30), "2026-03-08", "2026-03-08 02:30+0530", id="kolkata-control"),
    ],
)
def test_handoff_on_a_skipped_or_repeated_reading(
    zone: str, reading: time, day: str, expected_start: str
) -> None:
    the_layer = layer(kind="daily", handoff_time=reading, start=local(zone, "2026-01-01 12:00"))
    found = handoffs(zone, the_layer, f"{day} 00:00", f"{day} 12:00")
    assert [start for start, _, _ in found][1:] == [expected_start]


def test_pendulum_pitfalls_the_engine_avoids() -> None:
    # The reasons for the engine's own wall->instant mapping, pinned so a pendulum change is noticed.
    assert pendulum.datetime(2026, 3, 8, 2, 30, tz=NY).isoformat() == "2026-03-08T03:30:00-04:00"
    assert pendulum.datetime(2026, 11, 1, 1, 30, tz=NY).isoformat() == "2026-11-01T01:30:00-05:00"


@pytest.mark.parametrize(
    ("zone", "window", "expected"),
    [
        pytest.param(
            NY,
            ("2026-03-07 20:00", "2026-03-08 20:00"),
            [("2026-03-07 20:00-0500", 2, 11.0), ("2026-03-08 08:00-0400", 1, 12.0)],
            id="new-york-spring-11h",
        ),
        pytest.param(
            NY,
            ("2026-10-31 20:00", "2026-11-01 20:00"),
            [("2026-10-31 20:00-0400", 2, 13.0), ("2026-11-01 08:00-0500", 1, 12.0)],
            id="new-york-fall-13h",
        ),
        pytest.param(
            LONDON,
            ("2026-03-28 20:00", "2026-03-29 20:00"),
            [("2026-03-28 20:00+0000", 2, 11.0), ("2026-03-29 08:00+0100", 1, 12.0)],
            id="london-spring-11h",
        ),
        pytest.param(
            LORD_HOWE,
            ("2026-04-04 20:00", "2026-04-05 20:00"),
            [("2026-04-04 20:00+1100", 2, 12.5), ("2026-04-05 08:00+1030", 1, 12.0)],
            id="lord-howe-12h30",
        ),
    ],
)
def test_twelve_hour_rotation_stays_at_08_and_20_local(
    zone: str, window: tuple[str, str], expected: list[tuple[str, int, float]]
) -> None:
    # Anchored 2026-01-01 08:00 with two people: the 20:00 shifts belong to participant 2.
    the_layer = layer(kind="hourly", interval=12, participants=[1, 2], start=local(zone, "2026-01-01 08:00"))
    assert handoffs(zone, the_layer, *window) == expected


def test_hourly_rotation_across_spring_forward_skips_the_missing_hour() -> None:
    # Slots 02:00 and 03:00 both happen at 03:00 EDT: the 02:00 holder's shift is empty.
    the_layer = layer(kind="hourly", start=local(NY, "2026-03-08 00:00"))
    assert handoffs(NY, the_layer, "2026-03-08 00:00", "2026-03-08 05:00") == [
        ("2026-03-08 00:00-0500", 1, 1.0),
        ("2026-03-08 01:00-0500", 2, 1.0),
        ("2026-03-08 03:00-0400", 1, 1.0),
        ("2026-03-08 04:00-0400", 2, 1.0),
    ]


def test_hourly_rotation_across_fall_back_has_a_two_hour_shift() -> None:
    the_layer = layer(kind="hourly", start=local(NY, "2026-11-01 00:00"))
    assert handoffs(NY, the_layer, "2026-11-01 00:00", "2026-11-01 04:00") == [
        ("2026-11-01 00:00-0400", 1, 1.0),
        ("2026-11-01 01:00-0400", 2, 2.0),
        ("2026-11-01 02:00-0500", 3, 1.0),
        ("2026-11-01 03:00-0500", 1, 1.0),
    ]


@pytest.mark.parametrize(
    ("zone", "window", "expected"),
    [
        pytest.param(
            NY,
            ("2026-03-02 09:00", "2026-03-16 09:00"),
            [("2026-03-02 09:00-0500", 3, 167.0), ("2026-03-09 09:00-0400", 1, 168.0)],
            id="new-york-167h",
        ),
        pytest.param(
            NY,
            ("2026-10-26 09:00", "2026-11-09 09:00"),
            [("2026-10-26 09:00-0400", 1, 169.0), ("2026-11-02 09:00-0500", 2, 168.0)],
            id="new-york-169h",
        ),
        pytest.param(
            LORD_HOWE,
            ("2026-03-30 09:00", "2026-04-13 09:00"),
            [("2026-03-30 09:00+1100", 1, 168.5), ("2026-04-06 09:00+1030", 2, 168.0)],
            id="lord-howe-168h30",
        ),
    ],
)
def test_weekly_monday_handoff(
    zone: str, window: tuple[str, str], expected: list[tuple[str, int, float]]
) -> None:
    the_layer = layer(
        kind="weekly", handoff_weekday=0, handoff_time=time(9), start=local(zone, "2026-01-05 09:00")
    )
    assert handoffs(zone, the_layer, *window) == expected


def test_monthly_on_the_31st_falls_back_to_the_last_day() -> None:
    the_layer = layer(
        kind="monthly", handoff_day=31, handoff_time=time(9), start=local(NY, "2026-01-31 09:00")
    )
    starts = [start for start, _, _ in handoffs(NY, the_layer, "2026-01-31 09:00", "2026-07-01 00:00")]
    assert starts == [
        "2026-01-31 09:00-0500",
        "2026-02-28 09:00-0500",
        "2026-03-31 09:00-0400",
        "2026-04-30 09:00-0400",
        "2026-05-31 09:00-0400",
        "2026-06-30 09:00-0400",
    ]


def test_monthly_on_the_29th_in_a_leap_year_and_not() -> None:
    the_layer = layer(
        kind="monthly", handoff_day=29, handoff_time=time(0), start=local(LONDON, "2027-12-29 00:00")
    )
    starts = [start for start, _, _ in handoffs(LONDON, the_layer, "2028-01-01 00:00", "2028-04-01 00:00")]
    assert starts[1:] == ["2028-01-29 00:00+0000", "2028-02-29 00:00+0000", "2028-03-29 00:00+0100"]


def test_monthly_across_spring_forward_is_one_hour_short() -> None:
    the_layer = layer(
        kind="monthly", handoff_day=1, handoff_time=time(9), start=local(NY, "2026-03-01 09:00")
    )
    assert handoffs(NY, the_layer, "2026-03-01 09:00", "2026-04-01 09:00") == [
        ("2026-03-01 09:00-0500", 1, 31 * 24 - 1.0)
    ]


@pytest.mark.parametrize(
    ("fields", "window", "expected_starts"),
    [
        pytest.param(
            {"unit": "hour", "interval": 36},
            ("2026-03-07 00:00", "2026-03-11 00:00"),
            ["2026-03-07 00:00-0500", "2026-03-08 00:00-0500", "2026-03-09 12:00-0400"],
            id="every-36-hours",
        ),
        pytest.param(
            {"unit": "day", "interval": 3, "handoff_time": time(9)},
            ("2026-03-07 00:00", "2026-03-14 00:00"),
            [
                "2026-03-07 00:00-0500",
                "2026-03-07 09:00-0500",
                "2026-03-10 09:00-0400",
                "2026-03-13 09:00-0400",
            ],
            id="every-3-days",
        ),
        pytest.param(
            {"unit": "week", "interval": 2, "handoff_weekday": 4, "handoff_time": time(17)},
            ("2026-03-01 00:00", "2026-04-01 00:00"),
            ["2026-03-01 00:00-0500", "2026-03-13 17:00-0400", "2026-03-27 17:00-0400"],
            id="every-2-weeks-friday",
        ),
        pytest.param(
            {"unit": "month", "interval": 2, "handoff_day": 31, "handoff_time": time(9)},
            ("2026-01-01 00:00", "2026-09-01 00:00"),
            [
                "2026-01-01 00:00-0500",
                "2026-01-31 09:00-0500",
                "2026-03-31 09:00-0400",
                "2026-05-31 09:00-0400",
                "2026-07-31 09:00-0400",
            ],
            id="every-2-months-on-31st",
        ),
    ],
)
def test_custom_rotations(
    fields: dict[str, object], window: tuple[str, str], expected_starts: list[str]
) -> None:
    # Anchors: 2026-01-01 00:00 for hours; the grid's own slot in progress otherwise.
    anchors = {
        "hour": "2026-01-01 00:00",
        "day": "2025-12-31 09:00",
        "week": "2026-01-02 17:00",
        "month": "2025-11-30 09:00",
    }
    the_layer = layer(kind="custom", start=local(NY, anchors[str(fields["unit"])]), **fields)
    assert [start for start, _, _ in handoffs(NY, the_layer, *window)] == expected_starts


def test_every_36_hours_is_counted_on_the_wall_clock() -> None:
    # 2026-01-01 00:00 + 44 * 36 wall hours = 2026-03-08 00:00 (shift 44 -> participant 3); 36 wall
    # hours later is 2026-03-09 12:00 local, only 35 real hours because of the spring-forward.
    the_layer = layer(kind="custom", unit="hour", interval=36, start=local(NY, "2026-01-01 00:00"))
    found = handoffs(NY, the_layer, "2026-03-08 00:00", "2026-03-10 00:00")
    assert found == [("2026-03-08 00:00-0500", 3, 35.0), ("2026-03-09 12:00-0400", 1, 12.0)]


def test_start_index_and_repeated_participants() -> None:
    the_layer = layer(
        **DAILY_9, participants=[7, 8, 7, 9], start_index=2, start=local(KOLKATA, "2026-05-01 09:00")
    )
    users = [user for _, user, _ in handoffs(KOLKATA, the_layer, "2026-05-01 09:00", "2026-05-07 09:00")]
    assert users == [7, 9, 7, 8, 7, 9]


def test_partial_first_shift_belongs_to_the_start_index_participant() -> None:
    # Created mid-day: participant start_index is on from `start` until the first 09:00 hand-off.
    the_layer = layer(**DAILY_9, start=local(NY, "2026-05-01 15:20"))
    assert handoffs(NY, the_layer, "2026-05-01 00:00", "2026-05-03 00:00") == [
        ("2026-05-01 15:20-0400", 1, 17 + 40 / 60),
        ("2026-05-02 09:00-0400", 2, 15.0),
    ]


def test_interval_phase_counts_from_the_slot_in_progress_at_start() -> None:
    # Every 2 days at 09:00, started 10:00: the slot in progress began at 09:00 that day.
    the_layer = layer(kind="daily", interval=2, handoff_time=time(9), start=local(NY, "2026-05-01 10:00"))
    starts = [start for start, _, _ in handoffs(NY, the_layer, "2026-05-01 00:00", "2026-05-06 00:00")]
    assert starts == ["2026-05-01 10:00-0400", "2026-05-03 09:00-0400", "2026-05-05 09:00-0400"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("2026-05-01 08:59", [], id="before-start-nobody"),
        pytest.param("2026-05-01 09:00", [1], id="at-start"),
        pytest.param("2026-05-03 08:59", [2], id="inside"),
        pytest.param("2026-05-03 09:00", [], id="at-end-nobody"),
        pytest.param("2026-06-01 12:00", [], id="after-end-nobody"),
    ],
)
def test_layer_is_active_in_start_end(query: str, expected: list[int]) -> None:
    the_layer = layer(**DAILY_9, start=local(NY, "2026-05-01 09:00"), end=local(NY, "2026-05-03 09:00"))
    answer = on_call(Schedule(timezone=NY, layers=[the_layer]), local(NY, query))
    assert [a.user_id for a in answer] == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # 8 wall-clock hours after each 00:30 hand-off; on the change day 01:00-02:00 is skipped or repeated.
        pytest.param("2026-05-01", [("2026-05-01 00:30-0400", 8.0)], id="ordinary-day"),
        pytest.param("2026-03-08", [("2026-03-08 00:30-0500", 7.0)], id="spring-forward-7h"),
        pytest.param("2026-11-01", [("2026-11-01 00:30-0400", 9.0)], id="fall-back-9h"),
    ],
)
def test_shift_length_leaves_a_gap_after_each_duty(day: str, expected: list[tuple[str, float]]) -> None:
    the_layer = layer(
        kind="daily",
        handoff_time=time(0, 30),
        shift_length=timedelta(hours=8),
        start=local(NY, "2026-01-01 00:30"),
    )
    found = handoffs(NY, the_layer, f"{day} 00:00", f"{day} 23:00")
    assert [(start, hours) for start, _, hours in found] == expected


def test_shift_length_equal_to_the_interval_never_leaves_a_dst_gap() -> None:
    the_layer = layer(**DAILY_9, shift_length=timedelta(days=1), start=local(NY, "2026-03-01 09:00"))
    plan = shifts(
        Schedule(timezone=NY, layers=[the_layer]), local(NY, "2026-03-07 00:00"), local(NY, "2026-03-10")
    )
    assert plan.gaps == []


def test_shift_number_far_from_the_anchor_is_computed_not_walked() -> None:
    # An hourly layer anchored five years back: a year of shifts must not walk 40,000 earlier ones.
    the_layer = layer(kind="hourly", participants=list(range(1, 8)), start=local(NY, "2021-01-01 00:00"))
    found = layer_shifts(the_layer, local(NY, "2026-01-01 00:00"), local(NY, "2027-01-01 00:00"), NY)
    # 2021-01-01 -> 2026-01-01 is 1826 days = 43,824 wall hours: shift 43,824 % 7 = 4 -> participant 5.
    assert found[0].user_id == 5
    assert len(found) == 365 * 24 - 1  # one wall hour skipped in March
