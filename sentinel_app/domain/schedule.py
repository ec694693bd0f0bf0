"""Who is on call: priorities between layers, overrides, shift plans and the next hand-off.

Pure functions; the caller passes every instant. Rules the storage/API layer relies on:

* Overrides beat layers; among overrides covering an instant the highest
  ``created_seq`` wins (then the highest id).
* Among layers the highest ``priority`` value that has someone at the instant
  wins (equal priorities: the smaller id). Restrictions, ``shift_length`` duty
  gaps and ``[start, end)`` can leave a layer empty, which lets lower layers show.
* A shift in a plan is a maximal run of one user from one source; a change of
  source (e.g. an override for the user already on call) starts a new shift, and
  ``next_handoff`` reports it too, so both agree with ``on_call`` exactly.
* Answers are plain UTC datetimes.
"""

from __future__ import annotations

import heapq
import itertools
import weakref
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sentinel_app.domain.rotation import Rotation, clip, compile_layer
from sentinel_app.domain.schedule_model import (
    Layer,
    OnCall,
    Override,
    Restriction,
    Schedule,
    ScheduleError,
    Shift,
    ShiftPlan,
)
from sentinel_app.domain.schedule_validation import schedule_errors, validate_schedule
from sentinel_app.domain.wallclock import to_utc

__all__ = [
    "Layer",
    "OnCall",
    "Override",
    "Restriction",
    "Schedule",
    "ScheduleError",
    "Shift",
    "ShiftPlan",
    "layer_shifts",
    "next_handoff",
    "on_call",
    "schedule_errors",
    "shifts",
    "validate_schedule",
]

# Beyond every dated event (override ends, layer starts and ends) a schedule only
# repeats itself, so next_handoff looks at most this far past the last one...
MIN_LOOKAHEAD = timedelta(days=732)
# ...or this many full participant cycles of its slowest layer, if longer.
CYCLES_LOOKAHEAD = 2
FIRST_WINDOW = timedelta(days=1)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_LOOKAHEAD = timedelta(days=366 * 100)


# (start, end, rank, override) with UTC instants; the smallest rank wins. Plain tuples:
# a schedule may carry many overrides and compiling must stay cheap.
_OverrideSpan = tuple[datetime, datetime, tuple[int, int, int], Override]


@dataclass(frozen=True, slots=True)
class _Compiled:
    rotations: tuple[Rotation, ...]  # best priority first
    overrides: tuple[_OverrideSpan, ...]


# Validating and compiling costs more than answering, and callers often ask one Schedule
# object many questions. Schedules are deeply immutable, so each object's compiled form is
# kept for as long as the object lives.
_COMPILED: dict[int, tuple[weakref.ref[Schedule], _Compiled]] = {}


def _compiled(schedule: Schedule) -> _Compiled:
    key = id(schedule)
    hit = _COMPILED.get(key)
    if hit is not None and hit[0]() is schedule:
        return hit[1]
    compiled = _compile(schedule)
    _COMPILED[key] = (weakref.ref(schedule, lambda _: _COMPILED.pop(key, None)), compiled)
    return compiled


def _compile(schedule: Schedule) -> _Compiled:
    validate_schedule(schedule)
    rotations = sorted(
        (compile_layer(layer, schedule.timezone) for layer in schedule.layers),
        key=lambda r: (-r.priority, r.layer_id),
    )
    overrides = tuple(
        (to_utc(o.start), to_utc(o.end), (0, -o.created_seq, -o.id), o) for o in schedule.overrides
    )
    return _Compiled(tuple(rotations), overrides)


def on_call(schedule: Schedule, at: datetime) -> list[OnCall]:
    """Return who is on call at the instant `at` (empty during a gap)."""
    compiled = _compiled(schedule)
    return _answer_at(compiled, to_utc(at))


def _answer_at(compiled: _Compiled, at: datetime) -> list[OnCall]:
    winner: _OverrideSpan | None = None
    for span in compiled.overrides:
        if span[0] <= at < span[1] and (winner is None or span[2] < winner[2]):
            winner = span
    if winner is not None:
        return [OnCall(winner[3].user_id, "override", winner[3].id)]
    for rotation in compiled.rotations:
        user = rotation.user_at(at)
        if user is not None:
            return [OnCall(user, "layer", rotation.layer_id)]
    return []


def layer_shifts(layer: Layer, start: datetime, end: datetime, schedule_timezone: str = "UTC") -> list[Shift]:
    """Return the layer's own maximal one-user stretches in [start, end), ignoring other sources."""
    validate_schedule(Schedule(timezone=schedule_timezone, layers=[layer]))
    found: list[Shift] = []
    for lo, hi, user in compile_layer(layer, schedule_timezone).segments(to_utc(start), to_utc(end)):
        if found and found[-1].user_id == user and found[-1].end == lo:
            found[-1] = replace(found[-1], end=hi)
        else:
            found.append(Shift(user, lo, hi, "layer", layer.id))
    return found


def shifts(schedule: Schedule, start: datetime, end: datetime) -> ShiftPlan:
    """Return the shifts and gaps that tile [start, end) exactly (both empty if start == end)."""
    lo, hi = to_utc(start), to_utc(end)
    if hi < lo:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    found: list[Shift] = []
    gaps: list[tuple[datetime, datetime]] = []
    for run_start, run_end, answer in _timeline(_compiled(schedule), lo, hi):
        if answer is None:
            gaps.append((run_start, run_end))
        else:
            found.append(Shift(answer.user_id, run_start, run_end, answer.source_kind, answer.source_id))
    return ShiftPlan(shifts=found, gaps=gaps)


