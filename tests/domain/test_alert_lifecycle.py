"""The alert state machine, table-driven and property-based."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel_app.domain.alert_lifecycle import (
    ACKNOWLEDGED,
    FIRING,
    RESOLVED,
    AlertState,
    IngestAction,
    InvalidTransition,
    Transition,
    apply,
    ingest_action,
)

NOW = dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("status", "transition", "expected"),
    [
        (FIRING, Transition.ACKNOWLEDGE, ACKNOWLEDGED),
        (ACKNOWLEDGED, Transition.UNACKNOWLEDGE, FIRING),
        (FIRING, Transition.RESOLVE, RESOLVED),
        (ACKNOWLEDGED, Transition.RESOLVE, RESOLVED),
    ],
)
def test_allowed_transitions(status: str, transition: Transition, expected: str) -> None:
    assert apply(AlertState(status), transition, now=NOW).status == expected


@pytest.mark.parametrize(
    ("status", "transition", "reason"),
    [
        (ACKNOWLEDGED, Transition.ACKNOWLEDGE, "already acknowledged"),
        (FIRING, Transition.UNACKNOWLEDGE, "only an acknowledged alert"),
        (RESOLVED, Transition.ACKNOWLEDGE, "already resolved"),
        (RESOLVED, Transition.RESOLVE, "already resolved"),
        (RESOLVED, Transition.UNACKNOWLEDGE, "already resolved"),
        (RESOLVED, Transition.SILENCE, "already resolved"),
        (FIRING, Transition.UNSILENCE, "not silenced"),
    ],
)
def test_invalid_transitions_say_why(status: str, transition: Transition, reason: str) -> None:
    with pytest.raises(InvalidTransition, match=reason) as info:
        apply(AlertState(status), transition, now=NOW, silence_for=HOUR)
    assert info.value.status == status


def test_silence_is_time_boxed_and_expires_by_itself() -> None:
    silenced = apply(AlertState(FIRING), Transition.SILENCE, now=NOW, silence_for=HOUR)
    assert silenced.status == FIRING and silenced.silenced_until == NOW + HOUR
    assert silenced.silenced(NOW + HOUR - dt.timedelta(seconds=1))
    assert not silenced.silenced(NOW + HOUR)
    with pytest.raises(InvalidTransition):
        apply(silenced, Transition.UNSILENCE, now=NOW + HOUR)
    assert apply(silenced, Transition.UNSILENCE, now=NOW).silenced_until is None


@pytest.mark.parametrize("duration", [dt.timedelta(0), -HOUR, dt.timedelta(days=7, seconds=1)])
def test_silence_duration_is_bounded(duration: dt.timedelta) -> None:
    with pytest.raises(InvalidTransition, match="at most 7 days"):
        apply(AlertState(FIRING), Transition.SILENCE, now=NOW, silence_for=duration)


def test_acknowledging_keeps_a_silence_and_resolving_clears_it() -> None:
    silenced = AlertState(FIRING, NOW + HOUR)
    assert apply(silenced, Transition.ACKNOWLEDGE, now=NOW).silenced_until == NOW + HOUR
    assert apply(silenced, Transition.RESOLVE, now=NOW).silenced_until is None


@pytest.mark.parametrize(
    ("open_status", "signal", "expected"),
    [
        (None, "trigger", IngestAction.CREATE),
        (FIRING, "trigger", IngestAction.OCCURRENCE),
        (ACKNOWLEDGED, "trigger", IngestAction.OCCURRENCE),
        (None, "resolve", IngestAction.IGNORE),
        (FIRING, "resolve", IngestAction.RESOLVE),
        (ACKNOWLEDGED, "resolve", IngestAction.RESOLVE),
        (None, "acknowledge", IngestAction.IGNORE),
        (FIRING, "acknowledge", IngestAction.ACKNOWLEDGE),
        (ACKNOWLEDGED, "acknowledge", IngestAction.IGNORE),
    ],
)
def test_ingest_decisions(open_status: str | None, signal: str, expected: IngestAction) -> None:
    assert ingest_action(open_status, signal) is expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(Transition)), max_size=20), st.integers(min_value=1, max_value=600))
def test_any_sequence_keeps_the_machine_consistent(transitions: list[Transition], minutes: int) -> None:
    state, now = AlertState(FIRING), NOW
    for transition in transitions:
        before = state
        try:
            state = apply(state, transition, now=now, silence_for=dt.timedelta(minutes=minutes))
        except InvalidTransition as exc:
            assert exc.status == before.status
            state = before
        assert state.status in {FIRING, ACKNOWLEDGED, RESOLVED}
        if before.status == RESOLVED:
            assert state == before  # resolved is final
        if state.status == RESOLVED:
            assert state.silenced_until is None
        now += dt.timedelta(minutes=7)
