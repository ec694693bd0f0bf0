"""Overrides, priorities, shift plans and next_handoff on hand-checked schedules."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, time, timedelta

import pendulum
import pytest

from sentinel_app.domain import schedule as schedule_module
from sentinel_app.domain.schedule import (
    Layer,
    OnCall,
    Override,
    Restriction,
    Schedule,
    Shift,
    next_handoff,
    on_call,
    shifts,
)
from tests.domain.test_schedule_rotation import NY, local, show

# One continuous window, Monday 09:00 to Friday 17:00.
WORK_WEEK = Restriction(kind="weekly", start_weekday=0, start=time(9), end_weekday=4, end=time(17))


def daily(layer_id: int, priority: int, participants: list[int], **fields: object) -> Layer:
    base: dict[str, object] = {
        "kind": "daily",
        "handoff_time": time(9),
        "start": local(NY, "2026-05-04 09:00"),
    }
    return Layer(id=layer_id, priority=priority, participants=participants, **{**base, **fields})  # type: ignore[arg-type]


def override(override_id: int, user: int, start: str, end: str, seq: int) -> Override:
    return Override(id=override_id, user_id=user, start=local(NY, start), end=local(NY, end), created_seq=seq)


def plan_rows(schedule: Schedule, start: str, end: str) -> list[tuple[str, str, int | None, str]]:
    """(local start, local end, user or None for a gap, source) rows in time order."""
    plan = shifts(schedule, local(NY, start), local(NY, end))
    rows: list[tuple[str, str, int | None, str]] = [
        (show(NY, s.start), show(NY, s.end), s.user_id, f"{s.source_kind}:{s.source_id}") for s in plan.shifts
    ]
    rows += [(show(NY, lo), show(NY, hi), None, "gap") for lo, hi in plan.gaps]
    return sorted(rows)


PRIMARY = daily(1, 10, [1, 2])


def test_override_replaces_the_layer_and_splits_the_shift() -> None:
    schedule = Schedule(
        timezone=NY, layers=[PRIMARY], overrides=[override(50, 9, "2026-05-04 12:00", "2026-05-04 14:00", 1)]
    )
    assert plan_rows(schedule, "2026-05-04 09:00", "2026-05-05 09:00") == [
        ("2026-05-04 09:00-0400", "2026-05-04 12:00-0400", 1, "layer:1"),
        ("2026-05-04 12:00-0400", "2026-05-04 14:00-0400", 9, "override:50"),
        ("2026-05-04 14:00-0400", "2026-05-05 09:00-0400", 1, "layer:1"),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("2026-05-05 08:59", OnCall(1, "layer", 1), id="just-before-override"),
        pytest.param("2026-05-05 09:00", OnCall(9, "override", 50), id="override-starts-on-handoff"),
        pytest.param("2026-05-06 08:59", OnCall(9, "override", 50), id="override-last-minute"),
        pytest.param("2026-05-06 09:00", OnCall(1, "layer", 1), id="override-ends-on-handoff"),
    ],
)
def test_override_exactly_on_layer_edges(query: str, expected: OnCall) -> None:
    edge = override(50, 9, "2026-05-05 09:00", "2026-05-06 09:00", 1)
    schedule = Schedule(timezone=NY, layers=[PRIMARY], overrides=[edge])
    assert on_call(schedule, local(NY, query)) == [expected]


def test_override_beyond_the_layer_end_and_before_its_start() -> None:
    short = daily(1, 0, [1], end=local(NY, "2026-05-05 09:00"))
    schedule = Schedule(
        timezone=NY,
        layers=[short],
        overrides=[
            override(50, 8, "2026-05-04 06:00", "2026-05-04 10:00", 1),
            override(51, 9, "2026-05-05 08:00", "2026-05-05 12:00", 2),
        ],
    )
    assert plan_rows(schedule, "2026-05-04 00:00", "2026-05-05 18:00") == [
        ("2026-05-04 00:00-0400", "2026-05-04 06:00-0400", None, "gap"),
        ("2026-05-04 06:00-0400", "2026-05-04 10:00-0400", 8, "override:50"),
        ("2026-05-04 10:00-0400", "2026-05-05 08:00-0400", 1, "layer:1"),
        ("2026-05-05 08:00-0400", "2026-05-05 12:00-0400", 9, "override:51"),
        ("2026-05-05 12:00-0400", "2026-05-05 18:00-0400", None, "gap"),
    ]


def test_stacked_overrides_latest_created_wins() -> None:
    schedule = Schedule(
        timezone=NY,
        layers=[PRIMARY],
        overrides=[
            override(60, 7, "2026-05-04 11:00", "2026-05-04 13:00", 3),  # created last: wins where it lies
            override(61, 8, "2026-05-04 10:00", "2026-05-04 14:00", 2),
            override(62, 9, "2026-05-04 09:30", "2026-05-04 16:00", 1),
        ],
    )
    assert plan_rows(schedule, "2026-05-04 09:00", "2026-05-04 17:00") == [
        ("2026-05-04 09:00-0400", "2026-05-04 09:30-0400", 1, "layer:1"),
        ("2026-05-04 09:30-0400", "2026-05-04 10:00-0400", 9, "override:62"),
        ("2026-05-04 10:00-0400", "2026-05-04 11:00-0400", 8, "override:61"),
        ("2026-05-04 11:00-0400", "2026-05-04 13:00-0400", 7, "override:60"),
        ("2026-05-04 13:00-0400", "2026-05-04 14:00-0400", 8, "override:61"),
        ("2026-05-04 14:00-0400", "2026-05-04 16:00-0400", 9, "override:62"),
        ("2026-05-04 16:00-0400", "2026-05-04 17:00-0400", 1, "layer:1"),
    ]


def test_equal_created_seq_falls_back_to_the_larger_id() -> None:
    schedule = Schedule(
        timezone=NY,
        layers=[PRIMARY],
        overrides=[
            override(70, 7, "2026-05-04 10:00", "2026-05-04 11:00", 5),
            override(71, 8, "2026-05-04 10:00", "2026-05-04 11:00", 5),
        ],
    )
    assert on_call(schedule, local(NY, "2026-05-04 10:30")) == [OnCall(8, "override", 71)]


def test_override_for_the_person_already_on_call_is_its_own_shift() -> None:
    schedule = Schedule(
        timezone=NY, layers=[PRIMARY], overrides=[override(50, 1, "2026-05-04 12:00", "2026-05-04 14:00", 1)]
    )
    rows = plan_rows(schedule, "2026-05-04 09:00", "2026-05-04 18:00")
    assert [(user, source) for _, _, user, source in rows] == [
        (1, "layer:1"),
        (1, "override:50"),
        (1, "layer:1"),
    ]
    assert next_handoff(schedule, local(NY, "2026-05-04 10:00")) == local(NY, "2026-05-04 12:00")


def test_priority_layers_fall_through_restrictions_to_lower_layers_and_gaps() -> None:
    # The work-week layer on top; evenings covered by a lower layer; nobody late on Friday night.
    day_team = daily(1, 10, [1, 2], restrictions=[WORK_WEEK])
    evenings = daily(2, 5, [3], restrictions=[Restriction(kind="daily", start=time(17), end=time(23))])
    schedule = Schedule(timezone=NY, layers=[evenings, day_team])
    assert plan_rows(schedule, "2026-05-08 08:00", "2026-05-09 00:00") == [
        ("2026-05-08 08:00-0400", "2026-05-08 09:00-0400", 2, "layer:1"),
        ("2026-05-08 09:00-0400", "2026-05-08 17:00-0400", 1, "layer:1"),
        ("2026-05-08 17:00-0400", "2026-05-08 23:00-0400", 3, "layer:2"),
        ("2026-05-08 23:00-0400", "2026-05-09 00:00-0400", None, "gap"),
    ]
    assert on_call(schedule, local(NY, "2026-05-08 23:30")) == []


def test_higher_priority_value_wins_and_ties_go_to_the_smaller_id() -> None:
    low, high = daily(1, 1, [1]), daily(2, 9, [2])
    assert on_call(Schedule(timezone=NY, layers=[low, high]), local(NY, "2026-05-05 12:00")) == [
        OnCall(2, "layer", 2)
    ]
    tie_a, tie_b = daily(4, 3, [4]), daily(3, 3, [3])
    assert on_call(Schedule(timezone=NY, layers=[tie_a, tie_b]), local(NY, "2026-05-05 12:00")) == [
        OnCall(3, "layer", 3)
    ]


def test_duty_gaps_let_the_lower_layer_show() -> None:
    day_shift = daily(1, 10, [1, 2], shift_length=timedelta(hours=8))
    backstop = daily(2, 0, [9])
    schedule = Schedule(timezone=NY, layers=[day_shift, backstop])
    assert plan_rows(schedule, "2026-05-04 09:00", "2026-05-05 18:00") == [
        ("2026-05-04 09:00-0400", "2026-05-04 17:00-0400", 1, "layer:1"),
        ("2026-05-04 17:00-0400", "2026-05-05 09:00-0400", 9, "layer:2"),
        ("2026-05-05 09:00-0400", "2026-05-05 17:00-0400", 2, "layer:1"),
        ("2026-05-05 17:00-0400", "2026-05-05 18:00-0400", 9, "layer:2"),
    ]


def test_plan_merges_adjacent_shifts_of_one_user_from_one_layer() -> None:
    repeated = daily(1, 0, [5, 5, 6])
    assert plan_rows(Schedule(timezone=NY, layers=[repeated]), "2026-05-04 09:00", "2026-05-08 09:00") == [
        ("2026-05-04 09:00-0400", "2026-05-06 09:00-0400", 5, "layer:1"),
        ("2026-05-06 09:00-0400", "2026-05-07 09:00-0400", 6, "layer:1"),
        ("2026-05-07 09:00-0400", "2026-05-08 09:00-0400", 5, "layer:1"),
    ]


def test_plan_is_clipped_to_the_range_and_answers_in_utc() -> None:
    plan = shifts(
        Schedule(timezone=NY, layers=[PRIMARY]), local(NY, "2026-05-04 12:00"), local(NY, "2026-05-04 13:00")
    )
    assert plan.shifts == [
        Shift(1, datetime(2026, 5, 4, 16, tzinfo=UTC), datetime(2026, 5, 4, 17, tzinfo=UTC), "layer", 1)
    ]
    assert plan.gaps == []
    assert type(plan.shifts[0].start) is datetime


def test_empty_range_and_empty_schedule() -> None:
    at = local(NY, "2026-05-04 12:00")
    assert shifts(Schedule(timezone=NY, layers=[PRIMARY]), at, at).shifts == []
    empty = shifts(Schedule(timezone=NY), at, at + timedelta(hours=1))
    assert empty.shifts == [] and empty.gaps == [(at, at + timedelta(hours=1))]
    assert on_call(Schedule(timezone=NY), at) == []
    with pytest.raises(ValueError, match="before start"):
        shifts(Schedule(timezone=NY), at, at - timedelta(hours=1))


def test_instants_may_be_pendulum_or_any_zone_but_not_naive() -> None:
    schedule = Schedule(timezone=NY, layers=[PRIMARY])
    tokyo = pendulum.datetime(2026, 5, 5, 1, 0, tz="Asia/Tokyo")  # 2026-05-04 12:00 New York
    assert on_call(schedule, tokyo) == on_call(schedule, local(NY, "2026-05-04 12:00"))
    with pytest.raises(ValueError, match="naive"):
        on_call(schedule, datetime(2026, 5, 4, 12))


@pytest.mark.parametrize(
    ("layers", "overrides", "at", "expected"),
    [
        pytest.param([PRIMARY], [], "2026-05-04 12:00", "2026-05-05 09:00", id="next-daily-handoff"),
        pytest.param(
            [daily(1, 0, [1], start=local(NY, "2026-03-01 09:00"))],
            [],
            "2026-03-07 12:00",
            None,
            id="one-person-never",
        ),
        pytest.param(
            [daily(1, 0, [1], end=local(NY, "2026-05-10 09:00"))],
            [],
            "2026-05-05 12:00",
            "2026-05-10 09:00",
            id="until-the-layer-ends",
        ),
        pytest.param(
            [daily(1, 0, [1, 2], end=local(NY, "2026-05-10 09:00"))],
            [],
            "2026-05-11 12:00",
            None,
            id="all-ended",
        ),
        pytest.param([PRIMARY], [], "2026-05-01 12:00", "2026-05-04 09:00", id="gap-until-layer-starts"),
        pytest.param(
            [daily(1, 0, [1])],
            [override(50, 9, "2026-09-01 00:00", "2026-09-02 00:00", 1)],
            "2026-05-05 12:00",
            "2026-09-01 00:00",
            id="far-override",
        ),
        pytest.param(
            [daily(1, 0, [1])],
            [override(50, 1, "2026-05-05 11:00", "2026-05-05 13:00", 1)],
            "2026-05-05 12:00",
            "2026-05-05 13:00",
            id="override-back-to-the-same-person-via-layer",
        ),
        pytest.param(
            [daily(1, 0, [1], restrictions=[WORK_WEEK])],
            [],
            "2026-05-08 16:00",
            "2026-05-08 17:00",
            id="restriction-ends",
        ),
        pytest.param(
            [
                daily(
                    1,
                    0,
                    [1],
                    restrictions=[
                        Restriction(kind="daily", start=time(0), end=time(12)),
                        Restriction(kind="daily", start=time(12), end=time(0)),
                    ],
                )
            ],
            [],
            "2026-05-08 16:00",
            None,
            id="restrictions-covering-everything",
        ),
        pytest.param(
            [daily(1, 0, [7], kind="monthly", handoff_day=1, shift_length=timedelta(days=1))],
            [],
            "2026-05-08 16:00",
            "2026-06-01 09:00",
            id="monthly-duty-comes-back",
        ),
        pytest.param(
            [daily(1, 0, [3, 3, 3], kind="hourly", start=local(NY, "2021-01-01 00:00"))],
            [],
            "2026-05-08 16:00",
            None,
            id="five-years-of-the-same-person",
        ),
    ],
)
def test_next_handoff(layers: list[Layer], overrides: list[Override], at: str, expected: str | None) -> None:
    found = next_handoff(Schedule(timezone=NY, layers=layers, overrides=overrides), local(NY, at))
    assert found == (None if expected is None else local(NY, expected))


def test_next_handoff_across_dst_is_the_local_handoff() -> None:
    schedule = Schedule(timezone=NY, layers=[daily(1, 0, [1, 2], start=local(NY, "2026-03-01 09:00"))])
    assert show(
        NY, next_handoff(schedule, local(NY, "2026-03-07 12:00")) or local(NY, "2000-01-01 00:00")
    ) == ("2026-03-08 09:00-0400")


def test_schedules_are_deeply_immutable_so_compiling_once_per_object_is_safe() -> None:
    participants = [1, 2]
    schedule = Schedule(timezone=NY, layers=[daily(1, 0, participants)])
    participants.append(3)  # the caller's list is copied, not shared
    assert schedule.layers[0].participants == (1, 2)
    assert hash(schedule) == hash(Schedule(timezone=NY, layers=[daily(1, 0, [1, 2])]))
    before = len(schedule_module._COMPILED)
    assert on_call(schedule, local(NY, "2026-05-05 12:00")) == [OnCall(2, "layer", 1)]
    assert len(schedule_module._COMPILED) == before + 1
    del schedule
    gc.collect()
    assert len(schedule_module._COMPILED) == before  # the cached form dies with its schedule
