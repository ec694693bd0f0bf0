"""Clocks and timers for the hosts: the real ones, and a manual pair that tests fast-forward."""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

from sentinel_app.db import utcnow


class Clock(Protocol):
    """Where a host reads the time."""

    def now(self) -> dt.datetime:
        """The current instant (aware UTC)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> dt.datetime:
        """The current instant (aware UTC)."""
        return utcnow()


class Timers(Protocol):
    """One-shot callbacks at instants; `cancel` takes what `call_at` returned."""

    def call_at(self, when: dt.datetime, callback: Callable[[], None]) -> object:
        """Run `callback` at `when` (at once if it is past)."""
        ...

    def cancel(self, handle: object) -> None:
        """Forget a pending callback."""
        ...


class LoopTimers:
    """Timers on the asyncio loop, translated from wall-clock instants."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def call_at(self, when: dt.datetime, callback: Callable[[], None]) -> object:
        """Run `callback` at `when` (at once if it is past)."""
        delay = max(0.0, (when - self.clock.now()).total_seconds())
        return asyncio.get_running_loop().call_later(delay, callback)

    def cancel(self, handle: object) -> None:
        """Forget a pending callback."""
        assert isinstance(handle, asyncio.TimerHandle)
        handle.cancel()


class ManualClock:
    """A clock that moves only when told; its timers fire as it passes their instants."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = start
        self._heap: list[tuple[dt.datetime, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._seq = itertools.count()

    def now(self) -> dt.datetime:
        """The current (fake) instant."""
        return self._now

    def call_at(self, when: dt.datetime, callback: Callable[[], None]) -> object:
        """Run `callback` when the clock reaches `when` (on the next `advance_to` if it is past)."""
        seq = next(self._seq)
        heapq.heappush(self._heap, (when, seq, callback))
        return seq

    def cancel(self, handle: object) -> None:
        """Forget a pending callback."""
        assert isinstance(handle, int)
        self._cancelled.add(handle)

    def pop_due(self, until: dt.datetime) -> Callable[[], None] | None:
        """The next callback due at or before `until`, moving the clock to its instant."""
        while self._heap and self._heap[0][0] <= until:
            when, seq, callback = heapq.heappop(self._heap)
            if seq in self._cancelled:
                self._cancelled.discard(seq)
                continue
            self._now = max(self._now, when)
            return callback
        return None

    def set(self, instant: dt.datetime) -> None:
        """Move the clock (never backwards)."""
        self._now = max(self._now, instant)
