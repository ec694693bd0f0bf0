"""Property tests: the engine against a naive reference on random schedules, plus plan invariants.

Examples concentrate where schedules go wrong: around each zone's DST changes and
month ends, with hand-offs and windows at readings that the change skips or repeats.
"""

from __future__ import annotations

import itertools
import random
import zoneinfo
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel_app.domain.schedule import (
    Layer,
    OnCall,
    Override,
    Restriction,
    Schedule,
    ShiftPlan,
    next_handoff,
    on_call,
    shifts,
)
from tests.domain.schedule_reference import Answer, reference_timeline

# Each zone with its 2026 DST change days and the readings those changes skip or repeat.
ZONE_DAYS = {
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Europe/London": [date(2026, 3, 29), date(2026, 10, 25)],
    "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4)],
    "Asia/Kolkata": [date(2026, 3, 8)],
    "UTC": [date(2026, 10, 25)],
}
RISKY_READINGS = {
    "America/New_York": ["01:00", "01:30", "01:45", "02:00", "02:15", "02:30", "02:45", "03:00"],
    "Europe/London": ["00:45", "01:00", "01:15", "01:30", "01:45", "02:00"],
    "Australia/Lord_Howe": ["01:30", "01:45", "02:00", "02:15", "02:30"],
    "Asia/Kolkata": ["00:00", "05:30", "23:45"],
    "UTC": ["00:00", "23:45"],
}
ZONES = list(ZONE_DAYS)
MONTH_ENDS = [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 10, 31)]
QUARTER = timedelta(minutes=15)
DAY_QUARTERS = 96
UNITS = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
UNIT_QUARTERS = {"hour": 4, "day": DAY_QUARTERS, "week": 7 * DAY_QUARTERS, "month": 31 * DAY_QUARTERS}
MAX_INTERVAL = {"hour": 30, "day": 3, "week": 2, "month": 2}

