"""What an escalation does at each tick: one step per call, as a Decision the caller commits.

Pure functions; the caller passes every instant. Rules the actor/service layer relies on:

* **One step per call.** ``Position(step_index, cycle)`` names the step that runs *next*.
  :func:`advance` runs exactly that step and returns its actions, the following position
  and ``next_at = now + the step's delay`` (``now`` itself for zero-delay and skipped steps:
  the caller claims again at once). So each compare-and-set claim covers one step, and the
  outbox rows it writes belong to ``decision.ran``.
* **Cycles.** The steps run ``repeat_count + 1`` times (cycles). After the last step of the
  last cycle the escalation is finished: ``next_at is None``, ``state == "done"``, and
  ``next == Position(len(steps), cycle)``. The last step's delay is then not waited out.
* **Restarts keep cycle numbers fresh.** Unacknowledging or re-escalating starts over at
  step 0 of a new *run*; run ``r`` uses cycles ``r·(R+1) … r·(R+1)+R`` (``R`` =
  repeat_count), so a restart never reuses an earlier (cycle, step) pair and idempotency keys
  never collide. :func:`cycle_info` turns a cycle back into (run, repeat).
* **Acknowledged** alerts get no notifications: the escalation pauses with
  ``next_at = on_acknowledged(...)`` (the re-escalation time, or None). When that time comes
  with the alert still acknowledged, :func:`on_reescalate` restarts the escalation and the
  caller must set the alert back to firing (else the next tick would pause again).
  **Resolved** alerts finish the escalation. :func:`tick` dispatches all of this from the
  row's state.
* **time_window** steps are gates: outside their window (read in their own zone at ``now``)
  they are skipped with a ``Skipped`` action and the escalation moves on at once; inside
  they act like a wait of their own delay.
* **round_robin** yields ``NotifyRoundRobin(user_ids)``; the caller picks the user with
  :func:`round_robin_pick` and the live cursor of step row ``step_id`` (the cursor is shared
  by every alert of the policy, so it is not part of the snapshot).
* Delays are elapsed time (UTC minutes), not wall-clock readings. Answers are UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sentinel_app.domain.alert_lifecycle import ACKNOWLEDGED, FIRING, RESOLVED
from sentinel_app.domain.escalation_policy import (
    NOTIFY_SCHEDULE,
    NOTIFY_TEAM,
    NOTIFY_USERS,
    RESOLVE,
    ROUND_ROBIN,
    TIME_WINDOW,
    WAIT,
    WEBHOOK,
    PolicySnapshot,
    StepSnapshot,
)
from sentinel_app.domain.wallclock import to_utc

# Escalation row states; the same values as sentinel_app.models.escalation.EscalationState.
ACTIVE = "active"
PAUSED = "paused"
DONE = "done"
STATES = (ACTIVE, PAUSED, DONE)
ALERT_STATUSES = (FIRING, ACKNOWLEDGED, RESOLVED)


@dataclass(frozen=True, order=True)
class Position:
    """The step that runs next; ``step_index == len(steps)`` means past the end of `cycle`."""

    step_index: int
    cycle: int


# --- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifyUsers:
    """Page these users (each through their personal notification rules)."""

    user_ids: tuple[int, ...]
    important: bool = False


@dataclass(frozen=True)
class NotifySchedules:
    """Page whoever is on call in these schedules at the claim instant (resolved by the caller)."""

    schedule_ids: tuple[int, ...]
    important: bool = False


@dataclass(frozen=True)
class NotifyTeams:
    """Page every member of these teams (resolved by the caller)."""

    team_ids: tuple[int, ...]
    important: bool = False


@dataclass(frozen=True)
class NotifyRoundRobin:
    """Page the next user of the list, picked with :func:`round_robin_pick` and the step's live cursor."""

    user_ids: tuple[int, ...]
    important: bool = False
    step_id: int | None = None


@dataclass(frozen=True)
class CallWebhook:
    """POST the alert to this URL (through the outbox, like any notification)."""

    url: str


@dataclass(frozen=True)
class ResolveAlert:
    """Resolve the alert automatically; the escalation is finished."""


