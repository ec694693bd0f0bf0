"""EscalationHost: a Ray actor holding one live AlertEscalation actor object per open alert of its shard.

"One live escalation actor per alert" is realised as virtual actors (ARCHITECTURE.md): a host is
an async Ray actor; inside it each open alert has an :class:`AlertEscalation` with its own
mailbox (messages handled one at a time, in order) and its own timer. When a timer fires the
step is claimed in the database by compare-and-set (`services.escalation_steps.run_step`), and
only then is the timer re-armed for the row's next due time. The database stays the source of
truth: a host rebuilds every actor of its shard from it on start (rehydration), and its
sweeper runs due rows that no timer ran. Messages only carry hints (the row's new due time and
version); a lost or repeated message costs at most a sweep period, never a page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from actors.clock import Clock, LoopTimers, ManualClock, SystemClock, Timers
from actors.host_bus import EventSource, install_actor_bus
from sentinel_app.db import session_scope
from sentinel_app.services import escalations
from sentinel_app.services.escalation_steps import OnCallLookup, StepResult, run_step

log = logging.getLogger(__name__)

# Zero-delay steps run back to back in one tick; this bounds a policy of many of them.
MAX_STEPS_PER_TICK = 64
# How soon to look again at a row another worker was claiming.
LOCKED_RETRY = dt.timedelta(seconds=1)
# How soon to retry after the database failed.
ERROR_RETRY = dt.timedelta(seconds=5)
LATENESS_SAMPLES = 200_000


@dataclass(slots=True)
class AlertEscalation:
    """The live actor of one alert: its mailbox, its timer, and the row version it last saw."""

    alert_id: int
    escalation_id: int
    due: dt.datetime | None = None
    version: int = -1
    timer: object | None = None
    mailbox: deque[tuple[str, dt.datetime | None, int]] | None = None
    busy: bool = False


@dataclass
class HostStats:
    """Counters a host reports (for /readyz, tests and benchmarks)."""

    ticks: int = 0
    steps: int = 0
    notifications: int = 0
    lost_claims: int = 0
    errors: int = 0
    swept: int = 0
    rehydrated: int = 0
    rehydrate_seconds: float = 0.0
    lateness_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENESS_SAMPLES))


def _parse_instant(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


class EscalationCore:
    """The host's logic without Ray, so tests can also drive it in-process."""

    def __init__(
        self,
        *,
        engine: sa.Engine,
        shard: int = 0,
        shard_count: int = 1,
        clock: Clock | None = None,
        sweep_seconds: float | None = 10.0,
        grace_seconds: float = 5.0,
        on_call: OnCallLookup | None = None,
        after_step: Callable[[StepResult], None] | None = None,
        workers: int | None = None,
    ) -> None:
        self.engine = engine
        self.shard, self.shard_count = shard, shard_count
        self.clock: Clock = clock or SystemClock()
        self.timers: Timers = self.clock if isinstance(self.clock, ManualClock) else LoopTimers(self.clock)
        self.sweep_seconds = sweep_seconds
        self.grace = dt.timedelta(seconds=grace_seconds)
        self.on_call = on_call
        self.after_step = after_step
        sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time; more threads would only queue on its lock. On
        # PostgreSQL two per host keep the database busy while leaving the timers' event loop
        # most of the GIL (claims are Python-heavy; hosts default to one per core).
        self.executor = ThreadPoolExecutor(
            max_workers=workers or (1 if sqlite else 2), thread_name_prefix="esc"
        )
        # Rehydration and sweeps read in their own thread, never queued behind a burst of claims.
        self.scanner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="esc-scan")
        self.actors: dict[int, AlertEscalation] = {}
        self.stats = HostStats()
        self._inflight: set[asyncio.Task[None]] = set()
        self._background: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    # --- messages -----------------------------------------------------------------------------

    def deliver(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """Post batched messages ``{"alert_id", "id", "kind", "next_at", "version"}`` to their actors."""
        taken = 0
        for msg in messages:
            alert_id = int(msg["alert_id"])
            if escalations.shard_of(alert_id, self.shard_count) != self.shard:
                continue
            actor = self._actor(alert_id, int(msg.get("id") or 0))
            self._post(
                actor,
                (
                    str(msg.get("kind", "update")),
                    _parse_instant(msg.get("next_at")),
                    int(msg.get("version", -1)),
                ),
            )
            taken += 1
        return taken

    def _actor(self, alert_id: int, escalation_id: int) -> AlertEscalation:
        actor = self.actors.get(alert_id)
        if actor is None:
            actor = self.actors[alert_id] = AlertEscalation(alert_id, escalation_id)
        elif escalation_id and not actor.escalation_id:
            actor.escalation_id = escalation_id
        return actor

    def _post(self, actor: AlertEscalation, message: tuple[str, dt.datetime | None, int]) -> None:
        if actor.mailbox is None:
            actor.mailbox = deque()
        actor.mailbox.append(message)
        if not actor.busy:
            actor.busy = True
            task = asyncio.get_running_loop().create_task(self._drain(actor))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _drain(self, actor: AlertEscalation) -> None:
        """Handle the actor's messages one at a time, in order (its mailbox)."""
        try:
            while actor.mailbox:
                kind, next_at, version = actor.mailbox.popleft()
                try:
                    if kind == "tick":
                        await self._tick(actor)
                    else:
                        self._update(actor, next_at, version)
                except Exception:  # the sweeper retries; one bad row must not stop the host
                    self.stats.errors += 1
                    log.exception("escalation of alert %s failed; retrying later", actor.alert_id)
                    self._arm(actor, self.clock.now() + ERROR_RETRY)
        finally:
            actor.busy = False
            actor.mailbox = None
            if actor.due is None and actor.timer is None and self.actors.get(actor.alert_id) is actor:
                del self.actors[actor.alert_id]  # nothing scheduled: free the memory until the next message

    def _update(self, actor: AlertEscalation, next_at: dt.datetime | None, version: int) -> None:
        if version < actor.version:
            return  # an older hint than what this actor already saw
        actor.version = version
        if next_at is None or next_at > self.clock.now():
            self._arm(actor, next_at)
            return
        # Due already: tick now rather than through a timer.
        self._arm(actor, None)
        actor.due = next_at
        if actor.mailbox is None:
            actor.mailbox = deque()
        actor.mailbox.append(("tick", None, version))

    def _arm(self, actor: AlertEscalation, due: dt.datetime | None) -> None:
        if actor.timer is not None:
            self.timers.cancel(actor.timer)
            actor.timer = None
        actor.due = due
        if due is not None:
            actor.timer = self.timers.call_at(due, lambda: self._fire(actor.alert_id, due))

    def _fire(self, alert_id: int, due: dt.datetime) -> None:
        actor = self.actors.get(alert_id)
        if actor is None or actor.due != due:
            return
        actor.timer = None
        if not isinstance(self.clock, ManualClock):
            self.stats.lateness_ms.append((self.clock.now() - due).total_seconds() * 1000)
        self._post(actor, ("tick", None, actor.version))

    # --- ticks --------------------------------------------------------------------------------

    async def _tick(self, actor: AlertEscalation) -> None:
        self.stats.ticks += 1
        if not actor.escalation_id:
            actor.escalation_id = await self._run(self._find_row, actor.alert_id)
            if not actor.escalation_id:
                self._arm(actor, None)
                return
        result = await self._run(self._claim, actor.escalation_id)
        now = self.clock.now()
        if result.alert_id == 0 and not result.claimed:
            # Locked by another worker right now (SKIP LOCKED): look again shortly.
            self.stats.lost_claims += 1
            self._arm(actor, now + LOCKED_RETRY)
            return
        actor.version = max(actor.version, result.version)
        finished = result.state == escalations.EscalationState.DONE
        self._arm(actor, None if finished else result.next_at)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _scan(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.scanner, fn, *args)

    def _find_row(self, alert_id: int) -> int:
        with session_scope(engine=self.engine) as session:
            row = escalations.get_escalation(session, alert_id=alert_id)
            return int(row.id or 0) if row is not None else 0

    def _claim(self, escalation_id: int) -> StepResult:
        """Run every step that is due now, one claim (transaction) per step."""
        result = StepResult(escalation_id, 0, claimed=False)
        for _ in range(MAX_STEPS_PER_TICK):
            now = self.clock.now()
            with session_scope(write=True, engine=self.engine) as session:
                result = run_step(session, escalation_id=escalation_id, now=now, on_call=self.on_call)
            if not result.claimed:
                break
            self.stats.steps += 1
            self.stats.notifications += result.notifications
            if self.after_step is not None:
                self.after_step(result)
            if result.next_at is None or result.next_at > now or result.state != "active":
                break
        return result

    # --- recovery -----------------------------------------------------------------------------

    async def rehydrate(self) -> int:
        """Rebuild an actor (and timer) for every open escalation of this shard from the database."""
        began = time.monotonic()
        count, after = 0, 0
        while True:
            rows = await self._scan(self._open_page, after)
            if not rows:
                break
            for row in rows:
                actor = self._actor(row.alert_id, row.id)
                if not actor.busy:
                    self._update(actor, row.next_at, row.version)
                    if actor.mailbox:
                        actor.busy = True
                        task = asyncio.get_running_loop().create_task(self._drain(actor))
                        self._inflight.add(task)
                        task.add_done_callback(self._inflight.discard)
            count += len(rows)
            after = rows[-1].id
            await asyncio.sleep(0)  # let timers and messages run between pages
        self.stats.rehydrated += count
        self.stats.rehydrate_seconds = time.monotonic() - began
        return count

    def _open_page(self, after: int) -> list[escalations.DueRow]:
        with session_scope(engine=self.engine) as session:
            return escalations.open_rows(
                session, shard=self.shard, shard_count=self.shard_count, after_id=after
            )

    async def sweep_once(self) -> int:
        """Tick every row of this shard that is overdue by more than the grace period."""
        rows = await self._scan(self._overdue)
        for row in rows:
            actor = self._actor(row.alert_id, row.id)
            if actor.busy:
                continue
            actor.version = max(actor.version, row.version)
            self._post(actor, ("tick", None, row.version))
        self.stats.swept += len(rows)
        return len(rows)

    def _overdue(self) -> list[escalations.DueRow]:
        with session_scope(engine=self.engine) as session:
            return escalations.overdue_rows(
                session, shard=self.shard, shard_count=self.shard_count, before=self.clock.now() - self.grace
            )

    def start(self) -> None:
        """Rehydrate, then sweep every `sweep_seconds` (no sweeping loop when that is None)."""
        if self._background is None:
            self._background = asyncio.get_running_loop().create_task(self._run_background())

    async def _run_background(self) -> None:
        while True:
            try:
                await self.rehydrate()
                break
            except Exception:  # the database may be restarting; try again
                self.stats.errors += 1
                log.exception("rehydration of shard %s failed; retrying", self.shard)
                await asyncio.sleep(ERROR_RETRY.total_seconds())
        self.ready.set()
        while self.sweep_seconds is not None:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self.sweep_once()
            except Exception:
                self.stats.errors += 1
                log.exception("sweep of shard %s failed", self.shard)

    async def stop(self) -> None:
        """Cancel background work and timers."""
        if self._background is not None:
            self._background.cancel()
        for actor in self.actors.values():
            if actor.timer is not None:
                self.timers.cancel(actor.timer)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.scanner.shutdown(wait=False, cancel_futures=True)

    # --- tests and benchmarks -----------------------------------------------------------------

    async def idle(self) -> None:
        """Wait until no actor has messages left."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def advance_to(self, instant: dt.datetime) -> None:
        """(Manual clock) move time to `instant`, firing every timer due on the way, in order."""
        clock = self.clock
        assert isinstance(clock, ManualClock), "advance_to needs a ManualClock"
        await self.idle()
        while (callback := clock.pop_due(instant)) is not None:
            callback()
            await self.idle()
        clock.set(instant)
        await self.idle()

    def report(self) -> dict[str, Any]:
        """Counters, memory and timer lateness percentiles."""
        late = sorted(self.stats.lateness_ms)

        def pct(p: float) -> float | None:
            return round(late[min(len(late) - 1, int(p * len(late)))], 3) if late else None

        return {
            "shard": self.shard,
            "actors": len(self.actors),
            "timers": sum(1 for a in self.actors.values() if a.timer is not None),
            "ticks": self.stats.ticks,
            "steps": self.stats.steps,
            "notifications": self.stats.notifications,
            "lost_claims": self.stats.lost_claims,
            "errors": self.stats.errors,
            "swept": self.stats.swept,
            "rehydrated": self.stats.rehydrated,
            "rehydrate_seconds": round(self.stats.rehydrate_seconds, 3),
            "lateness_ms": {
                "n": len(late),
                "p50": pct(0.5),
                "p99": pct(0.99),
                "max": late[-1] if late else None,
            },
            "rss_bytes": _rss_bytes(),
            "pid": os.getpid(),
        }

    def reset_lateness(self) -> None:
        """Forget lateness samples (benchmarks measure phases separately)."""
        self.stats.lateness_ms.clear()


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def install_name(database_url: str) -> str:
    """A short tag of the database, so installations sharing a Ray cluster get their own hosts."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:10]


# --- the Ray actor ------------------------------------------------------------------------------


def _ray_remote(cls: type) -> Any:
    import ray

    return ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(cls)


class _EscalationHost(EventSource):
    """A Ray actor holding the AlertEscalation actors of one shard (see the module docstring)."""

    def __init__(self, config: dict[str, Any]) -> None:
        from sentinel_app.db import create_db_engine

        logging.basicConfig(level=config.get("log_level", "INFO"))
        url = config["database_url"]
        self.collector = install_actor_bus(url)
        self.engine = create_db_engine(url)
        manual = config.get("manual_clock")
        clock: Clock = ManualClock(dt.datetime.fromisoformat(manual)) if manual else SystemClock()
        from actors.schedule_host import on_call_via_hosts

        self.core = EscalationCore(
            engine=self.engine,
            shard=int(config["shard"]),
            shard_count=int(config["shard_count"]),
            clock=clock,
            sweep_seconds=None if manual else float(config.get("sweep_seconds", 10.0)),
            grace_seconds=float(config.get("grace_seconds", 5.0)),
            on_call=on_call_via_hosts(config, self.engine),
            after_step=_dispatcher_waker(config),
        )
        self.core.start()

    async def deliver(self, messages: list[dict[str, Any]]) -> int:
        """Post a batch of escalation messages to their alerts' actors."""
        return self.core.deliver(messages)

    async def ping(self) -> dict[str, Any]:
        """Counters, memory and lateness of this host."""
        return self.core.report()

    async def wait_ready(self) -> bool:
        """Wait until rehydration finished."""
        await self.core.ready.wait()
        return True

    async def sweep(self) -> int:
        """Run the sweeper once now."""
        return await self.core.sweep_once()

    async def idle(self) -> bool:
        """Wait until every mailbox is empty."""
        await self.core.idle()
        return True

    async def advance_to(self, instant: str) -> dict[str, Any]:
        """(Manual clock only) fast-forward to `instant`, running every timer due on the way."""
        await self.core.advance_to(dt.datetime.fromisoformat(instant))
        return self.core.report()

    async def reset_lateness(self) -> bool:
        """Forget timer lateness samples."""
        self.core.reset_lateness()
        return True


def _dispatcher_waker(config: Mapping[str, Any]) -> Callable[[StepResult], None]:
    """After a step wrote outbox rows, ask this installation's dispatchers to claim them now."""
    from sentinel_app.settings import Settings

    settings = Settings(
        database_url=config["database_url"],
        dispatchers=int(config.get("dispatchers", 1)),
        ray_namespace=str(config.get("ray_namespace", "sentinel")),
    )

    def wake(result: StepResult) -> None:
        if not result.notifications or not settings.dispatchers:
            return
        try:
            from actors.dispatcher import wake_dispatchers

            wake_dispatchers(settings)
        except Exception:  # the dispatchers poll too; a missed wake-up only costs their poll period
            log.debug("could not wake the dispatchers", exc_info=True)

    return wake


EscalationHost = _ray_remote(_EscalationHost)


def host_name(database_url: str, shard: int, shard_count: int) -> str:
    """The versioned, per-installation name of one escalation host."""
    from actors.naming import versioned

    return versioned(f"escalation-host-{install_name(database_url)}-{shard}of{shard_count}")


def get_host(config: dict[str, Any]) -> Any:
    """The named, detached host of `config["shard"]`, created on first use."""
    name = host_name(config["database_url"], int(config["shard"]), int(config["shard_count"]))
    return EscalationHost.options(name=name, lifetime="detached", get_if_exists=True).remote(config)
