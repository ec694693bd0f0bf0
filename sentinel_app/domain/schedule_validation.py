"""Schedule validation: every problem is reported with the path of the offending field."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import get_args

from sentinel_app.domain.restriction import wall_span
from sentinel_app.domain.rotation import UNIT_OF_KIND, nominal_span, unit_of
from sentinel_app.domain.schedule_model import (
    Layer,
    Override,
    Restriction,
    RestrictionKind,
    RotationKind,
    RotationUnit,
    Schedule,
    ScheduleError,
)
from sentinel_app.domain.wallclock import load_zone

# Far beyond any real rotation (1000 months is 83 years), low enough to keep date math in range.
MAX_INTERVAL = 1000


def schedule_errors(schedule: Schedule) -> list[ScheduleError]:
    """Return every problem in `schedule` (an empty list means it is valid)."""
    return list(_schedule_problems(schedule))


def validate_schedule(schedule: Schedule) -> None:
    """Raise the first ScheduleError found in `schedule`, if any."""
    for error in _schedule_problems(schedule):
        raise error


def _schedule_problems(schedule: Schedule) -> Iterator[ScheduleError]:
    yield from _zone_problems("timezone", schedule.timezone)
    seen_layers: set[int] = set()
    for i, layer in enumerate(schedule.layers):
        if layer.id in seen_layers:
            yield ScheduleError(f"layers[{i}].id", f"duplicate layer id {layer.id}")
        seen_layers.add(layer.id)
        yield from _layer_problems(f"layers[{i}]", layer)
    seen_overrides: set[int] = set()
    for i, override in enumerate(schedule.overrides):
        if override.id in seen_overrides:
            yield ScheduleError(f"overrides[{i}].id", f"duplicate override id {override.id}")
        seen_overrides.add(override.id)
        yield from _override_problems(f"overrides[{i}]", override)


def _zone_problems(field: str, name: str) -> Iterator[ScheduleError]:
    try:
        load_zone(name)
    except ValueError as exc:
        yield ScheduleError(field, str(exc))


def _range_problems(path: str, start: datetime, end: datetime | None) -> Iterator[ScheduleError]:
    if start.utcoffset() is None:
        yield ScheduleError(f"{path}.start", "must be timezone-aware")
        return
    if end is None:
        return
    if end.utcoffset() is None:
        yield ScheduleError(f"{path}.end", "must be timezone-aware")
    elif end <= start:
        yield ScheduleError(f"{path}.end", f"{end.isoformat()} is not after start {start.isoformat()}")


def _wall_time_problems(field: str, value: time | None) -> Iterator[ScheduleError]:
    if value is not None and value.tzinfo is not None:
        yield ScheduleError(field, "must be a naive local wall time (no tzinfo)")


def _layer_problems(path: str, layer: Layer) -> Iterator[ScheduleError]:
    if layer.timezone is not None:
        yield from _zone_problems(f"{path}.timezone", layer.timezone)
    if not layer.participants:
        yield ScheduleError(f"{path}.participants", "needs at least one participant")
    elif not 0 <= layer.start_index < len(layer.participants):
        yield ScheduleError(
            f"{path}.start_index", f"{layer.start_index} is not in 0..{len(layer.participants) - 1}"
        )
    yield from _range_problems(path, layer.start, layer.end)
    yield from _wall_time_problems(f"{path}.handoff_time", layer.handoff_time)
    if layer.handoff_weekday is not None and not 0 <= layer.handoff_weekday <= 6:
        yield ScheduleError(f"{path}.handoff_weekday", f"{layer.handoff_weekday} is not in 0..6 (0 = Monday)")
    if layer.handoff_day is not None and not 1 <= layer.handoff_day <= 31:
        yield ScheduleError(f"{path}.handoff_day", f"{layer.handoff_day} is not in 1..31")
    if layer.interval < 1:
        yield ScheduleError(f"{path}.interval", f"{layer.interval} is less than 1")
    elif layer.interval > MAX_INTERVAL:
        yield ScheduleError(f"{path}.interval", f"{layer.interval} is more than {MAX_INTERVAL}")
    unit_ok = True
    if layer.kind not in get_args(RotationKind):
        yield ScheduleError(
            f"{path}.kind", f"{layer.kind!r} is not one of {', '.join(get_args(RotationKind))}"
        )
        unit_ok = False
    elif layer.kind == "custom" and layer.unit not in get_args(RotationUnit):
        yield ScheduleError(
            f"{path}.unit", f"custom layers need a unit, one of {', '.join(get_args(RotationUnit))}"
        )
        unit_ok = False
    elif layer.kind != "custom" and layer.unit is not None and layer.unit != UNIT_OF_KIND[layer.kind]:
        yield ScheduleError(f"{path}.unit", f"{layer.unit!r} contradicts kind {layer.kind!r}")
    if layer.shift_length is not None:
        if layer.shift_length <= timedelta(0):
            yield ScheduleError(f"{path}.shift_length", "must be positive")
        elif (
            unit_ok
            and layer.interval >= 1
            and layer.shift_length > nominal_span(unit_of(layer), layer.interval)
        ):
            yield ScheduleError(
                f"{path}.shift_length",
                f"{layer.shift_length} is longer than the interval "
                f"({nominal_span(unit_of(layer), layer.interval)})",
            )
    for j, restriction in enumerate(layer.restrictions):
        yield from _restriction_problems(f"{path}.restrictions[{j}]", restriction)


def _restriction_problems(path: str, restriction: Restriction) -> Iterator[ScheduleError]:
    if restriction.kind not in get_args(RestrictionKind):
        yield ScheduleError(f"{path}.kind", f"{restriction.kind!r} is not one of daily, weekly")
        return
    yield from _wall_time_problems(f"{path}.start", restriction.start)
    yield from _wall_time_problems(f"{path}.end", restriction.end)
    weekdays = {"start_weekday": restriction.start_weekday, "end_weekday": restriction.end_weekday}
    for name, weekday in weekdays.items():
        if restriction.kind == "daily" and weekday is not None:
            yield ScheduleError(f"{path}.{name}", "daily windows take no weekday")
            return
        if restriction.kind == "weekly" and (weekday is None or not 0 <= weekday <= 6):
            yield ScheduleError(f"{path}.{name}", f"weekly windows need a weekday in 0..6, got {weekday}")
            return
    start, end = wall_span(restriction)
    same_point = start == end - (timedelta(days=1) if restriction.kind == "daily" else timedelta(days=7))
    if same_point:
        yield ScheduleError(f"{path}.end", "window has zero length (end equals start)")


def _override_problems(path: str, override: Override) -> Iterator[ScheduleError]:
    if override.start.utcoffset() is None:
        yield ScheduleError(f"{path}.start", "must be timezone-aware")
    elif override.end.utcoffset() is None:
        yield ScheduleError(f"{path}.end", "must be timezone-aware")
    elif override.end <= override.start:
        yield ScheduleError(
            f"{path}.end", f"{override.end.isoformat()} is not after start {override.start.isoformat()}"
        )