@dataclass(frozen=True)
class Skipped:
    """The step did nothing, and why (for the alert's timeline)."""

    reason: str


Action = NotifyUsers | NotifySchedules | NotifyTeams | NotifyRoundRobin | CallWebhook | ResolveAlert | Skipped
NotifyAction = NotifyUsers | NotifySchedules | NotifyTeams | NotifyRoundRobin
NOTIFY_ACTIONS = (NotifyUsers, NotifySchedules, NotifyTeams, NotifyRoundRobin)


class Event(StrEnum):
    """Why a Decision was made (for the timeline and logs)."""

    START = "start"  # the escalation was created
    STEP = "step"  # a step ran: `ran` and `actions` are set
    PAUSED = "paused"  # the alert is acknowledged: no notifications
    REESCALATE = "reescalate"  # acknowledged too long: start over, the caller un-acknowledges
    RESTART = "restart"  # unacknowledged: start over
    ESCALATE_NOW = "escalate_now"  # a person skipped the wait
    FINISHED = "finished"  # nothing left to do (past the last cycle, or resolved)
    NOOP = "noop"  # not due yet: leave the row as it is


@dataclass(frozen=True)
class Decision:
    """What to commit for one tick: the actions of step `ran`, and the row's next position and due time.

    Write ``next``, ``next_at`` and ``state`` to the Escalation row (bumping ``version``) and one
    outbox row per action target in the same transaction, unless ``event is Event.NOOP``.
    """

    event: Event
    state: str
    next: Position
    next_at: datetime | None
    ran: Position | None = None
    actions: tuple[Action, ...] = ()

    @property
    def finished(self) -> bool:
        """Whether the escalation has nothing more to do (until an ack/unack restarts it)."""
        return self.state == DONE


# --- positions --------------------------------------------------------------------------------


def cycle_info(snapshot: PolicySnapshot, cycle: int) -> tuple[int, int]:
    """Return (run, repeat) of a cycle number: run 0 is the first escalation, 1 the first restart…"""
    return divmod(cycle, snapshot.repeat_count + 1)


def _last_cycle(snapshot: PolicySnapshot, cycle: int) -> int:
    run, _ = cycle_info(snapshot, cycle)
    return run * (snapshot.repeat_count + 1) + snapshot.repeat_count


def _next_run(snapshot: PolicySnapshot, cycle: int) -> int:
    return _last_cycle(snapshot, cycle) + 1


def _check_position(snapshot: PolicySnapshot, position: Position) -> None:
    if not 0 <= position.step_index <= len(snapshot.steps) or position.cycle < 0:
        raise ValueError(f"{position} is outside a policy of {len(snapshot.steps)} steps")


def _pending(snapshot: PolicySnapshot, position: Position) -> Position | None:
    """The step that runs at `position`, wrapping past the end of a cycle; None when finished."""
    _check_position(snapshot, position)
    if position.step_index < len(snapshot.steps):
        return position
    if snapshot.steps and position.cycle < _last_cycle(snapshot, position.cycle):
        return Position(0, position.cycle + 1)
    return None


def _after(snapshot: PolicySnapshot, position: Position) -> Position | None:
    """The step after the one at `position`, wrapping into the next cycle; None past the last cycle."""
    return _pending(snapshot, Position(position.step_index + 1, position.cycle))


def _finished(
    snapshot: PolicySnapshot,
    position: Position,
    ran: Position | None = None,
    actions: tuple[Action, ...] = (),
    event: Event = Event.FINISHED,
) -> Decision:
    end = Position(len(snapshot.steps), position.cycle)
    return Decision(event, DONE, end, None, ran, actions)


def _restart(snapshot: PolicySnapshot, position: Position, now: datetime, event: Event) -> Decision:
    _check_position(snapshot, position)
    fresh = Position(0, _next_run(snapshot, position.cycle))
    if not snapshot.steps:
        return _finished(snapshot, fresh)
    return Decision(event, ACTIVE, fresh, to_utc(now))


# --- the plan ---------------------------------------------------------------------------------


