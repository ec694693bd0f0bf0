"""The outbox dispatcher pool: named, detached async Ray actors that send `Notification` rows.

Each `Dispatcher` actor runs one `DispatcherCore` in its event loop:

1. claim a batch of due rows (a worker thread: the database layer is synchronous SQLAlchemy),
   composing alert messages and cancelling rows whose alert stopped firing, in one transaction;
2. send them concurrently through the channel registry (bounded by `dispatch_concurrency`,
   paced by a token bucket per channel);
3. record the results (batched, one transaction per flush);
4. sleep until the next row is due, a `wake()` call, or at most `poll_interval` (0.5 s).

Nothing lives only in memory: a killed actor comes back (`max_restarts=-1`) with a new worker id,
and rows it had claimed are retried once their lease runs out. `DispatcherCore` has no Ray in it,
so tests and benchmarks run it in-process against loopback fakes.

App lifespan: `await asyncio.to_thread(start_dispatchers, settings)` once Ray is up,
`wake_dispatchers()` after committing outbox rows that are due now, `stop_dispatchers()` only
to retire the pool (detached actors otherwise keep sending across app restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import ray
import sqlalchemy as sa
from pydantic import SecretStr

from actors.host_bus import EventSource, install_actor_bus
from actors.naming import versioned
from sentinel_app.db import create_db_engine, session_scope, utcnow
from sentinel_app.notify.base import DeliveryResult, classify_exception
from sentinel_app.notify.registry import ChannelRegistry, build_registry
from sentinel_app.services import outbox
from sentinel_app.services.outbox import Admission, Batch, Composer, Prepared
from sentinel_app.settings import Settings, get_settings

__all__ = [
    "DispatchConfig",
    "Dispatcher",
    "DispatcherCore",
    "RateLimiter",
    "Round",
    "TokenBucket",
    "settings_env",
    "start_dispatchers",
    "stop_dispatchers",
    "wake_dispatchers",
]

log = logging.getLogger(__name__)

NAME_PREFIX = "dispatcher-"


def dispatcher_prefix(database_url: str) -> str:
    """Name prefix of one installation's dispatchers (installations may share a Ray cluster)."""
    from actors.escalation_host import install_name

    return f"{NAME_PREFIX}{install_name(database_url)}-"


def dispatcher_name(database_url: str, index: int) -> str:
    """The versioned name of dispatcher `index` of the installation using `database_url`."""
    return versioned(f"{dispatcher_prefix(database_url)}{index}")


# Every adapter bounds a send by `Endpoints.timeout` (10 s by default).
SEND_TIMEOUT_S = 10.0
CHANNELS = ("apns", "fcm", "sms", "voice", "email", "slack", "webhook")


# --- rate limits ---------------------------------------------------------------------------------


class TokenBucket:
    """`rate` tokens per second, holding at most `capacity`; thread-safe.

    `reserve()` takes a token now or books a future one and says how long to wait for it.
    """

    def __init__(self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def reserve(self) -> float:
        """Take one token; seconds until it is really available (0 when it is there now)."""
        with self._lock:
            self._refill()
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def refund(self) -> None:
        """Give back a reserved token that will not be used."""
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + 1)


