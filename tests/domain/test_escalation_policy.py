"""Escalation policy snapshots: reading rows, validation with field paths, stored JSON, time windows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from typing import Any

import pytest

from sentinel_app.domain.escalation import (
    STEP_KINDS,
    EscalationError,
    PolicySnapshot,
    StepSnapshot,
    TimeWindow,
    policy_errors,
    snapshot_from_json,
    snapshot_policy,
    snapshot_to_json,
    validate_policy,
)
from sentinel_app.models.escalation import EscalationPolicy, EscalationState, EscalationStep, StepKind
from sentinel_app.models.notifications import ContactKind

NY = "America/New_York"
WORKDAYS = frozenset(range(5))
OFFICE = TimeWindow(NY, WORKDAYS, time(9), time(17))


def z(text: str) -> datetime:
    """A UTC instant from ``2026-03-08T06:30``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def valid_policy() -> PolicySnapshot:
    return PolicySnapshot(
        policy_id=7,
        repeat_count=2,
        reescalate_after_ack_minutes=30,
        steps=(
            StepSnapshot(kind="notify_users", delay_minutes=5, user_ids=(1, 2)),
            StepSnapshot(kind="time_window", window=OFFICE),
            StepSnapshot(kind="webhook", webhook_url="https://hooks.example.com/x"),
            StepSnapshot(kind="notify_schedule", delay_minutes=10, important=True, schedule_ids=(4,)),
        ),
    )


def test_step_kinds_and_states_match_the_models() -> None:
    from sentinel_app.domain.escalation import ACTIVE, DONE, PAUSED
    from sentinel_app.domain.notification_plan import METHODS

    assert set(STEP_KINDS) == {k.value for k in StepKind}
    assert {ACTIVE, PAUSED, DONE} == {s.value for s in EscalationState}
    assert set(METHODS) == {"push"} | {k.value for k in ContactKind}


def test_a_valid_policy_passes() -> None:
    validate_policy(valid_policy())
    assert policy_errors(valid_policy()) == []


def _step(i: int, **changes: Any) -> PolicySnapshot:
    policy = valid_policy()
    steps = list(policy.steps)
    steps[i] = replace(steps[i], **changes)
    return replace(policy, steps=tuple(steps))


@pytest.mark.parametrize(
    ("policy", "field", "message"),
    [
        (replace(valid_policy(), repeat_count=11), "repeat_count", "0 to 10"),
        (replace(valid_policy(), repeat_count=-1), "repeat_count", "0 to 10"),
        (replace(valid_policy(), reescalate_after_ack_minutes=0), "reescalate_after_ack_minutes", "from 1"),
        (_step(0, delay_minutes=-1), "steps[0].delay_minutes", "from 0"),
        (_step(0, delay_minutes=7 * 24 * 60 + 1), "steps[0].delay_minutes", "from 0"),
        (_step(0, user_ids=()), "steps[0].user_ids", "at least one target"),
        (_step(0, user_ids=(1, 1)), "steps[0].user_ids[1]", "listed twice"),
        (_step(0, user_ids=(0,)), "steps[0].user_ids[0]", "positive integer"),
        (_step(3, schedule_ids=()), "steps[3].schedule_ids", "at least one target"),
        (_step(3, kind="notify_team"), "steps[3].team_ids", "at least one target"),
        (_step(3, kind="round_robin"), "steps[3].user_ids", "at least one target"),
        (_step(2, webhook_url=None), "steps[2].webhook_url", "URL"),
        (_step(2, webhook_url="ftp://example.com/x"), "steps[2].webhook_url", "URL"),
        (_step(2, webhook_url="https:///nohost"), "steps[2].webhook_url", "URL"),
        (_step(2, webhook_url="https://exa mple.com"), "steps[2].webhook_url", "spaces"),
        (_step(1, window=None), "steps[1].window", "needs a window"),
        (
            _step(1, window=replace(OFFICE, timezone="Mars/Olympus")),
            "steps[1].window.timezone",
            "unknown IANA",
        ),
        (_step(1, window=replace(OFFICE, timezone="+02:00")), "steps[1].window.timezone", "IANA"),
        (_step(1, window=replace(OFFICE, weekdays=frozenset())), "steps[1].window.weekdays", "at least one"),
        (
            _step(1, window=replace(OFFICE, weekdays=frozenset({7}))),
            "steps[1].window.weekdays",
            "not a weekday",
        ),
        (_step(1, window=replace(OFFICE, end=time(9))), "steps[1].window.end", "empty"),
        (_step(1, window=replace(OFFICE, start=time(9, tzinfo=UTC))), "steps[1].window.start", "UTC offset"),
        (_step(0, kind="page_everyone"), "steps[0].kind", "unknown step kind"),
        (replace(valid_policy(), steps=(StepSnapshot(kind="wait"),) * 51), "steps", "at most 50"),
    ],
)
def test_invalid_policies_name_the_field(policy: PolicySnapshot, field: str, message: str) -> None:
    with pytest.raises(EscalationError, match=message) as info:
        validate_policy(policy)
    assert info.value.field == field


