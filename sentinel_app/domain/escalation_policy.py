"""Escalation policies frozen at trigger time: step kinds, time windows, validation and stored JSON.

An alert escalates through a *snapshot* of its policy, taken when it fires and stored in
``Escalation.policy_snapshot`` (see :func:`snapshot_to_json`), so later edits never change a
running escalation. Rules the storage/API layer relies on:

* Step rows (``EscalationStep``) carry ``targets = {"user_ids", "schedule_ids", "team_ids"}``
  and a kind-specific ``config``: ``{"url": ...}`` for webhook steps and
  ``{"timezone", "weekdays", "start", "end"}`` for time_window steps (weekdays 0 = Monday,
  times "HH:MM" or "HH:MM:SS"). :func:`snapshot_policy` reads only what the kind uses.
* Every problem is an :class:`EscalationError` naming the snapshot field, e.g.
  ``steps[2].window.timezone``, whether it came from rows, JSON or a hand-built snapshot.
* A time window occurrence starts on one of its weekdays at ``start`` and lasts until the
  next ``end`` reading; ``end <= start`` runs past midnight into the next day. Readings follow
  the schedule DST rule (sentinel_app.domain.wallclock): an occurrence runs from the first
  instant the clock shows ``start`` to the first instant it shows ``end``, half-open.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from sentinel_app.domain.wallclock import load_zone, to_instant, to_utc, wall_at


class StepKind(StrEnum):
    """What an escalation step does (also the values stored in ``EscalationStep.kind``)."""

    NOTIFY_USERS = "notify_users"
    NOTIFY_SCHEDULE = "notify_schedule"
    NOTIFY_TEAM = "notify_team"
    ROUND_ROBIN = "round_robin"
    WAIT = "wait"
    WEBHOOK = "webhook"
    TIME_WINDOW = "time_window"
    RESOLVE = "resolve"


NOTIFY_USERS = StepKind.NOTIFY_USERS
NOTIFY_SCHEDULE = StepKind.NOTIFY_SCHEDULE
NOTIFY_TEAM = StepKind.NOTIFY_TEAM
ROUND_ROBIN = StepKind.ROUND_ROBIN
WAIT = StepKind.WAIT
WEBHOOK = StepKind.WEBHOOK
TIME_WINDOW = StepKind.TIME_WINDOW
RESOLVE = StepKind.RESOLVE
STEP_KINDS = (NOTIFY_USERS, NOTIFY_SCHEDULE, NOTIFY_TEAM, ROUND_ROBIN, WAIT, WEBHOOK, TIME_WINDOW, RESOLVE)
# Kinds that page people, with the snapshot field holding their targets.
NOTIFY_TARGETS: dict[str, str] = {
    NOTIFY_USERS: "user_ids",
    NOTIFY_SCHEDULE: "schedule_ids",
    NOTIFY_TEAM: "team_ids",
    ROUND_ROBIN: "user_ids",
}

MAX_REPEAT_COUNT = 10
MAX_STEPS = 50
MAX_DELAY_MINUTES = 7 * 24 * 60
MAX_REESCALATE_MINUTES = 7 * 24 * 60
MAX_URL_LENGTH = 2000
SNAPSHOT_VERSION = 1

DAY = timedelta(days=1)
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class EscalationError(ValueError):
    """A policy field is invalid; `field` is its path, e.g. ``steps[2].window.timezone``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class TimeWindow:
    """Local times on some weekdays (0 = Monday) in an IANA zone; ``end <= start`` spans midnight."""

    timezone: str
    weekdays: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))

    def contains(self, instant: datetime) -> bool:
        """Whether the aware `instant` lies inside an occurrence of the window."""
        zone = load_zone(self.timezone)
        moment = to_utc(instant)
        start, end = self.start.replace(tzinfo=None), self.end.replace(tzinfo=None)
        today = wall_at(moment, zone).date()
        # An occurrence that began yesterday can still run; a fold near midnight can make the
        # clock show a date one day early or late, so look one day further each way.
        for back in (-1, 0, 1, 2):
            day = today - timedelta(days=back)
            if day.weekday() not in self.weekdays:
                continue
            lo = to_instant(datetime.combine(day, start), zone)
            hi = to_instant(datetime.combine(day if end > start else day + DAY, end), zone)
            if lo <= moment < hi:
                return True
        return False

    def describe(self) -> str:
        """A short human reading, e.g. ``Mon-Fri 09:00-17:00 America/New_York``."""
        return f"{_describe_days(self.weekdays)} {_hhmm(self.start)}-{_hhmm(self.end)} {self.timezone}"