class RateLimiter:
    """One token bucket per channel; channels without a rate are unlimited."""

    def __init__(
        self,
        rates: Mapping[str, float],
        *,
        burst: float = 5.0,
        max_wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_wait = max_wait
        self.buckets = {
            channel: TokenBucket(rate, max(burst, rate, 1.0), clock=clock)
            for channel, rate in rates.items()
            if rate > 0
        }

    def admit(self, channel: str) -> Admission:
        """Send after a short wait, or come back later when the wait would outlast the claim."""
        bucket = self.buckets.get(channel)
        if bucket is None:
            return Admission(True)
        wait = bucket.reserve()
        if wait > self.max_wait:
            bucket.refund()
            return Admission(False, wait)
        return Admission(True, wait)


# --- the core -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchConfig:
    """How one dispatcher works: batch size, concurrency, lease, polling and per-channel rates."""

    batch_size: int = 64
    concurrency: int = 32
    lease: dt.timedelta = dt.timedelta(seconds=60)
    poll_interval: float = 0.5
    # Sends per second per channel for this dispatcher; missing or 0 is unlimited.
    rates: Mapping[str, float] = field(default_factory=dict)
    burst: float = 5.0
    # Longest wait for a rate-limit token; longer and the row goes back to the outbox for later.
    max_wait: float = 30.0
    # Rows that wait for a token do not take a send slot, but this caps how many a dispatcher holds.
    max_held: int = 1000
    # Results are written once this many are waiting, or `record_delay` seconds after the first:
    # a few larger transactions instead of one per handful of sends. The message is out already;
    # only its row's status waits (a crash in between means a resend, as for any unrecorded send).
    record_batch: int = 16
    record_delay: float = 0.02

    @classmethod
    def from_settings(cls, settings: Settings, *, share: int | None = None) -> DispatchConfig:
        """The configured values; provider rates are split evenly over `share` dispatchers."""
        parts = max(share if share is not None else settings.dispatchers, 1)
        lease = settings.dispatch_lease_seconds
        return cls(
            batch_size=settings.dispatch_concurrency,
            concurrency=settings.dispatch_concurrency,
            lease=dt.timedelta(seconds=lease),
            rates={channel: getattr(settings, f"dispatch_rate_{channel}") / parts for channel in CHANNELS},
            # A row must be sent and recorded well within its lease.
            max_wait=max(0.0, lease - 2 * SEND_TIMEOUT_S),
        )


@dataclass
class Round:
    """One claim → send → record round of `DispatcherCore.run_once`."""

    batch: Batch
    results: dict[int, DeliveryResult] = field(default_factory=dict)

    @property
    def statuses(self) -> dict[int, str]:
        """Delivery status by notification id."""
        return {nid: result.status for nid, result in self.results.items()}


class DispatcherCore:
    """The dispatcher without Ray: claims, sends through `registry`, records; see the module doc."""

    def __init__(
        self,
        *,
        engine: sa.Engine,
        registry: ChannelRegistry,
        composer: Composer,
        worker_id: str | None = None,
        config: DispatchConfig | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.composer = composer
        self.worker_id = (worker_id or f"dispatcher:{os.getpid()}:{uuid.uuid4().hex[:8]}")[:100]
        self.config = config or DispatchConfig()
        self.clock = clock
        self.rng = rng
        self.limiter = RateLimiter(self.config.rates, burst=self.config.burst, max_wait=self.config.max_wait)
        self.stats: Counter[str] = Counter()
        # SQLite has one writer: a claim and a result flush from this dispatcher's threads would
        # wait for each other in SQLite's busy handler, which sleeps in steps of 1-100 ms. A
        # lock hands the write over at once. PostgreSQL runs them side by side.
        self._writes: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self._disabled_seen: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._results_event: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: list[tuple[int, DeliveryResult]] = []
        self._held = 0
        self._waiting = 0
        self._starved = False
        self._stopping = False
        self._running = False

    # -- building blocks (tests drive these directly with an explicit `now`) --

    async def claim(self, *, now: dt.datetime | None = None, limit: int | None = None) -> Batch:
        """Claim and compose a batch of due rows (in a worker thread)."""
        when = now or self.clock()
        size = self.config.batch_size if limit is None else limit
        batch = await asyncio.to_thread(self._claim_sync, when, size)
        self.stats.update(
            claimed=batch.claimed, cancelled=batch.cancelled, deferred=batch.deferred, failed=batch.failed
        )
        return batch

    def _claim_sync(self, now: dt.datetime, limit: int) -> Batch:
        with self._writes, session_scope(write=True, engine=self.engine) as session:
            return outbox.prepare_batch(
                session,
                now=now,
                limit=limit,
                worker_id=self.worker_id,
                lease=self.config.lease,
                composer=self.composer,
                admit=self.limiter.admit,
            )

    async def send(self, prepared: Prepared) -> DeliveryResult:
        """Send one prepared row (after its rate-limit wait); never raises except on cancellation."""
        if prepared.delay > 0:
            await asyncio.sleep(prepared.delay)
        try:
            result = await self.registry.send(prepared.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # adapters should not raise; a bug must still not lose the row
            log.exception("dispatcher: %s adapter raised", prepared.message.channel.value)
            result = classify_exception(exc)
        channel = prepared.message.channel.value
        if result.provider_status == "disabled" and channel not in self._disabled_seen:
            self._disabled_seen.add(channel)
            log.warning("dispatcher: %s notifications fail permanently: %s", channel, result.error)
        return result

    async def record(
        self, results: Sequence[tuple[int, DeliveryResult]], *, now: dt.datetime | None = None
    ) -> None:
        """Record results in one transaction (row by row if that fails)."""
        if results:
            await asyncio.to_thread(self._record_sync, list(results), now)

    def _record_sync(self, results: list[tuple[int, DeliveryResult]], now: dt.datetime | None) -> None:
        when = now or self.clock()
        try:
            with self._writes, session_scope(write=True, engine=self.engine) as session:
                recorded = outbox.record_results(
                    session, results, now=when, worker_id=self.worker_id, rng=self.rng
                )
        except Exception:
            log.exception("dispatcher: recording %d results failed; retrying one by one", len(results))
            recorded = []
            for nid, result in results:
                try:
                    with self._writes, session_scope(write=True, engine=self.engine) as session:
                        [kept] = outbox.record_results(
                            session, [(nid, result)], now=when, worker_id=self.worker_id, rng=self.rng
                        )
                    recorded.append(kept)
                except Exception:  # the row stays claimed; its lease expiry retries it
                    log.exception("dispatcher: recording notification %s failed", nid)
                    recorded.append(False)
        for (_, result), kept in zip(results, recorded, strict=True):
            self.stats[result.status if kept else "ignored"] += 1

    async def run_once(self, *, now: dt.datetime | None = None, limit: int | None = None) -> Round:
        """One round: claim, send everything concurrently (bounded), record; `now` pins the clock."""
        batch = await self.claim(now=now, limit=limit)
        slots = asyncio.Semaphore(self.config.concurrency)

        async def bounded(prepared: Prepared) -> DeliveryResult:
            async with slots:
                return await self.send(prepared)

        results = await asyncio.gather(*(bounded(p) for p in batch.ready))
        pairs = [(p.notification_id, r) for p, r in zip(batch.ready, results, strict=True)]
        await self.record(pairs, now=now)
        return Round(batch, dict(pairs))

    # -- the long-running loop --

    def wake(self) -> None:
        """Claim now instead of at the next poll (safe from any thread)."""
        event, loop = self._wake_event, self._loop
        if event is None or loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    @property
    def running(self) -> bool:
        """Whether `run` is looping."""
        return self._running

    def _busy(self) -> int:
        # Rows waiting for a rate-limit token do not occupy a send slot.
        return self._held - self._waiting

    def _room(self) -> int:
        # One batch more than the send slots: it is claimed and composed while the sends before
        # it are in flight, so slots do not sit idle for a claim's round trips. A row waits for a
        # slot at most as long as one send (bounded by its timeout), well within its lease.
        ahead = self.config.concurrency + self.config.batch_size - self._busy()
        return min(ahead, self.config.max_held - self._held)

    async def run(self) -> None:
        """Claim, send and record until `stop()`; survives database and provider trouble."""
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self._results_event = asyncio.Event()
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._stopping, self._running = False, True
        recorder = asyncio.create_task(self._record_loop())
        failures = 0
        try:
            while not self._stopping:
                room = self._room()
                timeout = self.config.poll_interval
                if room > 0:
                    limit = min(room, self.config.batch_size)
                    try:
                        batch = await self.claim(limit=limit)
                    except Exception:
                        failures += 1
                        if failures == 1:
                            log.exception("dispatcher: claiming failed; retrying")
                        await self._idle(min(5.0, self.config.poll_interval * 2**failures))
                        continue
                    if failures:
                        log.info("dispatcher: claiming works again after %d failures", failures)
                        failures = 0
                    for prepared in batch.ready:
                        self._start_send(prepared)
                    if batch.claimed >= limit:
                        # More may be due right now.
                        await asyncio.sleep(0)
                        continue
                    if batch.next_due is not None:
                        until = (batch.next_due - self.clock()).total_seconds()
                        timeout = min(timeout, max(until, 0.01))
                # Every send slot taken and a batch queued: finishing sends wake the loop.
                self._starved = room <= 0
                await self._idle(timeout)
                self._starved = False
        finally:
            self._running = False
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await self._flush_results()

    async def _idle(self, timeout: float) -> None:
        assert self._wake_event is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake_event.wait(), timeout)
        self._wake_event.clear()

    def _start_send(self, prepared: Prepared) -> None:
        # Counted here and uncounted inside the task: done-callbacks run too late for the check below.
        self._held += 1
        task = asyncio.create_task(self._send_and_queue(prepared))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_and_queue(self, prepared: Prepared) -> None:
        assert self._slots is not None and self._results_event is not None
        if prepared.delay > 0:
            self._waiting += 1
            try:
                await asyncio.sleep(prepared.delay)
            finally:
                self._waiting -= 1
            if self._starved:
                self.wake()  # a send slot may be free again
        try:
            async with self._slots:
                result = await self.send(replace(prepared, delay=0.0))
        finally:
            self._held -= 1
        self._results.append((prepared.notification_id, result))
        self._results_event.set()
        if self._starved and self._busy() <= self.config.concurrency:
            self.wake()

    async def _record_loop(self) -> None:
        assert self._results_event is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._results_event.wait()
            self._results_event.clear()
            deadline = loop.time() + self.config.record_delay
            while len(self._results) < self.config.record_batch and not self._stopping:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._results_event.wait(), remaining)
                self._results_event.clear()
            await self._flush_results()

    async def _flush_results(self) -> None:
        results, self._results = self._results, []
        if not results:
            return
        try:
            await self.record(results)
        except Exception:  # pragma: no cover - _record_sync already logs and isolates rows
            log.exception("dispatcher: recording failed")

    async def stop(self) -> None:
        """Stop claiming; in-flight sends finish and are recorded before `run` returns."""
        self._stopping = True
        self.wake()

    async def aclose(self) -> None:
        """Close the provider clients."""
        await self.registry.aclose()


# --- the Ray actor --------------------------------------------------------------------------------


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as SENTINEL_* variables, with paths, database URL and secret key made explicit."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        env[f"SENTINEL_{name.upper()}"] = text
    # A Ray worker may run in another directory and must use the same key and database.
    env["SENTINEL_DATA_DIR"] = str(settings.data_dir.resolve())
    env["SENTINEL_DATABASE_URL"] = settings.effective_database_url
    env["SENTINEL_SECRET_KEY"] = settings.resolved_secret_key()
    return env


def _fingerprint(env: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(env.items())).encode()).hexdigest()[:16]


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Dispatcher(EventSource):
    """One dispatcher of the pool: a `DispatcherCore` in this actor's event loop.

    Settings arrive as SENTINEL_* variables and are applied to this worker process, so every
    module (bus, secrets, registry) sees the app's configuration. The channel registry is built
    here: its clients bind to this loop and TLS contexts cannot travel between processes.
    """

    def __init__(self, index: int, env: dict[str, str]) -> None:
        os.environ.update(env)
        get_settings.cache_clear()
        settings = get_settings()
        # With SQLite the embedded bus does not cross processes: the app's relay collects events.
        self.collector = install_actor_bus(settings.effective_database_url)
        logging.basicConfig(level=settings.log_level)
        self.index = index
        self.fingerprint = _fingerprint(env)
        self.core = DispatcherCore(
            engine=create_db_engine(settings.effective_database_url),
            registry=build_registry(settings),
            composer=Composer.from_settings(settings),
            worker_id=f"{dispatcher_name(settings.effective_database_url, index)}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            config=DispatchConfig.from_settings(settings),
        )
        self._task: asyncio.Task[None] | None = None
        self._ensure_running()

    def _ensure_running(self) -> None:
        if self.core._stopping or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # __init__ outside the actor's loop: the first call starts it
            return
        self._task = loop.create_task(self._run_forever())

    async def _run_forever(self) -> None:
        # The loop handles database and provider trouble itself; this catches our own bugs.
        while not self.core._stopping:
            try:
                await self.core.run()
            except Exception:
                log.exception("dispatcher %s: loop crashed; restarting", self.index)
                await asyncio.sleep(1.0)

    async def wake(self) -> None:
        """Claim now (after rows were committed that are due now)."""
        self._ensure_running()
        self.core.wake()

    async def status(self) -> dict[str, Any]:
        """Identity, settings fingerprint and counters of this dispatcher."""
        self._ensure_running()
        return {
            "index": self.index,
            "worker_id": self.core.worker_id,
            "pid": os.getpid(),
            "fingerprint": self.fingerprint,
            "running": self.core.running,
            "stats": dict(self.core.stats),
        }

    async def stop(self) -> None:
        """Stop claiming, finish and record in-flight sends, close provider clients."""
        await self.core.stop()
        if self._task is not None:
            await self._task
        await self.core.aclose()