def test_policy_errors_reports_every_problem() -> None:
    policy = replace(_step(0, user_ids=()), repeat_count=12)
    assert [e.field for e in policy_errors(policy)] == ["repeat_count", "steps[0].user_ids"]


def test_an_empty_policy_is_valid() -> None:
    validate_policy(PolicySnapshot(policy_id=1))


# --- rows -------------------------------------------------------------------------------------


def _row(position: int, kind: StepKind, **fields: Any) -> EscalationStep:
    return EscalationStep(id=100 + position, policy_id=7, position=position, kind=kind, **fields)


def test_snapshot_policy_reads_rows_and_keeps_only_what_each_kind_uses() -> None:
    policy = EscalationPolicy(id=7, team_id=1, name="Ops", repeat_count=1, reescalate_after_ack_minutes=60)
    rows = [
        _row(0, StepKind.NOTIFY_USERS, delay_minutes=5, targets={"user_ids": [3, 4], "team_ids": [9]}),
        _row(1, StepKind.WAIT, delay_minutes=10, targets={"user_ids": [3]}),
        _row(
            2,
            StepKind.TIME_WINDOW,
            config={"timezone": NY, "weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:30"},
        ),
        _row(3, StepKind.WEBHOOK, config={"url": "https://hooks.example.com/a"}),
        _row(4, StepKind.ROUND_ROBIN, important=True, targets={"user_ids": [5, 6, 7]}),
        _row(5, StepKind.RESOLVE),
    ]
    snapshot = snapshot_policy(policy, rows)
    assert snapshot == PolicySnapshot(
        policy_id=7,
        repeat_count=1,
        reescalate_after_ack_minutes=60,
        steps=(
            StepSnapshot(kind="notify_users", delay_minutes=5, user_ids=(3, 4), step_id=100),
            StepSnapshot(kind="wait", delay_minutes=10, step_id=101),
            StepSnapshot(kind="time_window", window=replace(OFFICE, end=time(17, 30)), step_id=102),
            StepSnapshot(kind="webhook", webhook_url="https://hooks.example.com/a", step_id=103),
            StepSnapshot(kind="round_robin", important=True, user_ids=(5, 6, 7), step_id=104),
            StepSnapshot(kind="resolve", step_id=105),
        ),
    )


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (_row(0, StepKind.NOTIFY_USERS, targets={"user_ids": "3"}), "steps[0].user_ids"),
        (_row(0, StepKind.NOTIFY_USERS, targets={"user_ids": ["a"]}), "steps[0].user_ids[0]"),
        (_row(0, StepKind.NOTIFY_USERS, targets={}), "steps[0].user_ids"),
        (_row(0, StepKind.NOTIFY_SCHEDULE, targets={"user_ids": [1]}), "steps[0].schedule_ids"),
        (_row(0, StepKind.WEBHOOK, config={"url": 5}), "steps[0].webhook_url"),
        (_row(0, StepKind.WEBHOOK), "steps[0].webhook_url"),
        (_row(0, StepKind.TIME_WINDOW), "steps[0].window"),
        (
            _row(
                0,
                StepKind.TIME_WINDOW,
                config={"timezone": NY, "weekdays": [1], "start": "9am", "end": "17:00"},
            ),
            "steps[0].window.start",
        ),
        (
            _row(
                0,
                StepKind.TIME_WINDOW,
                config={"timezone": "Nowhere/City", "weekdays": [1], "start": "09:00", "end": "17:00"},
            ),
            "steps[0].window.timezone",
        ),
        (
            _row(
                0,
                StepKind.TIME_WINDOW,
                config={"timezone": NY, "weekdays": 1, "start": "09:00", "end": "17:00"},
            ),
            "steps[0].window.weekdays",
        ),
        (_row(0, StepKind.WAIT, delay_minutes=-5), "steps[0].delay_minutes"),
    ],
)
def test_snapshot_policy_rejects_bad_rows_with_snapshot_field_paths(row: EscalationStep, field: str) -> None:
    policy = EscalationPolicy(id=7, team_id=1, name="Ops")
    with pytest.raises(EscalationError) as info:
        snapshot_policy(policy, [row])
    assert info.value.field == field


