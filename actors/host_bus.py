"""How actors publish live events: over PostgreSQL NOTIFY, or collected by the app on SQLite."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from sentinel_app import bus


class CollectingBus:
    """Holds a host's committed events until the app process collects them (embedded SQLite mode).

    With SQLite there is no cross-process bus: the app's relay long-polls `drain_events` and
    republishes what it gets on its own in-process bus.
    """

    def __init__(self) -> None:
        class _Bus(bus.Bus):
            def _fanout(inner, event: bus.Event) -> None:
                self._events.append(event)
                loop = self._loop
                if loop is not None:
                    loop.call_soon_threadsafe(self._ready.set)

        self._events: deque[Any] = deque(maxlen=100_000)
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bus = _Bus()

    async def drain(self, timeout: float) -> list[dict[str, Any]]:
        """Events committed since the last call, waiting up to `timeout` seconds for the first."""
        self._loop = asyncio.get_running_loop()
        if not self._events:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        taken = []
        while self._events:
            event = self._events.popleft()
            taken.append({"kind": event.kind, "data": event.data, "key": event.key})
        return taken


def install_actor_bus(database_url: str) -> CollectingBus | None:
    """Give this actor process the bus of `database_url`; on SQLite, a collector the app drains."""
    if database_url.startswith("sqlite"):
        collector = CollectingBus()
        bus.set_bus(collector.bus)
        return collector
    bus.set_bus(bus.create_bus(database_url))
    return None


class EventSource:
    """Mixin for actors whose committed events the app's relay collects (SQLite mode)."""

    collector: CollectingBus | None = None

    async def drain_events(self, timeout: float = 1.0) -> list[dict[str, Any]]:
        """Committed bus events of this actor (SQLite mode); empty on PostgreSQL."""
        if self.collector is None:
            await asyncio.sleep(timeout)
            return []
        return await self.collector.drain(timeout)