_handles: list[Any] = []
_handles_lock = threading.Lock()


def _stop_and_kill(handle: Any, *, timeout: float) -> None:
    try:
        ray.get(handle.stop.remote(), timeout=timeout)
    except Exception as exc:  # already dead or stuck: kill anyway; its leases expire
        log.warning("dispatcher did not stop cleanly: %s", exc)
    ray.kill(handle, no_restart=True)


def start_dispatchers(settings: Settings | None = None, *, stop_timeout: float = 30.0) -> list[Any]:
    """Create (or find) the `settings.dispatchers` actors of this app version; blocking, call in a thread.

    Dispatchers of other versions, surplus indexes or older settings are stopped and replaced.
    """
    settings = settings or get_settings()
    env = settings_env(settings)
    fingerprint = _fingerprint(env)
    namespace = settings.ray_namespace
    prefix = dispatcher_prefix(settings.effective_database_url)
    wanted = [dispatcher_name(settings.effective_database_url, i) for i in range(settings.dispatchers)]
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name, space = entry["name"], entry["namespace"]
        if space == namespace and name.startswith(prefix) and name not in wanted:
            log.info("retiring dispatcher %s", name)
            _stop_and_kill(ray.get_actor(name, namespace=namespace), timeout=stop_timeout)
    handles = []
    for index, name in enumerate(wanted):
        options = {"name": name, "namespace": namespace, "lifetime": "detached", "get_if_exists": True}
        handle = Dispatcher.options(**options).remote(index, env)  # type: ignore[attr-defined]
        current = ray.get(handle.status.remote(), timeout=120)
        if current["fingerprint"] != fingerprint:
            log.info("replacing dispatcher %s: settings changed", name)
            _stop_and_kill(handle, timeout=stop_timeout)
            handle = Dispatcher.options(**options).remote(index, env)  # type: ignore[attr-defined]
        handles.append(handle)
    with _handles_lock:
        _handles[:] = handles
    return handles