def start(snapshot: PolicySnapshot, now: datetime) -> Decision:
    """The first row of a new escalation: step 0 of cycle 0, due at once (done if there are no steps)."""
    first = Position(0, 0)
    if not snapshot.steps:
        return _finished(snapshot, first)
    return Decision(Event.START, ACTIVE, first, to_utc(now))


def advance(snapshot: PolicySnapshot, position: Position, now: datetime, alert_status: str) -> Decision:
    """Run the one step at `position` for an alert in `alert_status` at `now`.

    Firing: the step's actions, the next position and ``now + delay``. Acknowledged: pause with
    no actions until the re-escalation time. Resolved, or past the last cycle: finished.
    """
    if alert_status not in ALERT_STATUSES:
        raise ValueError(f"unknown alert status {alert_status!r}")
    now = to_utc(now)
    pending = _pending(snapshot, position)
    if alert_status == RESOLVED or pending is None:
        return _finished(snapshot, position if pending is None else pending)
    if alert_status == ACKNOWLEDGED:
        return Decision(Event.PAUSED, PAUSED, pending, on_acknowledged(snapshot, now))
    return _run(snapshot, pending, now)


def _run(snapshot: PolicySnapshot, position: Position, now: datetime) -> Decision:
    step = snapshot.steps[position.step_index]
    if step.kind == RESOLVE:
        return _finished(snapshot, position, position, (ResolveAlert(),), Event.STEP)
    actions, delay = _step_actions(step, now)
    following = _after(snapshot, position)
    if following is None:
        return _finished(snapshot, position, position, actions, Event.STEP)
    return Decision(Event.STEP, ACTIVE, following, now + delay, position, actions)


def _step_actions(step: StepSnapshot, now: datetime) -> tuple[tuple[Action, ...], timedelta]:
    delay = timedelta(minutes=step.delay_minutes)
    if step.kind == NOTIFY_USERS:
        return (NotifyUsers(step.user_ids, step.important),), delay
    if step.kind == NOTIFY_SCHEDULE:
        return (NotifySchedules(step.schedule_ids, step.important),), delay
    if step.kind == NOTIFY_TEAM:
        return (NotifyTeams(step.team_ids, step.important),), delay
    if step.kind == ROUND_ROBIN:
        return (NotifyRoundRobin(step.user_ids, step.important, step.step_id),), delay
    if step.kind == WEBHOOK:
        assert step.webhook_url is not None  # validated
        return (CallWebhook(step.webhook_url),), delay
    if step.kind == TIME_WINDOW:
        assert step.window is not None  # validated
        if step.window.contains(now):
            return (), delay
        return (Skipped(f"outside the time window {step.window.describe()}"),), timedelta(0)
    if step.kind == WAIT:
        return (), delay
    raise ValueError(f"unknown step kind {step.kind!r}")


def on_acknowledged(snapshot: PolicySnapshot, now: datetime) -> datetime | None:
    """When to re-escalate an alert acknowledged at `now` (None: never)."""
    minutes = snapshot.reescalate_after_ack_minutes
    return None if minutes is None else to_utc(now) + timedelta(minutes=minutes)


def on_reescalate(snapshot: PolicySnapshot, position: Position, now: datetime) -> Decision:
    """The acknowledgement timed out: start over at step 0 of a new run, due at once.

    The caller sets the alert back to firing in the same transaction.
    """
    return _restart(snapshot, position, now, Event.REESCALATE)


def on_unacknowledged(snapshot: PolicySnapshot, position: Position, now: datetime) -> Decision:
    """The alert was unacknowledged: start over at step 0 of a new run (fresh cycle numbers), due at once."""
    return _restart(snapshot, position, now, Event.RESTART)


def escalate_now(snapshot: PolicySnapshot, position: Position, now: datetime) -> Decision:
    """Stop waiting: make the next step that acts (skipping pending wait/time_window steps) due at `now`.

    Finished when no acting step is left in this run. Meant for firing alerts.
    """
    now = to_utc(now)
    pending = _pending(snapshot, position)
    while pending is not None and snapshot.steps[pending.step_index].kind in (WAIT, TIME_WINDOW):
        pending = _after(snapshot, pending)
    if pending is None:
        return _finished(snapshot, position)
    return Decision(Event.ESCALATE_NOW, ACTIVE, pending, now)