@dataclass(frozen=True, kw_only=True)
class StepSnapshot:
    """One step as it was when the alert fired; only the fields its kind uses are meaningful.

    `step_id` is the EscalationStep row id, so a round-robin step can find its live cursor.
    """

    kind: str
    delay_minutes: int = 0
    important: bool = False
    user_ids: tuple[int, ...] = ()
    schedule_ids: tuple[int, ...] = ()
    team_ids: tuple[int, ...] = ()
    webhook_url: str | None = None
    window: TimeWindow | None = None
    step_id: int | None = None

    def __post_init__(self) -> None:
        for name in ("user_ids", "schedule_ids", "team_ids"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclass(frozen=True, kw_only=True)
class PolicySnapshot:
    """A policy frozen at trigger time: its steps run ``repeat_count + 1`` times while unacknowledged."""

    policy_id: int | None
    repeat_count: int = 0
    reescalate_after_ack_minutes: int | None = None
    steps: tuple[StepSnapshot, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))


class PolicyRow(Protocol):
    """What :func:`snapshot_policy` reads of an EscalationPolicy row."""

    @property
    def id(self) -> int | None: ...
    @property
    def repeat_count(self) -> int: ...
    @property
    def reescalate_after_ack_minutes(self) -> int | None: ...


class StepRow(Protocol):
    """What :func:`snapshot_policy` reads of an EscalationStep row."""

    @property
    def id(self) -> int | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def delay_minutes(self) -> int: ...
    @property
    def important(self) -> bool: ...
    @property
    def targets(self) -> Mapping[str, Any]: ...
    @property
    def config(self) -> Mapping[str, Any]: ...


# --- validation -------------------------------------------------------------------------------


def policy_errors(snapshot: PolicySnapshot) -> list[EscalationError]:
    """Return every problem in `snapshot` (an empty list means it is valid)."""
    return list(_policy_problems(snapshot))


def validate_policy(snapshot: PolicySnapshot) -> None:
    """Raise the first EscalationError found in `snapshot`, if any."""
    for error in _policy_problems(snapshot):
        raise error


def _policy_problems(snapshot: PolicySnapshot) -> Iterator[EscalationError]:
    if not _is_int(snapshot.repeat_count) or not 0 <= snapshot.repeat_count <= MAX_REPEAT_COUNT:
        yield EscalationError("repeat_count", f"must be a whole number from 0 to {MAX_REPEAT_COUNT}")
    minutes = snapshot.reescalate_after_ack_minutes
    if minutes is not None and (not _is_int(minutes) or not 1 <= minutes <= MAX_REESCALATE_MINUTES):
        yield EscalationError(
            "reescalate_after_ack_minutes", f"must be empty or from 1 to {MAX_REESCALATE_MINUTES} minutes"
        )
    if len(snapshot.steps) > MAX_STEPS:
        yield EscalationError("steps", f"a policy has at most {MAX_STEPS} steps")
    for i, step in enumerate(snapshot.steps):
        yield from _step_problems(f"steps[{i}]", step)


def _step_problems(path: str, step: StepSnapshot) -> Iterator[EscalationError]:
    if step.kind not in STEP_KINDS:
        yield EscalationError(
            f"{path}.kind", f"unknown step kind {step.kind!r}; one of {', '.join(STEP_KINDS)}"
        )
        return
    if not _is_int(step.delay_minutes) or not 0 <= step.delay_minutes <= MAX_DELAY_MINUTES:
        yield EscalationError(f"{path}.delay_minutes", f"must be from 0 to {MAX_DELAY_MINUTES} minutes")
    target_field = NOTIFY_TARGETS.get(step.kind)
    if target_field is not None:
        ids: tuple[int, ...] = getattr(step, target_field)
        if not ids:
            yield EscalationError(f"{path}.{target_field}", f"a {step.kind} step needs at least one target")
        yield from _id_problems(f"{path}.{target_field}", ids)
    elif step.kind == WEBHOOK:
        yield from _url_problems(f"{path}.webhook_url", step.webhook_url)
    elif step.kind == TIME_WINDOW:
        if step.window is None:
            yield EscalationError(f"{path}.window", "a time_window step needs a window")
        else:
            yield from _window_problems(f"{path}.window", step.window)


