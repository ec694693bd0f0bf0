"""The alert state machine: firing → acknowledged → resolved, with silences as a time-boxed flag."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

FIRING = "firing"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
OPEN_STATUSES = frozenset({FIRING, ACKNOWLEDGED})

MAX_SILENCE = dt.timedelta(days=7)


class Transition(StrEnum):
    """Something a person or a sender asks of an alert."""

    ACKNOWLEDGE = "acknowledge"
    UNACKNOWLEDGE = "unacknowledge"
    RESOLVE = "resolve"
    SILENCE = "silence"
    UNSILENCE = "unsilence"


class InvalidTransition(Exception):
    """The transition is not allowed from the alert's current state."""

    def __init__(self, transition: Transition, status: str, reason: str) -> None:
        super().__init__(reason)
        self.transition = transition
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class AlertState:
    """The parts of an alert the state machine looks at."""

    status: str
    silenced_until: dt.datetime | None = None

    def silenced(self, now: dt.datetime) -> bool:
        """Whether a silence is in force at `now`."""
        return self.silenced_until is not None and self.silenced_until > now


def apply(
    state: AlertState, transition: Transition, *, now: dt.datetime, silence_for: dt.timedelta | None = None
) -> AlertState:
    """The state after `transition`, or InvalidTransition naming why not."""
    status = state.status
    if status == RESOLVED:
        raise InvalidTransition(transition, status, "the alert is already resolved")
    if transition is Transition.ACKNOWLEDGE:
        if status == ACKNOWLEDGED:
            raise InvalidTransition(transition, status, "the alert is already acknowledged")
        return AlertState(ACKNOWLEDGED, state.silenced_until)
    if transition is Transition.UNACKNOWLEDGE:
        if status != ACKNOWLEDGED:
            raise InvalidTransition(transition, status, "only an acknowledged alert can be unacknowledged")
        return AlertState(FIRING, state.silenced_until)
    if transition is Transition.RESOLVE:
        return AlertState(RESOLVED, None)
    if transition is Transition.SILENCE:
        if silence_for is None or silence_for <= dt.timedelta(0) or silence_for > MAX_SILENCE:
            raise InvalidTransition(transition, status, "a silence lasts more than 0 and at most 7 days")
        return AlertState(status, now + silence_for)
    if not state.silenced(now):
        raise InvalidTransition(transition, status, "the alert is not silenced")
    return AlertState(status, None)


class IngestAction(StrEnum):
    """What an incoming signal does to the alert store."""

    CREATE = "create"
    OCCURRENCE = "occurrence"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    IGNORE = "ignore"


def ingest_action(open_status: str | None, signal: str) -> IngestAction:
    """Decide what a sender's signal (trigger/acknowledge/resolve) does, given the open alert's status.

    A repeat trigger of an open alert is an occurrence and never pages again; a trigger after
    resolution opens a new alert; acknowledge/resolve without an open alert change nothing.
    """
    if signal == "trigger":
        return IngestAction.CREATE if open_status is None else IngestAction.OCCURRENCE
    if open_status is None:
        return IngestAction.IGNORE
    if signal == "resolve":
        return IngestAction.RESOLVE
    if signal == "acknowledge":
        return IngestAction.ACKNOWLEDGE if open_status == FIRING else IngestAction.IGNORE
    raise ValueError(f"unknown signal {signal!r}")