def tick(
    snapshot: PolicySnapshot,
    position: Position,
    *,
    state: str,
    due_at: datetime | None,
    now: datetime,
    alert_status: str,
) -> Decision:
    """Everything a timer or the sweeper does with an escalation row, from its state and the alert's.

    Done, or not due yet (or no due time): NOOP, except that a resolved alert always finishes.
    Active: :func:`advance`. Paused and still acknowledged: :func:`on_reescalate`. Paused but
    firing (the unacknowledge committed first): :func:`on_unacknowledged`. A done row stays done
    until an acknowledgement or unacknowledgement handler restarts it.
    """
    if state not in STATES:
        raise ValueError(f"unknown escalation state {state!r}")
    if alert_status not in ALERT_STATUSES:
        raise ValueError(f"unknown alert status {alert_status!r}")
    now = to_utc(now)
    if state == DONE:
        return Decision(Event.NOOP, DONE, position, due_at)
    if alert_status == RESOLVED:
        return _finished(snapshot, _pending(snapshot, position) or position)
    if due_at is None or now < to_utc(due_at):
        return Decision(Event.NOOP, state, position, due_at)
    if state == ACTIVE:
        return advance(snapshot, position, now, alert_status)
    if alert_status == ACKNOWLEDGED:
        return on_reescalate(snapshot, position, now)
    return on_unacknowledged(snapshot, position, now)


def round_robin_pick(user_ids: Sequence[int], cursor: int) -> tuple[int, int]:
    """Return whose turn it is at `cursor` and the cursor for the next time (wraps; any int works)."""
    if not user_ids:
        raise ValueError("a round-robin step needs at least one user")
    index = cursor % len(user_ids)
    return user_ids[index], (index + 1) % len(user_ids)


def assignee_for(actions: Sequence[Action], resolved_user_ids: Sequence[int]) -> int | None:
    """Who owns the alert after these actions: the first target of the first notify action.

    `resolved_user_ids` are the users the caller resolved for that action: the on-call users
    of a NotifySchedules (in schedule order) or the pick of a NotifyRoundRobin. NotifyUsers
    uses its first listed user; a team has no single owner (None), and so has nobody on call.
    """
    for action in actions:
        if isinstance(action, NotifyUsers):
            return action.user_ids[0] if action.user_ids else None
        if isinstance(action, NotifySchedules | NotifyRoundRobin):
            return resolved_user_ids[0] if resolved_user_ids else None
        if isinstance(action, NotifyTeams):
            return None
    return None


# --- dry run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewItem:
    """One action of a dry run: what would happen `offset` after the alert fired."""

    offset: timedelta
    at: datetime
    step_index: int
    cycle: int
    action: Action


def preview(
    snapshot: PolicySnapshot, start_at: datetime, *, assume_unacknowledged: bool = True, max_items: int = 200
) -> list[PreviewItem]:
    """Dry-run the escalation of an alert firing at `start_at`, by walking :func:`advance` with a clock.

    Time windows are evaluated at each would-be instant. With ``assume_unacknowledged=False``
    someone acknowledges right after the first page; if the policy re-escalates, each
    re-escalation pages again (so the list is cut at `max_items`).
    """
    origin = to_utc(start_at)
    items: list[PreviewItem] = []
    decision = start(snapshot, origin)
    # Ends: unacknowledged, each step runs once per cycle; acknowledged, every re-escalation
    # pages again before the next acknowledgement, so items grow until `max_items`.
    while decision.next_at is not None and len(items) < max_items:
        at = decision.next_at
        decision = advance(snapshot, decision.next, at, FIRING)
        assert decision.ran is not None  # a firing alert with a pending step runs it
        paged = False
        for action in decision.actions:
            items.append(PreviewItem(at - origin, at, decision.ran.step_index, decision.ran.cycle, action))
            paged = paged or isinstance(action, NOTIFY_ACTIONS)
        if paged and not assume_unacknowledged:
            reescalate_at = on_acknowledged(snapshot, at)
            if reescalate_at is None:
                break
            decision = on_reescalate(snapshot, decision.next, reescalate_at)
    return items[:max_items]