def _id_problems(path: str, ids: Sequence[int]) -> Iterator[EscalationError]:
    seen: set[int] = set()
    for j, value in enumerate(ids):
        if not _is_int(value) or value <= 0:
            yield EscalationError(f"{path}[{j}]", f"{value!r} is not a positive integer id")
        elif value in seen:
            yield EscalationError(f"{path}[{j}]", f"id {value} is listed twice")
        else:
            seen.add(value)


def _url_problems(path: str, url: str | None) -> Iterator[EscalationError]:
    if not url:
        yield EscalationError(path, "a webhook step needs an http(s) URL")
        return
    if len(url) > MAX_URL_LENGTH:
        yield EscalationError(path, f"a URL has at most {MAX_URL_LENGTH} characters")
        return
    try:
        parts = urlsplit(url)
        has_host = bool(parts.hostname)
    except ValueError:
        parts, has_host = None, False
    if parts is None or parts.scheme not in ("http", "https") or not has_host:
        yield EscalationError(path, f"{url!r} is not an http(s) URL with a host")
    elif any(c.isspace() for c in url):
        yield EscalationError(path, "a URL cannot contain spaces")


def _window_problems(path: str, window: TimeWindow) -> Iterator[EscalationError]:
    try:
        load_zone(window.timezone)
    except ValueError as exc:
        yield EscalationError(f"{path}.timezone", str(exc))
    if not window.weekdays:
        yield EscalationError(f"{path}.weekdays", "pick at least one weekday")
    for day in sorted(window.weekdays, key=repr):
        if not _is_int(day) or not 0 <= day <= 6:
            yield EscalationError(
                f"{path}.weekdays", f"{day!r} is not a weekday from 0 (Monday) to 6 (Sunday)"
            )
    for name in ("start", "end"):
        if getattr(window, name).tzinfo is not None:
            yield EscalationError(f"{path}.{name}", "a wall-clock time has no UTC offset; set the timezone")
    if window.start.replace(tzinfo=None) == window.end.replace(tzinfo=None):
        yield EscalationError(f"{path}.end", "the window is empty: end equals start")


# --- snapshots from rows ----------------------------------------------------------------------


def snapshot_policy(policy: PolicyRow, steps: Sequence[StepRow]) -> PolicySnapshot:
    """Freeze a policy row and its step rows (in position order); raise EscalationError if invalid.

    Only what each kind uses is read: a wait step's leftover targets are dropped.
    """
    snapshot = PolicySnapshot(
        policy_id=policy.id,
        repeat_count=policy.repeat_count,
        reescalate_after_ack_minutes=policy.reescalate_after_ack_minutes,
        steps=tuple(_step_from_row(f"steps[{i}]", row) for i, row in enumerate(steps)),
    )
    validate_policy(snapshot)
    return snapshot


def _step_from_row(path: str, row: StepRow) -> StepSnapshot:
    kind = str(row.kind)
    if kind not in STEP_KINDS:
        raise EscalationError(f"{path}.kind", f"unknown step kind {kind!r}; one of {', '.join(STEP_KINDS)}")
    targets = _mapping(f"{path}.targets", row.targets)
    config = _mapping(f"{path}.config", row.config)
    target_field = NOTIFY_TARGETS.get(kind)
    ids = {target_field: _ids(f"{path}.{target_field}", targets.get(target_field))} if target_field else {}
    webhook_url = None
    if kind == WEBHOOK:
        url = config.get("url")
        if url is not None and not isinstance(url, str):
            raise EscalationError(f"{path}.webhook_url", "must be a string")
        webhook_url = url
    window = None
    if kind == TIME_WINDOW and config:
        window = _window(f"{path}.window", config)
    return StepSnapshot(
        kind=kind,
        delay_minutes=_int(f"{path}.delay_minutes", row.delay_minutes),
        important=_bool(f"{path}.important", row.important),
        webhook_url=webhook_url,
        window=window,
        step_id=row.id,
        **ids,
    )


# --- stored JSON ------------------------------------------------------------------------------


def snapshot_to_json(snapshot: PolicySnapshot) -> dict[str, Any]:
    """The JSON object stored in ``Escalation.policy_snapshot`` (versioned by its ``"v"`` key)."""
    return {
        "v": SNAPSHOT_VERSION,
        "policy_id": snapshot.policy_id,
        "repeat_count": snapshot.repeat_count,
        "reescalate_after_ack_minutes": snapshot.reescalate_after_ack_minutes,
        "steps": [_step_to_json(step) for step in snapshot.steps],
    }