# --- JSON -------------------------------------------------------------------------------------


def test_json_round_trip_and_version_key() -> None:
    policy = replace(
        valid_policy(),
        steps=(*valid_policy().steps, StepSnapshot(kind="round_robin", user_ids=(5, 6), step_id=9)),
    )
    data = snapshot_to_json(policy)
    assert data["v"] == 1
    assert data["steps"][1]["window"] == {
        "timezone": NY,
        "weekdays": [0, 1, 2, 3, 4],
        "start": "09:00:00",
        "end": "17:00:00",
    }
    assert snapshot_from_json(data) == policy


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"v": 2, "steps": []}, "v"),
        ({"repeat_count": 0, "steps": []}, "v"),
        ({"v": 1, "repeat_count": 0, "steps": {}}, "steps"),
        ({"v": 1, "repeat_count": "1", "steps": []}, "repeat_count"),
        ({"v": 1, "repeat_count": 0, "steps": [{"kind": "wait", "delay_minutes": 1}]}, "steps[0].important"),
        (
            {
                "v": 1,
                "repeat_count": 0,
                "steps": [{"kind": "wait", "delay_minutes": 1.5, "important": False}],
            },
            "steps[0].delay_minutes",
        ),
        ({"v": 1, "repeat_count": 11, "steps": []}, "repeat_count"),
    ],
)
def test_bad_json_is_rejected(data: dict[str, Any], field: str) -> None:
    with pytest.raises(EscalationError) as info:
        snapshot_from_json(data)
    assert info.value.field == field


# --- time windows -----------------------------------------------------------------------------

SUNDAY = frozenset({6})
SATURDAY = frozenset({5})


