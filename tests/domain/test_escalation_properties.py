"""Property tests: random policies walked with a clock terminate, never go back in time, never reuse keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel_app.domain.alert_lifecycle import ACKNOWLEDGED, FIRING
from sentinel_app.domain.escalation import (
    PAUSED,
    Action,
    CallWebhook,
    Decision,
    NotifyRoundRobin,
    NotifySchedules,
    NotifyTeams,
    NotifyUsers,
    PolicySnapshot,
    Position,
    Rule,
    StepSnapshot,
    TimeWindow,
    advance,
    expand_rules,
    idempotency_key,
    on_acknowledged,
    on_reescalate,
    on_unacknowledged,
    preview,
    snapshot_from_json,
    snapshot_to_json,
    start,
    tick,
    validate_policy,
)
from sentinel_app.domain.restriction import windows as restriction_windows
from sentinel_app.domain.schedule_model import Restriction
from sentinel_app.domain.wallclock import load_zone

ZONES = ["America/New_York", "Europe/London", "Asia/Kolkata", "UTC"]
# Instants around the 2026 DST changes of New York and London.
STARTS = [
    datetime(2026, 3, 8, 5, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 4, 30, tzinfo=UTC),
    datetime(2026, 6, 5, 21, 0, tzinfo=UTC),
]
EPSILON = timedelta(microseconds=1)
RULES = [Rule("push", 0), Rule("sms", 5), Rule("push", 10)]

ids = st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True).map(tuple)
delays = st.sampled_from([0, 0, 1, 5, 30, 90])
quarter_times = st.integers(0, 95).map(lambda q: time(q // 4, q % 4 * 15))


@st.composite
def windows(draw: st.DrawFn) -> TimeWindow:
    start = draw(quarter_times)
    end = draw(quarter_times.filter(lambda t: t != start))
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    return TimeWindow(draw(st.sampled_from(ZONES)), days, start, end)


@st.composite
def steps(draw: st.DrawFn) -> StepSnapshot:
    kind = draw(
        st.sampled_from(
            [
                "notify_users",
                "notify_schedule",
                "notify_team",
                "round_robin",
                "wait",
                "webhook",
                "time_window",
            ]
            + ["resolve"] * draw(st.sampled_from([0, 1]))
        )
    )
    step = StepSnapshot(kind=kind, delay_minutes=draw(delays), important=draw(st.booleans()))
    if kind in ("notify_users", "round_robin"):
        return replace(step, user_ids=draw(ids))
    if kind == "notify_schedule":
        return replace(step, schedule_ids=draw(ids))
    if kind == "notify_team":
        return replace(step, team_ids=draw(ids))
    if kind == "webhook":
        return replace(step, webhook_url="https://hooks.example.com/x")
    if kind == "time_window":
        return replace(step, window=draw(windows()))
    return step


policies = st.builds(
    PolicySnapshot,
    policy_id=st.just(1),
    repeat_count=st.integers(0, 10),
    reescalate_after_ack_minutes=st.one_of(st.none(), st.integers(1, 120)),
    steps=st.lists(steps(), min_size=1, max_size=5).map(tuple),
)


def walk(snapshot: PolicySnapshot, decision: Decision, limit: int) -> list[tuple[datetime, Decision]]:
    """Run `advance` at each due time, as actor timers would, for at most `limit` calls."""
    trail: list[tuple[datetime, Decision]] = []
    while decision.next_at is not None and len(trail) < limit:
        at = decision.next_at
        decision = advance(snapshot, decision.next, at, FIRING)
        trail.append((at, decision))
    return trail


def recipients(action: Action) -> list[int | None]:
    """Fake target resolution: schedule s has user 100+s on call, team t has members 200+t and 300+t."""
    if isinstance(action, NotifyUsers):
        return list(action.user_ids)
    if isinstance(action, NotifySchedules):
        return [100 + s for s in action.schedule_ids]
    if isinstance(action, NotifyTeams):
        return [m for t in action.team_ids for m in (200 + t, 300 + t)]
    if isinstance(action, NotifyRoundRobin):
        return [action.user_ids[0]]
    if isinstance(action, CallWebhook):
        return [None]
    return []


def keys_of(trail: list[tuple[datetime, Decision]]) -> list[str]:
    keys = []
    for at, decision in trail:
        assert decision.ran is not None
        for action in decision.actions:
            for user in recipients(action):
                if user is None:
                    keys.append(
                        idempotency_key(1, decision.ran.cycle, decision.ran.step_index, None, "webhook", 0)
                    )
                    continue
                important = getattr(action, "important", False)
                for planned in expand_rules(RULES, paged_at=at, important=important):
                    keys.append(
                        idempotency_key(
                            1,
                            decision.ran.cycle,
                            decision.ran.step_index,
                            user,
                            planned.method,
                            planned.rule_index,
                        )
                    )
    return keys


@settings(max_examples=150, deadline=None)
@given(policies, st.sampled_from(STARTS))
def test_walks_terminate_within_the_bound_and_never_go_back(
    snapshot: PolicySnapshot, fired: datetime
) -> None:
    validate_policy(snapshot)
    bound = (snapshot.repeat_count + 1) * len(snapshot.steps)
    trail = walk(snapshot, start(snapshot, fired), bound + 1)
    assert len(trail) <= bound
    assert trail[-1][1].finished
    if all(step.kind != "resolve" for step in snapshot.steps):
        assert len(trail) == bound
    previous = fired
    for at, decision in trail:
        assert at >= previous
        assert decision.next_at is None or decision.next_at >= at
        previous = at
    # Each (cycle, step) runs at most once, in order.
    ran = [decision.ran for _, decision in trail if decision.ran is not None]
    assert len(ran) == len(trail)
    assert ran == sorted(ran, key=lambda p: (p.cycle, p.step_index)) and len(set(ran)) == len(ran)


@settings(max_examples=150, deadline=None)
@given(policies, st.sampled_from(STARTS), st.data())
def test_keys_are_unique_across_a_walk_with_ack_unack_and_reescalation(
    snapshot: PolicySnapshot, fired: datetime, data: st.DataObject
) -> None:
    bound = (snapshot.repeat_count + 1) * len(snapshot.steps)
    trail: list[tuple[datetime, Decision]] = []
    decision, clock = start(snapshot, fired), fired
    for _ in range(3):
        # Run a while, then acknowledge; then either unacknowledge or let the ack time out.
        part = walk(snapshot, decision, data.draw(st.integers(0, bound)))
        if part:
            trail += part
            clock, decision = part[-1]
        if not decision.finished:
            paused = advance(snapshot, decision.next, clock, ACKNOWLEDGED)
            assert (
                paused.actions == ()
                and paused.state == PAUSED
                and paused.next.step_index < len(snapshot.steps)
            )
        reescalate_at = on_acknowledged(snapshot, clock)
        if reescalate_at is not None and data.draw(st.booleans()):
            restarted = tick(
                snapshot,
                decision.next,
                state=PAUSED,
                due_at=reescalate_at,
                now=reescalate_at,
                alert_status=ACKNOWLEDGED,
            )
            assert restarted == on_reescalate(snapshot, decision.next, reescalate_at)
        else:
            restarted = on_unacknowledged(
                snapshot, decision.next, clock + timedelta(minutes=data.draw(st.integers(0, 200)))
            )
        assert restarted.next.step_index == 0
        assert all(restarted.next.cycle > d.ran.cycle for _, d in trail if d.ran is not None)
        assert restarted.next_at is not None
        decision, clock = restarted, restarted.next_at
    trail += walk(snapshot, decision, 10 * bound)
    keys = keys_of(trail)
    assert len(keys) == len(set(keys))
    assert all(len(key) <= 255 for key in keys)


@settings(max_examples=100, deadline=None)
@given(policies, st.sampled_from(STARTS))
def test_preview_agrees_with_walking_advance(snapshot: PolicySnapshot, fired: datetime) -> None:
    expected = [
        (at - fired, at, d.ran.step_index, d.ran.cycle, action)
        for at, d in walk(snapshot, start(snapshot, fired), 10**4)
        if d.ran is not None
        for action in d.actions
    ]
    got = [
        (i.offset, i.at, i.step_index, i.cycle, i.action) for i in preview(snapshot, fired, max_items=10**4)
    ]
    assert got == expected
    assert preview(snapshot, fired, max_items=3) == preview(snapshot, fired)[:3]


@settings(max_examples=60, deadline=None)
@given(policies, st.sampled_from(STARTS))
def test_acknowledged_preview_pages_once_per_run(snapshot: PolicySnapshot, fired: datetime) -> None:
    items = preview(snapshot, fired, assume_unacknowledged=False, max_items=30)
    pages = [
        i
        for i in items
        if isinstance(i.action, NotifyUsers | NotifySchedules | NotifyTeams | NotifyRoundRobin)
    ]
    runs = [(i.cycle, i.step_index) for i in pages]
    assert len({cycle // (snapshot.repeat_count + 1) for cycle, _ in runs}) == len(runs)
    if snapshot.reescalate_after_ack_minutes is None:
        assert len(pages) <= 1
    assert [i.at for i in items] == sorted(i.at for i in items)


@settings(max_examples=100, deadline=None)
@given(policies)
def test_json_round_trip(snapshot: PolicySnapshot) -> None:
    assert snapshot_from_json(snapshot_to_json(snapshot)) == snapshot


@settings(max_examples=100, deadline=None)
@given(policies, st.integers(0, 60), st.integers(0, 3))
def test_positions_past_the_end_wrap_or_finish(snapshot: PolicySnapshot, minute: int, cycle: int) -> None:
    now = STARTS[0] + timedelta(minutes=minute)
    end_of_cycle = advance(snapshot, Position(len(snapshot.steps), cycle), now, FIRING)
    if cycle % (snapshot.repeat_count + 1) == snapshot.repeat_count:
        assert end_of_cycle.finished and end_of_cycle.ran is None
    else:
        assert end_of_cycle.ran == Position(0, cycle + 1)


def reference_contains(window: TimeWindow, instant: datetime) -> bool:
    """The schedule restriction engine's reading of the same window (one weekly window per weekday)."""
    restrictions = [
        Restriction(
            kind="weekly",
            start_weekday=day,
            start=window.start,
            end_weekday=day if window.end > window.start else (day + 1) % 7,
            end=window.end,
        )
        for day in window.weekdays
    ]
    return bool(restriction_windows(restrictions, load_zone(window.timezone), instant, instant + EPSILON))


@settings(max_examples=400, deadline=None)
@given(
    windows(), st.sampled_from(STARTS), st.integers(0, 4 * 24 * 8).map(lambda q: timedelta(minutes=15 * q))
)
def test_time_windows_agree_with_schedule_restrictions(
    window: TimeWindow, base: datetime, offset: timedelta
) -> None:
    # Quarter-hour instants over eight days from just before a DST change: boundaries included.
    instant = base - timedelta(days=1) + offset
    assert window.contains(instant) is reference_contains(window, instant)
