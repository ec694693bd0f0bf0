"""The app process's link to its actors: creates the hosts and dispatchers, and forwards events to hosts.

Services never call Ray: they commit, publishing ``escalation.changed`` / ``oncall.changed`` on
the event bus. This relay, one per app process, turns those events into batched host messages
(one Ray call per shard per few milliseconds, see TESTING-PEERS.md on batching). If Ray is down
the events are simply not delivered; hosts catch up from the database (rehydration, sweeper).
On SQLite the hosts' own events (steps run, hand-offs) are collected from them and republished
here, since the embedded bus does not cross processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from actors.escalation_host import get_host
from actors.schedule_host import get_schedule_host
from sentinel_app import bus
from sentinel_app.services.escalations import CHANGED, shard_of
from sentinel_app.settings import Settings

log = logging.getLogger(__name__)

BATCH_WINDOW_S = 0.005
BATCH_MAX = 2_000
CALL_TIMEOUT_S = 10.0


def host_configs(
    settings: Settings, *, manual_clock: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Constructor configs of every escalation host and schedule host of this installation."""
    url = settings.effective_database_url
    base = {
        "database_url": url,
        "log_level": settings.log_level,
        "sweep_seconds": settings.escalation_sweep_seconds,
        "grace_seconds": settings.escalation_grace_seconds,
        "schedule_shards": settings.schedule_hosts,
        "dispatchers": settings.dispatchers,
        "ray_namespace": settings.ray_namespace,
        "manual_clock": manual_clock,
    }
    # SQLite has one writer: more than one escalation host would only contend for its lock.
    count = 1 if url.startswith("sqlite") else settings.escalation_shards
    escalation = [{**base, "shard": i, "shard_count": count} for i in range(count)]
    schedule = [
        {**base, "shard": i, "shard_count": settings.schedule_hosts} for i in range(settings.schedule_hosts)
    ]
    return escalation, schedule


class Relay:
    """Forwards bus events to the hosts of one installation."""

    def __init__(self, settings: Settings, *, manual_clock: str | None = None) -> None:
        self.settings = settings
        self.escalation_configs, self.schedule_configs = host_configs(settings, manual_clock=manual_clock)
        self.hosts: list[Any] = []
        self.schedule_hosts: list[Any] = []
        self.dispatchers: list[Any] = []
        self.delivered = 0
        self.failures = 0

    @property
    def shard_count(self) -> int:
        """How many escalation hosts there are."""
        return len(self.escalation_configs)

    def ensure_hosts(self, *, dispatchers: bool = True) -> None:
        """Create (or find) every host and the dispatcher pool; blocking, call from a thread."""
        self.hosts = [get_host(c) for c in self.escalation_configs]
        self.schedule_hosts = [get_schedule_host(c) for c in self.schedule_configs]
        if dispatchers and self.settings.dispatchers:
            from actors.dispatcher import start_dispatchers

            self.dispatchers = start_dispatchers(self.settings)

    async def deliver(self, events: list[bus.Event]) -> None:
        """Send one batch of events to the hosts they concern."""
        by_shard: dict[int, list[dict[str, Any]]] = defaultdict(list)
        schedules: dict[int, set[int]] = defaultdict(set)
        sweep = False
        for event in events:
            if event.kind == CHANGED:
                by_shard[shard_of(int(event.data["alert_id"]), self.shard_count)].append(event.data)
            elif event.kind == "oncall.changed" and event.data.get("reason") != "handoff":
                schedule_id = int(event.data["schedule_id"])
                schedules[schedule_id % max(1, len(self.schedule_hosts))].add(schedule_id)
            elif event.kind in (bus.OVERFLOW, bus.RECONNECTED):
                sweep = True  # events were dropped or missed: let every host look at the database now
        calls = [self.hosts[shard].deliver.remote(msgs) for shard, msgs in by_shard.items()]
        calls += [
            self.schedule_hosts[shard].invalidate.remote(sorted(ids)) for shard, ids in schedules.items()
        ]
        if sweep:
            calls += [host.sweep.remote() for host in self.hosts]
        if not calls:
            return
        results = await asyncio.gather(
            *(asyncio.wait_for(asyncio.wrap_future(c.future()), CALL_TIMEOUT_S) for c in calls),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                self.failures += 1
                log.warning("escalation hosts unreachable (%s); they will catch up from the database", result)
            else:
                self.delivered += 1

    async def run(self) -> None:
        """Create the hosts, then forward events until cancelled."""
        await asyncio.to_thread(self.ensure_hosts)
        tasks = []
        if self.settings.effective_database_url.startswith("sqlite"):
            actors = [*self.hosts, *self.schedule_hosts, *self.dispatchers]
            tasks = [asyncio.create_task(self._collect(h)) for h in actors]
        try:
            async with bus.subscribe({CHANGED, "oncall.changed"}, maxsize=50_000) as sub:
                async for first in sub:
                    await asyncio.sleep(BATCH_WINDOW_S)
                    batch = [first, *sub.take_ready(BATCH_MAX)]
                    try:
                        await self.deliver(batch)
                    except Exception:  # never let one bad batch stop the relay
                        log.exception("relay batch failed")
        finally:
            for task in tasks:
                task.cancel()

    async def _collect(self, host: Any) -> None:
        """Republish a host's committed events on this process's bus (SQLite mode)."""
        while True:
            try:
                events = await asyncio.wait_for(
                    asyncio.wrap_future(host.drain_events.remote(1.0).future()), 30
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot collect host events (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            for event in events:
                await bus.publish_now(event["kind"], event["data"], event["key"])