@pytest.mark.parametrize(
    ("window", "instant", "inside"),
    [
        # Office hours across the spring change (Sun 2026-03-08): 09:00 is 14:00Z before, 13:00Z after.
        (OFFICE, "2026-03-06T13:30", False),  # Fri 08:30 EST
        (OFFICE, "2026-03-06T14:00", True),  # Fri 09:00 EST
        (OFFICE, "2026-03-09T13:00", True),  # Mon 09:00 EDT
        (OFFICE, "2026-03-09T12:59", False),  # Mon 08:59 EDT
        (OFFICE, "2026-03-09T21:00", False),  # Mon 17:00 EDT: end is exclusive
        (OFFICE, "2026-03-08T15:00", False),  # Sunday
        # ...and the autumn change (Sun 2026-11-01): 09:00 is 13:00Z before, 14:00Z after.
        (OFFICE, "2026-10-30T13:30", True),  # Fri 09:30 EDT
        (OFFICE, "2026-11-02T13:30", False),  # Mon 08:30 EST
        (OFFICE, "2026-11-02T14:00", True),  # Mon 09:00 EST
        # Spring forward 02:00 -> 03:00: 01:00-03:00 lasts one hour, [06:00Z, 07:00Z).
        (TimeWindow(NY, SUNDAY, time(1), time(3)), "2026-03-08T05:59", False),
        (TimeWindow(NY, SUNDAY, time(1), time(3)), "2026-03-08T06:30", True),
        (TimeWindow(NY, SUNDAY, time(1), time(3)), "2026-03-08T07:00", False),
        # A start inside the gap (02:30) begins when the gap ends (03:00 EDT = 07:00Z).
        (TimeWindow(NY, SUNDAY, time(2, 30), time(4)), "2026-03-08T06:59", False),
        (TimeWindow(NY, SUNDAY, time(2, 30), time(4)), "2026-03-08T07:00", True),
        (TimeWindow(NY, SUNDAY, time(2, 30), time(4)), "2026-03-08T07:59", True),
        (TimeWindow(NY, SUNDAY, time(2, 30), time(4)), "2026-03-08T08:00", False),
        # Fall back 02:00 EDT -> 01:00 EST: 00:00-01:30 ends at the first 01:30 (05:30Z)...
        (TimeWindow(NY, SUNDAY, time(0), time(1, 30)), "2026-11-01T05:15", True),  # 01:15 EDT
        (TimeWindow(NY, SUNDAY, time(0), time(1, 30)), "2026-11-01T05:30", False),
        (TimeWindow(NY, SUNDAY, time(0), time(1, 30)), "2026-11-01T06:15", False),  # 01:15 EST, repeated
        # ...and 01:30-02:00 runs from the first 01:30 until the clock reads 02:00 EST (07:00Z).
        (TimeWindow(NY, SUNDAY, time(1, 30), time(2)), "2026-11-01T05:29", False),
        (TimeWindow(NY, SUNDAY, time(1, 30), time(2)), "2026-11-01T06:15", True),
        (TimeWindow(NY, SUNDAY, time(1, 30), time(2)), "2026-11-01T06:59", True),
        (TimeWindow(NY, SUNDAY, time(1, 30), time(2)), "2026-11-01T07:00", False),
        # Overnight windows starting Saturday: 7 h on the spring night, 9 h on the autumn night.
        (TimeWindow(NY, SATURDAY, time(22), time(6)), "2026-03-08T02:59", False),
        (TimeWindow(NY, SATURDAY, time(22), time(6)), "2026-03-08T03:00", True),
        (TimeWindow(NY, SATURDAY, time(22), time(6)), "2026-03-08T09:59", True),
        (TimeWindow(NY, SATURDAY, time(22), time(6)), "2026-03-08T10:00", False),
        (TimeWindow(NY, SATURDAY, time(22), time(6)), "2026-11-01T02:00", True),
        (TimeWindow(NY, SATURDAY, time(22), time(6)), "2026-11-01T10:59", True),
        (TimeWindow(NY, SATURDAY, time(22), time(6)), "2026-11-01T11:00", False),
        # Spanning midnight in UTC, Friday 2026-06-05 22:00 to Saturday 06:00.
        (TimeWindow("UTC", frozenset({4}), time(22), time(6)), "2026-06-05T21:59", False),
        (TimeWindow("UTC", frozenset({4}), time(22), time(6)), "2026-06-05T23:00", True),
        (TimeWindow("UTC", frozenset({4}), time(22), time(6)), "2026-06-06T05:59", True),
        (TimeWindow("UTC", frozenset({4}), time(22), time(6)), "2026-06-06T06:00", False),
        (
            TimeWindow("UTC", frozenset({4}), time(22), time(6)),
            "2026-06-06T22:30",
            False,
        ),  # Saturday's own night
        # Sunday night runs into Monday (across the week boundary).
        (TimeWindow("UTC", SUNDAY, time(22), time(6)), "2026-06-08T05:00", True),
        (TimeWindow("UTC", SUNDAY, time(22), time(6)), "2026-06-08T22:30", False),
    ],
)
def test_time_window_membership(window: TimeWindow, instant: str, inside: bool) -> None:
    assert window.contains(z(instant)) is inside


def test_time_window_rejects_naive_instants() -> None:
    with pytest.raises(ValueError, match="naive"):
        OFFICE.contains(datetime(2026, 3, 9, 10))


def test_time_window_describe() -> None:
    assert OFFICE.describe() == "Mon-Fri 09:00-17:00 America/New_York"
    assert TimeWindow("UTC", frozenset({0, 2}), time(22), time(6, 30)).describe() == "Mon,Wed 22:00-06:30 UTC"
