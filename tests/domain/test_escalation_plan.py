"""The escalation plan: each step kind, repeats, a full walk with a fake clock, ack/unack, escalate now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import pytest

from sentinel_app.domain.alert_lifecycle import ACKNOWLEDGED, FIRING, RESOLVED
from sentinel_app.domain.escalation import (
    ACTIVE,
    DONE,
    PAUSED,
    Action,
    CallWebhook,
    Decision,
    Event,
    NotifyRoundRobin,
    NotifySchedules,
    NotifyTeams,
    NotifyUsers,
    PolicySnapshot,
    Position,
    PreviewItem,
    ResolveAlert,
    Skipped,
    StepSnapshot,
    TimeWindow,
    advance,
    assignee_for,
    cycle_info,
    escalate_now,
    on_acknowledged,
    on_reescalate,
    on_unacknowledged,
    preview,
    round_robin_pick,
    start,
    tick,
)

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday
MIN = timedelta(minutes=1)
NY = "America/New_York"
OFFICE = TimeWindow(NY, frozenset(range(5)), time(9), time(17))


def notify(*users: int, delay: int = 0, important: bool = False) -> StepSnapshot:
    return StepSnapshot(kind="notify_users", user_ids=users, delay_minutes=delay, important=important)


def policy(*steps: StepSnapshot, repeat: int = 0, reescalate: int | None = None) -> PolicySnapshot:
    return PolicySnapshot(
        policy_id=1, repeat_count=repeat, reescalate_after_ack_minutes=reescalate, steps=steps
    )


@dataclass
class Clock:
    """A controllable clock; the 'actor' sleeps by jumping to the next due time."""

    now: datetime = T0
    log: list[tuple[timedelta, Position, tuple[Action, ...], timedelta | None]] = field(default_factory=list)

    def run(self, snapshot: PolicySnapshot, position: Position, status: str = FIRING) -> Decision:
        decision = advance(snapshot, position, self.now, status)
        assert decision.ran is not None
        offset = None if decision.next_at is None else decision.next_at - T0
        self.log.append((self.now - T0, decision.ran, decision.actions, offset))
        if decision.next_at is not None:
            assert decision.next_at >= self.now
            self.now = decision.next_at
        return decision


# --- one step of each kind --------------------------------------------------------------------

HOOK = "https://hooks.example.com/page"


@pytest.mark.parametrize(
    ("step", "actions", "delay"),
    [
        (notify(1, 2, delay=5), (NotifyUsers((1, 2), False),), 5),
        (notify(3, important=True), (NotifyUsers((3,), True),), 0),
        (
            StepSnapshot(kind="notify_schedule", schedule_ids=(8, 9), delay_minutes=10),
            (NotifySchedules((8, 9)),),
            10,
        ),
        (StepSnapshot(kind="notify_team", team_ids=(4,), important=True), (NotifyTeams((4,), True),), 0),
        (
            StepSnapshot(kind="round_robin", user_ids=(5, 6), delay_minutes=3, step_id=77),
            (NotifyRoundRobin((5, 6), False, 77),),
            3,
        ),
        (StepSnapshot(kind="wait", delay_minutes=15), (), 15),
        (StepSnapshot(kind="webhook", webhook_url=HOOK, delay_minutes=1), (CallWebhook(HOOK),), 1),
        # T0 is Monday 08:00 in New York: outside office hours, skipped at once (no delay).
        (
            StepSnapshot(kind="time_window", window=OFFICE, delay_minutes=30),
            (Skipped("outside the time window Mon-Fri 09:00-17:00 America/New_York"),),
            0,
        ),
        # Inside the window the gate waits its delay.
        (
            StepSnapshot(
                kind="time_window", window=TimeWindow(NY, frozenset({0}), time(7), time(9)), delay_minutes=30
            ),
            (),
            30,
        ),
    ],
)
def test_each_step_kind(step: StepSnapshot, actions: tuple[Action, ...], delay: int) -> None:
    snapshot = policy(step, notify(99))
    decision = advance(snapshot, Position(0, 0), T0, FIRING)
    assert decision == Decision(Event.STEP, ACTIVE, Position(1, 0), T0 + delay * MIN, Position(0, 0), actions)


def test_resolve_step_resolves_and_finishes() -> None:
    snapshot = policy(notify(1), StepSnapshot(kind="resolve"), notify(2), repeat=3)
    decision = advance(snapshot, Position(1, 0), T0, FIRING)
    assert decision == Decision(Event.STEP, DONE, Position(3, 0), None, Position(1, 0), (ResolveAlert(),))
    assert decision.finished


@pytest.mark.parametrize("repeat", [0, 1, 10])
def test_steps_repeat_repeat_count_times_then_finish(repeat: int) -> None:
    snapshot = policy(notify(1, delay=5), notify(2, delay=7), repeat=repeat)
    clock = Clock()
    decision = start(snapshot, clock.now)
    while decision.next_at is not None:
        decision = clock.run(snapshot, decision.next)
    assert [ran for _, ran, _, _ in clock.log] == [
        Position(step, cycle) for cycle in range(repeat + 1) for step in range(2)
    ]
    # 12 minutes per cycle; the last step's delay is not waited out.
    assert clock.now == T0 + (12 * repeat + 5) * MIN
    assert decision.finished and decision.next == Position(2, repeat)
    # Asking again after the end changes nothing.
    again = advance(snapshot, decision.next, clock.now, FIRING)
    assert again == Decision(Event.FINISHED, DONE, Position(2, repeat), None)


def test_a_multi_step_flow_walked_with_a_fake_clock() -> None:
    snapshot = policy(
        notify(1, delay=5),
        StepSnapshot(kind="notify_schedule", schedule_ids=(10,), delay_minutes=10, important=True),
        StepSnapshot(kind="wait", delay_minutes=15),
        StepSnapshot(kind="round_robin", user_ids=(2, 3), step_id=40),
        StepSnapshot(kind="webhook", webhook_url=HOOK, delay_minutes=20),
        repeat=1,
    )
    clock = Clock()
    first = start(snapshot, T0)
    assert first == Decision(Event.START, ACTIVE, Position(0, 0), T0)
    decision = first
    while decision.next_at is not None:
        decision = clock.run(snapshot, decision.next)
    page, oncall, rr, hook = (
        (NotifyUsers((1,)),),
        (NotifySchedules((10,), True),),
        (NotifyRoundRobin((2, 3), False, 40),),
        (CallWebhook(HOOK),),
    )
    assert clock.log == [
        (0 * MIN, Position(0, 0), page, 5 * MIN),
        (5 * MIN, Position(1, 0), oncall, 15 * MIN),
        (15 * MIN, Position(2, 0), (), 30 * MIN),
        (30 * MIN, Position(3, 0), rr, 30 * MIN),  # zero delay: due at once, one step per call
        (30 * MIN, Position(4, 0), hook, 50 * MIN),
        (50 * MIN, Position(0, 1), page, 55 * MIN),
        (55 * MIN, Position(1, 1), oncall, 65 * MIN),
        (65 * MIN, Position(2, 1), (), 80 * MIN),
        (80 * MIN, Position(3, 1), rr, 80 * MIN),
        (80 * MIN, Position(4, 1), hook, None),
    ]


def test_an_empty_policy_finishes_at_once() -> None:
    snapshot = policy()
    assert start(snapshot, T0) == Decision(Event.FINISHED, DONE, Position(0, 0), None)
    assert advance(snapshot, Position(0, 0), T0, FIRING).finished
    assert on_unacknowledged(snapshot, Position(0, 0), T0).finished


@pytest.mark.parametrize("position", [Position(-1, 0), Position(3, 0), Position(0, -1)])
def test_impossible_positions_are_refused(position: Position) -> None:
    with pytest.raises(ValueError, match="outside a policy"):
        advance(policy(notify(1), notify(2)), position, T0, FIRING)


def test_unknown_statuses_and_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="alert status"):
        advance(policy(notify(1)), Position(0, 0), T0, "snoozed")
    with pytest.raises(ValueError, match="naive"):
        advance(policy(notify(1)), Position(0, 0), datetime(2026, 6, 1), FIRING)


# --- time windows in a flow -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        (datetime(2026, 3, 6, 13, 30, tzinfo=UTC), False),  # Fri 08:30 EST
        (datetime(2026, 3, 6, 14, 0, tzinfo=UTC), True),  # Fri 09:00 EST
        (datetime(2026, 3, 9, 13, 0, tzinfo=UTC), True),  # Mon 09:00 EDT, the day after spring forward
        (datetime(2026, 3, 9, 12, 30, tzinfo=UTC), False),  # Mon 08:30 EDT
        (datetime(2026, 11, 2, 13, 30, tzinfo=UTC), False),  # Mon 08:30 EST, the day after fall back
        (datetime(2026, 11, 2, 14, 30, tzinfo=UTC), True),  # Mon 09:30 EST
    ],
)
def test_time_window_gate_around_dst(now: datetime, inside: bool) -> None:
    snapshot = policy(notify(1), StepSnapshot(kind="time_window", window=OFFICE, delay_minutes=20), notify(2))
    decision = advance(snapshot, Position(1, 0), now, FIRING)
    assert decision.next == Position(2, 0)
    assert decision.next_at == (now + 20 * MIN if inside else now)
    assert decision.actions == (() if inside else (Skipped(f"outside the time window {OFFICE.describe()}"),))


def test_consecutive_skipped_gates_run_one_per_call_at_the_same_instant() -> None:
    night = TimeWindow("UTC", frozenset(range(7)), time(22), time(6))
    gate = StepSnapshot(kind="time_window", window=night, delay_minutes=30)
    snapshot = policy(gate, gate, notify(1))
    clock = Clock()
    decision = start(snapshot, T0)
    while decision.next_at is not None:
        decision = clock.run(snapshot, decision.next)
    assert [(at, ran, len(actions), nxt) for at, ran, actions, nxt in clock.log] == [
        (0 * MIN, Position(0, 0), 1, 0 * MIN),
        (0 * MIN, Position(1, 0), 1, 0 * MIN),
        (0 * MIN, Position(2, 0), 1, None),
    ]


def test_a_gate_spanning_midnight_lets_the_night_through() -> None:
    night = TimeWindow("UTC", frozenset({0}), time(22), time(6))  # Monday night into Tuesday
    snapshot = policy(StepSnapshot(kind="time_window", window=night, delay_minutes=10), notify(1))
    tuesday_early = datetime(2026, 6, 2, 3, 0, tzinfo=UTC)
    assert advance(snapshot, Position(0, 0), tuesday_early, FIRING).next_at == tuesday_early + 10 * MIN
    tuesday_late = datetime(2026, 6, 2, 23, 0, tzinfo=UTC)
    assert advance(snapshot, Position(0, 0), tuesday_late, FIRING).next_at == tuesday_late


# --- acknowledge, unacknowledge, re-escalate --------------------------------------------------


def test_acknowledged_mid_way_sends_nothing_more() -> None:
    snapshot = policy(notify(1, delay=5), notify(2, delay=5), notify(3), repeat=2)
    first = advance(snapshot, Position(0, 0), T0, FIRING)
    assert first.actions == (NotifyUsers((1,)),)
    # Acknowledged before step 1 was due: the claim pauses and pages nobody.
    paused = advance(snapshot, first.next, T0 + 5 * MIN, ACKNOWLEDGED)
    assert paused == Decision(Event.PAUSED, PAUSED, Position(1, 0), None)
    assert on_acknowledged(snapshot, T0 + 3 * MIN) is None
    # tick on the paused row without a re-escalation time never fires.
    assert tick(
        snapshot, paused.next, state=PAUSED, due_at=None, now=T0 + 10 * MIN, alert_status=ACKNOWLEDGED
    ) == Decision(Event.NOOP, PAUSED, Position(1, 0), None)


def test_resolved_alert_finishes() -> None:
    snapshot = policy(notify(1), notify(2), repeat=1)
    decision = advance(snapshot, Position(1, 0), T0, RESOLVED)
    assert decision == Decision(Event.FINISHED, DONE, Position(2, 0), None)


def test_unacknowledge_restarts_at_step_zero_with_fresh_cycle_numbers() -> None:
    snapshot = policy(notify(1, delay=5), notify(2, delay=5), repeat=2)  # cycles 0..2 per run
    restarted = on_unacknowledged(snapshot, Position(1, 1), T0)
    assert restarted == Decision(Event.RESTART, ACTIVE, Position(0, 3), T0)
    assert cycle_info(snapshot, 3) == (1, 0)
    # The new run again has three cycles: 3, 4, 5.
    clock = Clock()
    decision = restarted
    while decision.next_at is not None:
        decision = clock.run(snapshot, decision.next)
    assert [ran.cycle for _, ran, _, _ in clock.log] == [3, 3, 4, 4, 5, 5]
    # Restarting a finished escalation continues the numbering too.
    assert on_unacknowledged(snapshot, decision.next, clock.now).next == Position(0, 6)


def test_reescalate_after_ack() -> None:
    snapshot = policy(notify(1, delay=5), notify(2), repeat=0, reescalate=30)
    first = advance(snapshot, Position(0, 0), T0, FIRING)
    ack_at = T0 + 2 * MIN
    reescalate_at = on_acknowledged(snapshot, ack_at)
    assert reescalate_at == T0 + 32 * MIN
    # The row is paused at the pending position until then; early ticks do nothing.
    assert (
        tick(
            snapshot,
            first.next,
            state=PAUSED,
            due_at=reescalate_at,
            now=T0 + 31 * MIN,
            alert_status=ACKNOWLEDGED,
        ).event
        is Event.NOOP
    )
    again = tick(
        snapshot, first.next, state=PAUSED, due_at=reescalate_at, now=reescalate_at, alert_status=ACKNOWLEDGED
    )
    assert again == Decision(Event.REESCALATE, ACTIVE, Position(0, 1), reescalate_at)
    assert again == on_reescalate(snapshot, first.next, reescalate_at)
    # The caller set the alert back to firing: step 0 pages again under the new cycle.
    paged = advance(snapshot, again.next, reescalate_at, FIRING)
    assert (paged.ran, paged.actions) == (Position(0, 1), (NotifyUsers((1,)),))


def test_a_claim_racing_an_ack_pauses_until_the_reescalation_time() -> None:
    snapshot = policy(notify(1), notify(2), reescalate=15)
    decision = tick(snapshot, Position(1, 0), state=ACTIVE, due_at=T0, now=T0, alert_status=ACKNOWLEDGED)
    assert decision == Decision(Event.PAUSED, PAUSED, Position(1, 0), T0 + 15 * MIN)


@pytest.mark.parametrize(
    ("state", "due_at", "status", "event", "next_position"),
    [
        (ACTIVE, T0, FIRING, Event.STEP, Position(2, 0)),
        (ACTIVE, T0 + MIN, FIRING, Event.NOOP, Position(1, 0)),
        (ACTIVE, None, FIRING, Event.NOOP, Position(1, 0)),
        (ACTIVE, T0 + MIN, RESOLVED, Event.FINISHED, Position(3, 0)),
        (PAUSED, T0, ACKNOWLEDGED, Event.REESCALATE, Position(0, 1)),
        (PAUSED, T0, FIRING, Event.RESTART, Position(0, 1)),
        (PAUSED, T0, RESOLVED, Event.FINISHED, Position(3, 0)),
        (DONE, T0, FIRING, Event.NOOP, Position(1, 0)),
    ],
)
def test_tick_dispatches_on_row_state_and_alert_status(
    state: str, due_at: datetime | None, status: str, event: Event, next_position: Position
) -> None:
    snapshot = policy(notify(1), notify(2), notify(3), reescalate=10)
    decision = tick(snapshot, Position(1, 0), state=state, due_at=due_at, now=T0, alert_status=status)
    assert (decision.event, decision.next) == (event, next_position)


# --- escalate now -----------------------------------------------------------------------------


def test_escalate_now_runs_the_pending_step_at_once() -> None:
    snapshot = policy(notify(1, delay=30), notify(2, delay=30), notify(3))
    first = advance(snapshot, Position(0, 0), T0, FIRING)
    assert first.next_at == T0 + 30 * MIN
    now = T0 + 2 * MIN
    jumped = escalate_now(snapshot, first.next, now)
    assert jumped == Decision(Event.ESCALATE_NOW, ACTIVE, Position(1, 0), now)
    assert advance(snapshot, jumped.next, now, FIRING).actions == (NotifyUsers((2,)),)


def test_escalate_now_skips_pending_waits_and_gates() -> None:
    wait = StepSnapshot(kind="wait", delay_minutes=60)
    gate = StepSnapshot(kind="time_window", window=OFFICE, delay_minutes=60)
    snapshot = policy(notify(1), wait, gate, notify(2), wait, repeat=1)
    assert escalate_now(snapshot, Position(1, 0), T0).next == Position(3, 0)
    # Past the last acting step of a cycle it wraps into the next cycle...
    assert escalate_now(snapshot, Position(4, 0), T0).next == Position(0, 1)
    # ...and with no acting step left, the escalation is finished.
    assert escalate_now(snapshot, Position(4, 1), T0) == Decision(Event.FINISHED, DONE, Position(5, 1), None)


# --- round robin and assignment ---------------------------------------------------------------


def test_round_robin_rotates_across_calls_and_alerts() -> None:
    snapshot = policy(StepSnapshot(kind="round_robin", user_ids=(5, 6, 7), step_id=3), repeat=4)
    cursor = 0  # the live cursor of step row 3, shared by every alert
    picked = []
    position: Position | None = Position(0, 0)
    while position is not None:
        decision = advance(snapshot, position, T0, FIRING)
        (action,) = decision.actions
        assert isinstance(action, NotifyRoundRobin) and action.step_id == 3
        user, cursor = round_robin_pick(action.user_ids, cursor)
        picked.append(user)
        position = None if decision.finished else decision.next
    assert picked == [5, 6, 7, 5, 6]
    assert round_robin_pick((5, 6, 7), cursor) == (7, 0)
    # A cursor left over from a longer list (the step was edited) still lands on someone.
    assert round_robin_pick((5, 6), 7) == (6, 0)
    with pytest.raises(ValueError, match="at least one user"):
        round_robin_pick((), 0)


@pytest.mark.parametrize(
    ("actions", "resolved", "assignee"),
    [
        ((NotifyUsers((4, 5)),), [], 4),
        ((NotifySchedules((1, 2)),), [9, 8], 9),
        ((NotifySchedules((1,)),), [], None),  # nobody on call
        ((NotifyRoundRobin((4, 5)),), [5], 5),
        ((NotifyTeams((3,)),), [7, 8], None),
        ((Skipped("outside"), NotifyUsers((6,))), [], 6),
        ((CallWebhook(HOOK),), [], None),
        ((), [], None),
    ],
)
def test_assignee_for(actions: tuple[Action, ...], resolved: list[int], assignee: int | None) -> None:
    assert assignee_for(actions, resolved) == assignee


# --- dry run ----------------------------------------------------------------------------------


def test_preview_lists_who_is_paged_when() -> None:
    snapshot = policy(
        notify(1, delay=10),
        StepSnapshot(kind="time_window", window=OFFICE, delay_minutes=5),
        StepSnapshot(kind="notify_team", team_ids=(3,), delay_minutes=5),
        repeat=1,
    )
    # Friday 2026-03-06 08:45 EST: the gate is shut at 08:55 and open at 09:10.
    fired = datetime(2026, 3, 6, 13, 45, tzinfo=UTC)
    items = preview(snapshot, fired)
    skipped = Skipped(f"outside the time window {OFFICE.describe()}")
    assert [(i.offset // MIN, i.step_index, i.cycle, i.action) for i in items] == [
        (0, 0, 0, NotifyUsers((1,))),
        (10, 1, 0, skipped),
        (10, 2, 0, NotifyTeams((3,))),
        (15, 0, 1, NotifyUsers((1,))),
        (30, 2, 1, NotifyTeams((3,))),  # the gate (at 25) was open and waited its 5 minutes
    ]
    assert items[3] == PreviewItem(15 * MIN, fired + 15 * MIN, 0, 1, NotifyUsers((1,)))


def test_preview_across_spring_forward_evaluates_each_instant() -> None:
    gate = StepSnapshot(kind="time_window", window=TimeWindow(NY, frozenset({6}), time(1), time(3)))
    snapshot = policy(gate, notify(1, delay=45), repeat=2)
    fired = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 EST; the window ends at 07:00Z (03:00 EDT)
    items = preview(snapshot, fired)
    assert [(i.offset // MIN, i.action.__class__.__name__) for i in items] == [
        (0, "NotifyUsers"),
        (45, "NotifyUsers"),
        (90, "Skipped"),
        (90, "NotifyUsers"),
    ]


def test_preview_when_acknowledged_after_the_first_page() -> None:
    snapshot = policy(
        StepSnapshot(kind="wait", delay_minutes=2), notify(1, delay=5), notify(2), reescalate=60
    )
    items = preview(snapshot, T0, assume_unacknowledged=False, max_items=3)
    assert [(i.offset // MIN, i.cycle, i.action) for i in items] == [
        (2, 0, NotifyUsers((1,))),
        (64, 1, NotifyUsers((1,))),
        (126, 2, NotifyUsers((1,))),
    ]
    without = policy(notify(1, delay=5), notify(2))
    assert [i.action for i in preview(without, T0, assume_unacknowledged=False)] == [NotifyUsers((1,))]


def test_preview_is_cut_at_max_items() -> None:
    snapshot = policy(notify(1), notify(2), repeat=10)
    assert len(preview(snapshot, T0)) == 22
    assert len(preview(snapshot, T0, max_items=5)) == 5