def _step_to_json(step: StepSnapshot) -> dict[str, Any]:
    window = step.window
    return {
        "kind": step.kind,
        "step_id": step.step_id,
        "delay_minutes": step.delay_minutes,
        "important": step.important,
        "user_ids": list(step.user_ids),
        "schedule_ids": list(step.schedule_ids),
        "team_ids": list(step.team_ids),
        "webhook_url": step.webhook_url,
        "window": None
        if window is None
        else {
            "timezone": window.timezone,
            "weekdays": sorted(window.weekdays),
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
        },
    }


def snapshot_from_json(data: Mapping[str, Any], *, validate: bool = True) -> PolicySnapshot:
    """Read what :func:`snapshot_to_json` wrote; raise EscalationError on anything else."""
    data = _mapping("policy_snapshot", data)
    if data.get("v") != SNAPSHOT_VERSION:
        raise EscalationError("v", f"unsupported snapshot version {data.get('v')!r}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list):
        raise EscalationError("steps", "must be a list")
    reescalate = data.get("reescalate_after_ack_minutes")
    policy_id = data.get("policy_id")
    snapshot = PolicySnapshot(
        policy_id=None if policy_id is None else _int("policy_id", policy_id),
        repeat_count=_int("repeat_count", data.get("repeat_count")),
        reescalate_after_ack_minutes=None
        if reescalate is None
        else _int("reescalate_after_ack_minutes", reescalate),
        steps=tuple(_step_from_json(f"steps[{i}]", raw) for i, raw in enumerate(raw_steps)),
    )
    if validate:
        validate_policy(snapshot)
    return snapshot


def _step_from_json(path: str, raw: Any) -> StepSnapshot:
    data = _mapping(path, raw)
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise EscalationError(f"{path}.kind", "must be a string")
    url = data.get("webhook_url")
    if url is not None and not isinstance(url, str):
        raise EscalationError(f"{path}.webhook_url", "must be a string")
    step_id = data.get("step_id")
    window = data.get("window")
    return StepSnapshot(
        kind=kind,
        step_id=None if step_id is None else _int(f"{path}.step_id", step_id),
        delay_minutes=_int(f"{path}.delay_minutes", data.get("delay_minutes")),
        important=_bool(f"{path}.important", data.get("important")),
        user_ids=_ids(f"{path}.user_ids", data.get("user_ids")),
        schedule_ids=_ids(f"{path}.schedule_ids", data.get("schedule_ids")),
        team_ids=_ids(f"{path}.team_ids", data.get("team_ids")),
        webhook_url=url,
        window=None if window is None else _window(f"{path}.window", window),
    )


# --- shape checks shared by rows and JSON -----------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(path: str, value: Any) -> int:
    if not _is_int(value):
        raise EscalationError(path, f"{value!r} is not a whole number")
    return int(value)


def _bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise EscalationError(path, f"{value!r} is not true or false")
    return value


def _mapping(path: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EscalationError(path, "must be a JSON object")
    return value


def _ids(path: str, value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise EscalationError(path, "must be a list of ids")
    return tuple(_int(f"{path}[{j}]", item) for j, item in enumerate(value))


def _window(path: str, value: Any) -> TimeWindow:
    data = _mapping(path, value)
    zone = data.get("timezone")
    if not isinstance(zone, str):
        raise EscalationError(f"{path}.timezone", "must be an IANA timezone name")
    days = data.get("weekdays")
    if not isinstance(days, list | tuple):
        raise EscalationError(f"{path}.weekdays", "must be a list of weekdays, 0 (Monday) to 6 (Sunday)")
    return TimeWindow(
        timezone=zone,
        weekdays=frozenset(_int(f"{path}.weekdays", day) for day in days),
        start=_time(f"{path}.start", data.get("start")),
        end=_time(f"{path}.end", data.get("end")),
    )


def _time(path: str, value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise EscalationError(path, f"{value!r} is not a time like 09:00")


def _hhmm(moment: time) -> str:
    return moment.strftime("%H:%M:%S" if moment.second or moment.microsecond else "%H:%M")


def _describe_days(weekdays: frozenset[int]) -> str:
    days = sorted(weekdays)
    if days and days == list(range(days[0], days[-1] + 1)) and len(days) > 2:
        return f"{WEEKDAY_NAMES[days[0]]}-{WEEKDAY_NAMES[days[-1]]}"
    return ",".join(WEEKDAY_NAMES[d] for d in days if 0 <= d <= 6)