_Run = tuple[datetime, datetime, OnCall | None]


def _timeline(compiled: _Compiled, start: datetime, end: datetime) -> list[_Run]:
    """Return maximal runs of one answer (None: a gap) that tile [start, end)."""
    pieces: list[_Run] = []
    free = _paint_overrides(compiled.overrides, start, end, pieces)
    # Each layer only fills what better sources left free; once nothing is free (say, an
    # always-staffed layer) the layers below are not even expanded.
    for rotation in compiled.rotations:
        if not free:
            break
        # Expanding once over the free span and clipping beats expanding each hole separately.
        covered = clip(rotation.segments(free[0][0], free[-1][1]), free)
        pieces.extend((lo, hi, OnCall(user, "layer", rotation.layer_id)) for lo, hi, user in covered)
        free = _subtract(free, covered)
    pieces.extend((lo, hi, None) for lo, hi in free)
    pieces.sort(key=lambda piece: piece[0])
    runs: list[_Run] = []
    for lo, hi, answer in pieces:
        if runs and runs[-1][2] == answer and runs[-1][1] == lo:
            runs[-1] = (runs[-1][0], hi, answer)
        else:
            runs.append((lo, hi, answer))
    return runs


def _subtract(
    free: list[tuple[datetime, datetime]], covered: list[tuple[datetime, datetime, int]]
) -> list[tuple[datetime, datetime]]:
    """Return the parts of sorted disjoint `free` not in sorted disjoint `covered` (which lies inside it)."""
    left: list[tuple[datetime, datetime]] = []
    j = 0
    for lo, hi in free:
        cursor = lo
        while j < len(covered) and covered[j][0] < hi:
            if cursor < covered[j][0]:
                left.append((cursor, covered[j][0]))
            cursor = covered[j][1]
            j += 1
        if cursor < hi:
            left.append((cursor, hi))
    return left


def _paint_overrides(
    overrides: tuple[_OverrideSpan, ...], start: datetime, end: datetime, pieces: list[_Run]
) -> list[tuple[datetime, datetime]]:
    """Append the winning override pieces in [start, end) to `pieces`; return what stays uncovered."""
    spans = [
        (max(lo, start), min(hi, end), rank, o) for lo, hi, rank, o in overrides if lo < end and hi > start
    ]
    spans.sort(key=lambda span: span[0])
    cuts = sorted({start, end, *(span[0] for span in spans), *(span[1] for span in spans)})
    free: list[tuple[datetime, datetime]] = []
    live: list[tuple[tuple[int, int, int], datetime, Override]] = []  # a heap: best rank on top
    nxt = 0
    for lo, hi in itertools.pairwise(cuts):
        while nxt < len(spans) and spans[nxt][0] <= lo:
            heapq.heappush(live, (spans[nxt][2], spans[nxt][1], spans[nxt][3]))
            nxt += 1
        # Lazy deletion: a finished override only matters once it surfaces at the top.
        while live and live[0][1] <= lo:
            heapq.heappop(live)
        if live:
            winner = live[0][2]
            pieces.append((lo, hi, OnCall(winner.user_id, "override", winner.id)))
        elif free and free[-1][1] == lo:
            free[-1] = (free[-1][0], hi)
        else:
            free.append((lo, hi))
    return free


def next_handoff(schedule: Schedule, at: datetime) -> datetime | None:
    """Return the next instant after `at` when the on-call answer changes, or None if it never does."""
    compiled = _compiled(schedule)
    now = to_utc(at)
    # Clamped so that far-future sentinels (an end in 9999) cannot overflow datetime.
    horizon = min(_settled_from(compiled, now), LATEST) + min(_lookahead(compiled), MAX_LOOKAHEAD)
    window = FIRST_WINDOW
    while now < horizon:
        # Fourfold growing windows keep the work proportional to how far away the change is.
        stop = horizon if horizon - now <= window else now + window
        first_end = _timeline(compiled, now, stop)[0][1]
        if first_end < stop:
            return first_end
        if stop == horizon:
            return None
        window *= 4
    return None


def _settled_from(compiled: _Compiled, now: datetime) -> datetime:
    """Return the instant after which no override, layer start or layer end remains."""
    events = [now]
    events.extend(span[1] for span in compiled.overrides)
    for rotation in compiled.rotations:
        events.append(rotation.start)
        if rotation.end is not None:
            events.append(rotation.end)
    return max(events)


def _lookahead(compiled: _Compiled) -> timedelta:
    """Return how far past the settled instant a change could still first appear."""
    for rotation in compiled.rotations:
        if rotation.end is not None:
            continue  # over by the settled instant
        if rotation.always_staffed() and rotation.solo is not None:
            # The top surviving layer always has the same user: nothing changes any more.
            return FIRST_WINDOW
        break
    else:
        return FIRST_WINDOW  # no layer survives: one permanent gap
    cycles = (r.span * len(r.participants) * CYCLES_LOOKAHEAD for r in compiled.rotations)
    return max([MIN_LOOKAHEAD, *cycles])
