"""Plain, immutable descriptions of an on-call schedule and of the engine's answers.

Instants are aware datetimes (any zone; answers are always in UTC). Wall-clock
fields (`time` values) are naive and read in the layer's zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal

RotationKind = Literal["hourly", "daily", "weekly", "monthly", "custom"]
RotationUnit = Literal["hour", "day", "week", "month"]
RestrictionKind = Literal["daily", "weekly"]
SourceKind = Literal["layer", "override"]


class ScheduleError(ValueError):
    """A schedule field is invalid; `field` is its path, e.g. ``layers[0].participants``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _freeze(instance: object, *names: str) -> None:
    """Store sequence fields as tuples, so a schedule cannot change once built (and is hashable)."""
    for name in names:
        object.__setattr__(instance, name, tuple(getattr(instance, name)))


@dataclass(frozen=True, kw_only=True)
class Restriction:
    """A window in which its layer is active, read on the layer's wall clock.

    daily: every day from `start` to `end`; `end <= start` runs past midnight.
    weekly: from `start_weekday` `start` to `end_weekday` `end` (0 = Monday);
    an end at or before the start runs past Sunday midnight into the next week.
    """

    kind: RestrictionKind
    start: time
    end: time
    start_weekday: int | None = None
    end_weekday: int | None = None


@dataclass(frozen=True, kw_only=True)
class Layer:
    """One rotation of participants (keyword-only); hand-off rules: sentinel_app.domain.rotation."""

    id: int
    priority: int  # larger wins; equal priorities fall back to the smaller id
    participants: Sequence[int]
    kind: RotationKind
    interval: int = 1
    unit: RotationUnit | None = None  # required for "custom"; implied by the other kinds
    shift_length: timedelta | None = None  # on-duty wall-clock time after each hand-off
    handoff_time: time | None = None  # day/week/month units; None: the local time at `start`
    handoff_weekday: int | None = None  # week unit, 0 = Monday; None: the local weekday at `start`
    handoff_day: int | None = None  # month unit, 1..31; None: the local day at `start`
    timezone: str | None = None  # None: the schedule's zone
    start: datetime  # the anchor: shift 0 runs from here to the next hand-off
    end: datetime | None = None  # exclusive
    start_index: int = 0  # who holds shift 0, 0 <= start_index < len(participants)
    restrictions: Sequence[Restriction] = ()

    def __post_init__(self) -> None:
        _freeze(self, "participants", "restrictions")


@dataclass(frozen=True, kw_only=True)
class Override:
    """`user_id` replaces the layers' answer in [start, end); the highest `created_seq` wins."""

    id: int
    user_id: int
    start: datetime
    end: datetime
    created_seq: int


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A zone, rotation layers and overrides."""

    timezone: str
    layers: Sequence[Layer] = ()
    overrides: Sequence[Override] = ()

    def __post_init__(self) -> None:
        _freeze(self, "layers", "overrides")


@dataclass(frozen=True)
class OnCall:
    """Who is on call and which layer or override put them there."""

    user_id: int
    source_kind: SourceKind
    source_id: int


@dataclass(frozen=True)
class Shift:
    """A maximal stretch [start, end) with one user from one source (UTC instants)."""

    user_id: int
    start: datetime
    end: datetime
    source_kind: SourceKind
    source_id: int


@dataclass(frozen=True)
class ShiftPlan:
    """Shifts and gaps (nobody on call) that together tile the requested range."""

    shifts: list[Shift] = field(default_factory=list)
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)