quarter_times = st.integers(0, DAY_QUARTERS - 1).map(lambda q: time(q // 4, q % 4 * 15))


def wall_times(zone: str) -> st.SearchStrategy[time]:
    """Quarter-hour readings, two thirds of them skipped or repeated by `zone`'s DST changes."""
    risky = st.sampled_from([time.fromisoformat(r) for r in RISKY_READINGS[zone]])
    return st.one_of(risky, risky, quarter_times)


@st.composite
def restrictions(draw: st.DrawFn, zone: str) -> Restriction:
    if draw(st.booleans()):
        start = draw(wall_times(zone))
        end = draw(wall_times(zone).filter(lambda t: t != start))
        return Restriction(kind="daily", start=start, end=end)
    # DST changes all fall on Sundays (weekday 6), so favour windows that start or end then.
    start_weekday, start = draw(st.sampled_from([6, 6, 0, 1, 2, 3, 4, 5])), draw(wall_times(zone))
    end_weekday, end = draw(st.sampled_from([6, 6, 0, 1, 2, 3, 4, 5])), draw(wall_times(zone))
    if (start_weekday, start) == (end_weekday, end):
        end_weekday = (end_weekday + 1) % 7
    return Restriction(
        kind="weekly", start=start, end=end, start_weekday=start_weekday, end_weekday=end_weekday
    )


@st.composite
def layers(draw: st.DrawFn, layer_id: int, schedule_zone: str, around: datetime, focus: date) -> Layer:
    kind = draw(st.sampled_from(["hourly", "daily", "weekly", "monthly", "custom"]))
    unit = draw(st.sampled_from(["hour", "day", "week", "month"])) if kind == "custom" else UNITS[kind]
    own_zone = draw(st.one_of(st.none(), st.none(), st.sampled_from(ZONES)))
    zone = own_zone or schedule_zone
    interval = draw(st.integers(1, MAX_INTERVAL[unit]))
    participants = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    nominal = UNIT_QUARTERS[unit] * interval
    any_length = st.integers(1, nominal).map(lambda q: q * QUARTER)
    # Mostly anchored before the query range, so the layer has shifts to check.
    before, after = st.integers(-30 * DAY_QUARTERS, 0), st.integers(0, DAY_QUARTERS)
    start = around + draw(st.one_of(before, before, after)) * QUARTER
    some_end = st.integers(1, 40 * DAY_QUARTERS).map(lambda q: start + q * QUARTER)
    return Layer(
        id=layer_id,
        priority=draw(st.integers(0, 3)),
        participants=participants,
        kind=kind,  # type: ignore[arg-type]
        interval=interval,
        unit=unit if kind == "custom" else None,  # type: ignore[arg-type]
        shift_length=draw(st.one_of(st.none(), st.none(), any_length, st.just(nominal * QUARTER))),
        handoff_time=draw(st.none() | wall_times(zone)),
        handoff_weekday=draw(st.one_of(st.none(), st.just(focus.weekday()), st.integers(0, 6))),
        handoff_day=draw(st.one_of(st.none(), st.just(focus.day), st.integers(28, 31), st.integers(1, 31))),
        timezone=own_zone,
        start=start,
        end=draw(st.one_of(st.none(), st.none(), some_end)),
        start_index=draw(st.integers(0, len(participants) - 1)),
        restrictions=draw(
            st.one_of(st.just([]), st.just([]), st.lists(restrictions(zone), min_size=1, max_size=2))
        ),
    )


@st.composite
def overrides(draw: st.DrawFn, override_id: int, around: datetime) -> Override:
    start = around + draw(st.integers(-DAY_QUARTERS // 2, 3 * DAY_QUARTERS)) * QUARTER
    return Override(
        id=override_id,
        user_id=draw(st.integers(1, 9)),
        start=start,
        end=start + draw(st.integers(1, DAY_QUARTERS // 2)) * QUARTER,
        created_seq=draw(st.integers(0, 5)),
    )


@st.composite
def scenarios(
    draw: st.DrawFn, max_layers: int = 3, max_overrides: int = 3
) -> tuple[Schedule, datetime, datetime]:
    """A random schedule and a query range on the 15-minute grid around a DST change or month end."""
    zone = draw(st.sampled_from(ZONES))
    day = draw(
        st.one_of(
            st.sampled_from(ZONE_DAYS[zone]), st.sampled_from(ZONE_DAYS[zone]), st.sampled_from(MONTH_ENDS)
        )
    )
    # Start up to half a day before the focus day's local midnight; run up to a day and a half.
    midnight = datetime.combine(day, time(), zoneinfo.ZoneInfo(zone)).astimezone(UTC)
    start = midnight - draw(st.integers(0, DAY_QUARTERS // 2)) * QUARTER
    end = start + draw(st.integers(1, 3 * DAY_QUARTERS // 2)) * QUARTER
    schedule = Schedule(
        timezone=zone,
        layers=[draw(layers(i + 1, zone, start, day)) for i in range(draw(st.integers(1, max_layers)))],
        overrides=[draw(overrides(100 + i, start)) for i in range(draw(st.integers(0, max_overrides)))],
    )
    return schedule, start, end


def _runs(plan: ShiftPlan) -> list[tuple[datetime, datetime, Answer]]:
    found: list[tuple[datetime, datetime, Answer]] = [
        (s.start, s.end, (s.user_id, s.source_kind, s.source_id)) for s in plan.shifts
    ]
    found += [(lo, hi, None) for lo, hi in plan.gaps]
    return sorted(found, key=lambda run: run[0])


def _answer(found: list[OnCall]) -> Answer:
    assert len(found) <= 1
    return (found[0].user_id, found[0].source_kind, found[0].source_id) if found else None


def compare_with_reference(schedule: Schedule, start: datetime, end: datetime) -> None:
    runs = _runs(shifts(schedule, start, end))
    expected = reference_timeline(schedule, start, end)
    i = 0
    for t, answer in expected:
        while runs[i][1] <= t:
            i += 1
        assert runs[i][2] == answer, f"plan at {t}: {runs[i]} != reference {answer}"
    for t, answer in expected:
        assert _answer(on_call(schedule, t)) == answer, f"on_call at {t}"


SETTINGS = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@settings(SETTINGS, max_examples=500)
@given(scenarios(max_layers=1, max_overrides=0))
def test_single_layer_matches_naive_reference(scenario: tuple[Schedule, datetime, datetime]) -> None:
    compare_with_reference(*scenario)


@settings(SETTINGS, max_examples=150)
@given(scenarios())
def test_schedule_matches_naive_reference(scenario: tuple[Schedule, datetime, datetime]) -> None:
    compare_with_reference(*scenario)


def _inside(lo: datetime, hi: datetime, rng: random.Random) -> datetime:
    """A random instant in [lo, hi); plain scaling can round up to `hi` itself."""
    return lo + timedelta(microseconds=rng.randrange((hi - lo) // timedelta(microseconds=1)))


def _off_grid(rng: random.Random, moment: datetime) -> datetime:
    return moment + timedelta(seconds=rng.randrange(-3600, 3600), microseconds=rng.randrange(1_000_000))


def _odd_time(rng: random.Random, reading: time) -> time:
    """`reading` moved by up to 7 minutes and some seconds, within the same day."""
    moved = datetime.combine(date(2026, 1, 1), reading) + timedelta(seconds=rng.randrange(-420, 420))
    return (moved if moved.date() == date(2026, 1, 1) else datetime.combine(moved.date(), time())).time()


def _jitter(schedule: Schedule, rng: random.Random) -> Schedule:
    """The schedule with every instant and wall time moved off the quarter-hour grid."""
    layers = []
    for layer in schedule.layers:
        windows = []
        for window in layer.restrictions:
            opens, closes = _odd_time(rng, window.start), _odd_time(rng, window.end)
            if (window.start_weekday, opens) != (window.end_weekday, closes):
                window = replace(window, start=opens, end=closes)
            windows.append(window)
        start = _off_grid(rng, layer.start)
        layers.append(
            replace(
                layer,
                start=start,
                end=None
                if layer.end is None
                else max(start + timedelta(seconds=1), _off_grid(rng, layer.end)),
                handoff_time=None if layer.handoff_time is None else _odd_time(rng, layer.handoff_time),
                shift_length=None
                if layer.shift_length is None
                else max(timedelta(seconds=1), layer.shift_length - timedelta(seconds=rng.randrange(60))),
                restrictions=windows,
            )
        )
    overrides = []
    for override in schedule.overrides:
        start = _off_grid(rng, override.start)
        overrides.append(replace(override, start=start, end=start + (override.end - override.start)))
    return replace(schedule, layers=layers, overrides=overrides)


@settings(SETTINGS, max_examples=150)
@given(scenarios(), st.randoms(use_true_random=False))
def test_plan_tiles_range_and_agrees_with_on_call(
    scenario: tuple[Schedule, datetime, datetime], rng: random.Random
) -> None:
    schedule, start, end = scenario
    schedule = _jitter(schedule, rng)
    start, end = _off_grid(rng, start), _off_grid(rng, end) + timedelta(hours=2)
    runs = _runs(shifts(schedule, start, end))
    assert runs[0][0] == start and runs[-1][1] == end
    for (_, prev_end, prev_answer), (lo, _, answer) in itertools.pairwise(runs):
        assert prev_end == lo, "shifts and gaps must neither overlap nor leave holes"
        assert prev_answer != answer, "neighbouring runs with one answer must be merged"
    for lo, hi, answer in runs:
        assert lo < hi
        for t in {lo, lo + (hi - lo) / 2, hi - timedelta(microseconds=1)}:
            assert _answer(on_call(schedule, t)) == answer, f"on_call at {t}"


@settings(SETTINGS, max_examples=100)
@given(scenarios(), st.randoms(use_true_random=False))
def test_next_handoff_is_the_end_of_the_current_run(
    scenario: tuple[Schedule, datetime, datetime], rng: random.Random
) -> None:
    schedule, start, end = scenario
    schedule = _jitter(schedule, rng)
    runs = _runs(shifts(schedule, start, end))
    for lo, hi, answer in rng.sample(runs, min(4, len(runs))):
        t = _inside(lo, hi, rng)
        found = next_handoff(schedule, t)
        if hi < end:
            assert found == hi
            assert _answer(on_call(schedule, hi)) != answer
        else:
            assert found is None or found >= end


@settings(SETTINGS, max_examples=150)
@given(scenarios(max_overrides=6), st.randoms(use_true_random=False))
def test_latest_created_override_always_wins(
    scenario: tuple[Schedule, datetime, datetime], rng: random.Random
) -> None:
    schedule, _, _ = scenario
    for override in schedule.overrides:
        t = _inside(override.start, override.end, rng)
        covering = [o for o in schedule.overrides if o.start <= t < o.end]
        best = max(covering, key=lambda o: (o.created_seq, o.id))
        assert on_call(schedule, t) == [OnCall(best.user_id, "override", best.id)]
