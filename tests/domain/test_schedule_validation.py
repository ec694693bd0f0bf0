"""Validation names the offending field for every kind of invalid schedule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from sentinel_app.domain.schedule import (
    Layer,
    Override,
    Restriction,
    Schedule,
    ScheduleError,
    on_call,
    schedule_errors,
    validate_schedule,
)

START = datetime(2026, 5, 4, 13, tzinfo=UTC)
GOOD_LAYER = Layer(id=1, priority=0, participants=[1, 2], kind="daily", start=START)
GOOD_OVERRIDE = Override(id=5, user_id=3, start=START, end=START + timedelta(hours=1), created_seq=1)
GOOD = Schedule(timezone="Europe/London", layers=[GOOD_LAYER], overrides=[GOOD_OVERRIDE])


def with_layer(**changes: object) -> Schedule:
    return replace(GOOD, layers=[replace(GOOD_LAYER, **changes)])  # type: ignore[arg-type]


def with_restriction(**fields: object) -> Schedule:
    return with_layer(restrictions=[Restriction(**fields)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("schedule", "field", "words"),
    [
        pytest.param(
            replace(GOOD, timezone="Mars/Olympus_Mons"), "timezone", "unknown IANA", id="unknown-zone"
        ),
        pytest.param(replace(GOOD, timezone="+05:00"), "timezone", "", id="offset-is-not-a-zone"),
        pytest.param(
            with_layer(timezone="Europe/Londn"), "layers[0].timezone", "unknown IANA", id="layer-zone"
        ),
        pytest.param(
            with_layer(participants=[]), "layers[0].participants", "at least one", id="no-participants"
        ),
        pytest.param(with_layer(start_index=2), "layers[0].start_index", "0..1", id="start-index"),
        pytest.param(with_layer(end=START), "layers[0].end", "not after start", id="layer-end-equals-start"),
        pytest.param(
            with_layer(end=START - timedelta(days=1)), "layers[0].end", "not after", id="layer-end-before"
        ),
        pytest.param(with_layer(start=datetime(2026, 5, 4)), "layers[0].start", "aware", id="naive-start"),
        pytest.param(with_layer(interval=0), "layers[0].interval", "less than 1", id="interval-zero"),
        pytest.param(with_layer(kind="yearly"), "layers[0].kind", "not one of", id="unknown-kind"),
        pytest.param(with_layer(kind="custom"), "layers[0].unit", "need a unit", id="custom-without-unit"),
        pytest.param(with_layer(unit="week"), "layers[0].unit", "contradicts", id="unit-contradicts-kind"),
        pytest.param(
            with_layer(shift_length=timedelta(0)), "layers[0].shift_length", "positive", id="zero-shift"
        ),
        pytest.param(
            with_layer(shift_length=timedelta(days=1, seconds=1)),
            "layers[0].shift_length",
            "longer than the interval",
            id="shift-longer-than-interval",
        ),
        pytest.param(
            with_layer(kind="hourly", interval=12, shift_length=timedelta(hours=13)),
            "layers[0].shift_length",
            "longer",
            id="shift-longer-than-12h",
        ),
        pytest.param(with_layer(handoff_weekday=7), "layers[0].handoff_weekday", "0..6", id="weekday"),
        pytest.param(with_layer(handoff_day=0), "layers[0].handoff_day", "1..31", id="day-zero"),
        pytest.param(with_layer(handoff_day=32), "layers[0].handoff_day", "1..31", id="day-32"),
        pytest.param(
            with_layer(handoff_time=time(9, tzinfo=UTC)),
            "layers[0].handoff_time",
            "naive",
            id="aware-time",
        ),
        pytest.param(
            with_restriction(kind="daily", start=time(9), end=time(9)),
            "layers[0].restrictions[0].end",
            "zero length",
            id="zero-length-daily-window",
        ),
        pytest.param(
            with_restriction(kind="weekly", start=time(9), end=time(9), start_weekday=2, end_weekday=2),
            "layers[0].restrictions[0].end",
            "zero length",
            id="zero-length-weekly-window",
        ),
        pytest.param(
            with_restriction(kind="weekly", start=time(9), end=time(17), start_weekday=0),
            "layers[0].restrictions[0].end_weekday",
            "need a weekday",
            id="weekly-without-weekday",
        ),
        pytest.param(
            with_restriction(kind="daily", start=time(9), end=time(17), start_weekday=0),
            "layers[0].restrictions[0].start_weekday",
            "no weekday",
            id="daily-with-weekday",
        ),
        pytest.param(
            with_restriction(kind="monthly", start=time(9), end=time(17)),
            "layers[0].restrictions[0].kind",
            "daily, weekly",
            id="unknown-window-kind",
        ),
        pytest.param(
            replace(GOOD, overrides=[replace(GOOD_OVERRIDE, end=START)]),
            "overrides[0].end",
            "not after start",
            id="override-empty",
        ),
        pytest.param(
            replace(GOOD, overrides=[GOOD_OVERRIDE, GOOD_OVERRIDE]),
            "overrides[1].id",
            "duplicate",
            id="override-ids",
        ),
        pytest.param(
            replace(GOOD, layers=[GOOD_LAYER, GOOD_LAYER]), "layers[1].id", "duplicate", id="layer-ids"
        ),
    ],
)
def test_invalid_schedules_name_the_field(schedule: Schedule, field: str, words: str) -> None:
    with pytest.raises(ScheduleError) as raised:
        validate_schedule(schedule)
    assert raised.value.field == field
    assert words in raised.value.message
    assert str(raised.value).startswith(f"{field}: ")
    with pytest.raises(ScheduleError):
        on_call(schedule, START)  # the engine refuses to guess


def test_valid_schedule_and_all_errors_at_once() -> None:
    validate_schedule(GOOD)
    assert schedule_errors(GOOD) == []
    broken = replace(GOOD, timezone="Nowhere/City", layers=[replace(GOOD_LAYER, participants=[], interval=0)])
    assert [e.field for e in schedule_errors(broken)] == [
        "timezone",
        "layers[0].participants",
        "layers[0].interval",
    ]


@pytest.mark.parametrize("kind", ["hourly", "daily", "weekly", "monthly"])
def test_shift_length_equal_to_the_interval_is_valid(kind: str) -> None:
    full = {"hourly": timedelta(hours=2), "daily": timedelta(days=2), "weekly": timedelta(weeks=2)}
    validate_schedule(with_layer(kind=kind, interval=2, shift_length=full.get(kind, timedelta(days=62))))