def _lookup_handles(settings: Settings) -> list[Any]:
    handles = []
    for index in range(settings.dispatchers):
        try:
            handles.append(
                ray.get_actor(
                    dispatcher_name(settings.effective_database_url, index), namespace=settings.ray_namespace
                )
            )
        except ValueError:  # not started (yet)
            continue
    return handles


def wake_dispatchers(settings: Settings | None = None) -> int:
    """Ask every dispatcher to claim now (fire and forget); how many were asked.

    Uses the handles `start_dispatchers` returned in this process; elsewhere (another actor)
    the named actors are looked up once.
    """
    with _handles_lock:
        handles = list(_handles)
    if not handles and ray.is_initialized():
        handles = _lookup_handles(settings or get_settings())
        with _handles_lock:
            _handles[:] = handles
    for handle in handles:
        handle.wake.remote()
    return len(handles)


def stop_dispatchers(handles: Sequence[Any] | None = None, *, timeout: float = 30.0) -> None:
    """Stop gracefully and remove dispatchers (default: the ones `start_dispatchers` returned)."""
    with _handles_lock:
        chosen = list(handles) if handles is not None else list(_handles)
        _handles[:] = [h for h in _handles if h not in chosen]
    for handle in chosen:
        _stop_and_kill(handle, timeout=timeout)
