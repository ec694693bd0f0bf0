"""Event bus: small "something changed" events, delivered only after their transaction commits.

Services call `publish(session, "alert.updated", {"id": 42, "status": "acked"}, key="alert:42")`
inside a transaction; page states and GraphQL subscriptions consume with
`async with subscribe({"alert.updated"}) as events: async for event in events: ...`.

* `MemoryBus` (SQLite, embedded): events wait in `session.info` and are fanned out in-process
  from `after_commit`; a rollback discards them.
* `PostgresBus`: `publish` runs `pg_notify` inside the transaction, so PostgreSQL delivers it at
  commit, in commit order, to every process; one LISTEN connection per process fans out locally.

Consumers always receive `bus.*` control events whatever their filter: `bus.overflow` (their queue
was full and the oldest events were dropped) and `bus.reconnected` (the LISTEN connection dropped,
events may be lost). Both mean "resync from the database".
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql import text

from sentinel_app.db import utcnow
from sentinel_app.settings import ConfigError, get_settings

log = logging.getLogger(__name__)

CHANNEL = "sentinel_events"
# NOTIFY rejects payloads of 8000 bytes or more; keep headroom for the envelope.
MAX_PAYLOAD_BYTES = 7000
OVERFLOW = "bus.overflow"
RECONNECTED = "bus.reconnected"

_PENDING = "sentinel_bus_pending"


@dataclass(frozen=True)
class Event:
    """One change notification; `data` is small JSON (ids, status), treat it as read-only."""

    kind: str
    data: dict[str, Any]
    key: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: datetime = field(default_factory=utcnow)

    def to_json(self) -> str:
        """Serialize for NOTIFY; raises TypeError/ValueError for data that is not plain JSON."""
        return json.dumps(
            {"id": self.id, "kind": self.kind, "key": self.key, "at": self.at.isoformat(), "data": self.data},
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, payload: str) -> Event:
        """Parse what `to_json` produced."""
        raw = json.loads(payload)
        return cls(raw["kind"], raw["data"], raw["key"], raw["id"], datetime.fromisoformat(raw["at"]))


def _prepare(
    kind: str, data: dict[str, Any], key: str | None, *, round_trip: bool = True
) -> tuple[Event, str]:
    event = Event(kind, data, key)
    try:
        payload = event.to_json()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"event {kind!r}: data must be plain JSON ({exc})") from None
    size = len(payload.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"event {kind!r} is {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit: send ids, not payloads"
        )
    # Subscribers get the JSON round-trip on every backend, so SQLite behaves like PostgreSQL.
    return (Event.from_json(payload) if round_trip else event), payload


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscription:
    """One consumer's bounded queue, iterated by a single task; made by `Bus.subscribe`."""

    def __init__(self, kinds: set[str] | None, maxsize: int, loop: asyncio.AbstractEventLoop) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._kinds = frozenset(kinds) if kinds is not None else None
        self._maxsize = maxsize
        self._loop = loop
        # A threading lock, not asyncio: publishers offer from any thread.
        self._lock = threading.Lock()
        self._buffer: deque[Event] = deque()
        self._dropped = 0
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def _offer(self, event: Event) -> bool:
        """Queue `event` without ever blocking; False once this subscription is dead."""
        if self._kinds is not None and event.kind not in self._kinds and not event.kind.startswith("bus."):
            return not self._closed
        with self._lock:
            if self._closed:
                return False
            if len(self._buffer) >= self._maxsize:
                self._buffer.popleft()
                self._dropped += 1
            self._buffer.append(event)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            try:
                self._loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # the consumer's loop is closed: nobody will ever read
                self._close()
                return False
        return True

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            with suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_wake, waiter)

    def take_ready(self, limit: int) -> list[Event]:
        """Up to `limit` events already queued, without waiting (for consumers that batch)."""
        with self._lock:
            taken: list[Event] = []
            while self._buffer and len(taken) < limit and not self._dropped:
                taken.append(self._buffer.popleft())
            return taken

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while True:
            with self._lock:
                if self._dropped:
                    # Dropped events were the oldest, so the marker goes before what is left.
                    dropped, self._dropped = self._dropped, 0
                    return Event(OVERFLOW, {"dropped": dropped})
                if self._buffer:
                    return self._buffer.popleft()
                if self._closed:
                    raise StopAsyncIteration
                waiter = self._waiter = self._loop.create_future()
            await waiter


class Bus:
    """In-process fan-out shared by both backends; on its own it is the SQLite (embedded) bus."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._subs_lock = threading.Lock()

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open in this process."""
        return len(self._subs)

    def publish(self, session: Session, kind: str, data: dict[str, Any], key: str | None = None) -> Event:
        """Queue an event on `session`'s transaction: delivered after commit, never on rollback."""
        event, _ = _prepare(kind, data, key)
        _pending_for(session, self).add(session, event)
        return event

    def publish_many(
        self, session: Session, events: list[tuple[str, dict[str, Any], str | None]]
    ) -> list[Event]:
        """Publish several (kind, data, key) events in the session's transaction, in order."""
        return [self.publish(session, kind, data, key) for kind, data, key in events]

    async def publish_now(self, kind: str, data: dict[str, Any], key: str | None = None) -> Event:
        """Deliver an event that belongs to no transaction."""
        event, _ = _prepare(kind, data, key)
        self._fanout(event)
        return event

    def subscribe(
        self, kinds: set[str] | None = None, *, maxsize: int = 1000
    ) -> AbstractAsyncContextManager[Subscription]:
        """Receive events of `kinds` (None: all) until the context exits; call from async code."""
        return self._subscription(kinds, maxsize)

    @asynccontextmanager
    async def _subscription(self, kinds: set[str] | None, maxsize: int) -> AsyncIterator[Subscription]:
        sub = Subscription(kinds, maxsize, asyncio.get_running_loop())
        with self._subs_lock:
            self._subs.add(sub)
        try:
            yield sub
        finally:
            self._discard(sub)

    async def start(self) -> None:
        """Start background work (nothing in-process)."""

    async def stop(self) -> None:
        """End every subscription: consumers' `async for` loops finish after draining."""
        with self._subs_lock:
            subs, self._subs = self._subs, set()
        for sub in subs:
            sub._close()

    def _discard(self, sub: Subscription) -> None:
        with self._subs_lock:
            self._subs.discard(sub)
        sub._close()

    def _fanout(self, event: Event) -> None:
        with self._subs_lock:
            subs = tuple(self._subs)
        for sub in subs:
            if not sub._offer(event):
                self._discard(sub)


class MemoryBus(Bus):
    """The embedded (SQLite) bus: one process, no background task."""


# --- Transactional in-process delivery -------------------------------------------------------
#
# Events published on a session wait in `session.info` until the root transaction commits.
# Per-key order must follow commit order even when sessions commit from several threads, but
# `after_commit` handlers of two sessions can race once the database lock is released. So a
# publishing connection takes `_COMMIT_ORDER` just before its DBAPI COMMIT (while it still holds
# the database's write lock, hence no deadlock) and releases it once its events are fanned out.
_COMMIT_ORDER = threading.RLock()


class _Pending:
    def __init__(self, bus: Bus, conn: Connection) -> None:
        self.bus = bus
        # The Connection object, not the pooled DBAPI connection: after checkin another session
        # may commit on the same DBAPI connection while our `conn.info` mark is still there.
        self.conn = conn
        self.events: list[tuple[Event, SessionTransaction | None]] = []
        self.rolled_back: set[SessionTransaction] = set()
        self.ordered = False

    def add(self, session: Session, event: Event) -> None:
        # Remember the innermost transaction so a rolled-back SAVEPOINT drops only its events.
        self.events.append((event, session.get_nested_transaction() or session.get_transaction()))

    def survivors(self) -> list[Event]:
        def alive(txn: SessionTransaction | None) -> bool:
            while txn is not None:
                if txn in self.rolled_back:
                    return False
                txn = txn.parent
            return True

        return [event for event, txn in self.events if alive(txn)]

    def release(self) -> None:
        if self.ordered:
            self.ordered = False
            _COMMIT_ORDER.release()


def _pending_for(session: Session, bus: Bus) -> _Pending:
    conn = session.connection()
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _Pending(bus, conn)
        # A weak reference: a stale mark left on the pooled connection must not keep events alive.
        conn.info[_PENDING] = weakref.ref(pending)
    elif pending.bus is not bus:
        raise RuntimeError("one session can publish to one bus only")
    return pending


@sa_event.listens_for(Engine, "commit")
def _before_dbapi_commit(conn: Connection) -> None:
    if conn.invalidated:
        return
    ref = conn.info.get(_PENDING)
    pending = ref() if ref is not None else None
    if pending is not None and pending.conn is conn and not pending.ordered:
        _COMMIT_ORDER.acquire()
        pending.ordered = True


@sa_event.listens_for(Session, "after_commit", insert=True)
def _after_commit(session: Session) -> None:
    if _PENDING not in session.info or session.in_nested_transaction():
        return  # a released SAVEPOINT is not a commit
    pending: _Pending = session.info.pop(_PENDING)
    try:
        for event in pending.survivors():
            pending.bus._fanout(event)
    finally:
        pending.release()


@sa_event.listens_for(Session, "after_soft_rollback")
def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending is not None:
        pending.rolled_back.add(previous_transaction)


@sa_event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # The root ended without `after_commit` taking the events (rollback, close, failed COMMIT).
    if transaction.parent is None and _PENDING in session.info:
        session.info.pop(_PENDING).release()


# --- PostgreSQL ------------------------------------------------------------------------------


class PostgresBus(Bus):
    """LISTEN/NOTIFY bus: publishing needs nothing started; receiving needs `await start()`."""

    ping_interval = 30.0
    max_backoff = 5.0

    def __init__(self, database_url: str, *, channel: str = CHANNEL) -> None:
        super().__init__()
        self.channel = channel
        self._conninfo = (
            make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._task: asyncio.Task[None] | None = None
        self._listening = False

    @property
    def listening(self) -> bool:
        """Whether the LISTEN connection is up (for health checks)."""
        return self._listening

    def publish(self, session: Session, kind: str, data: dict[str, Any], key: str | None = None) -> Event:
        """NOTIFY inside `session`'s transaction: PostgreSQL delivers it at commit, in commit order."""
        conn = session.connection()
        if conn.dialect.name != "postgresql":
            return super().publish(session, kind, data, key)
        event, payload = _prepare(kind, data, key)
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": self.channel, "payload": payload}
        )
        return event

    def publish_many(
        self, session: Session, events: list[tuple[str, dict[str, Any], str | None]]
    ) -> list[Event]:
        """One NOTIFY round trip for many events; a function scan over the array keeps their order."""
        conn = session.connection()
        if conn.dialect.name != "postgresql" or len(events) < 2:
            return super().publish_many(session, events)
        # No JSON round trip here: on PostgreSQL subscribers get their events from NOTIFY.
        prepared = [_prepare(kind, data, key, round_trip=False) for kind, data, key in events]
        # A binary array parameter: psycopg's text format escapes every JSON quote with a regex.
        conn.exec_driver_sql(
            "SELECT pg_notify(%(channel)s, p) FROM unnest(%(payloads)b::text[]) AS p",
            {"channel": self.channel, "payloads": [payload for _, payload in prepared]},
        )
        return [event for event, _ in prepared]

    async def publish_now(self, kind: str, data: dict[str, Any], key: str | None = None) -> Event:
        """NOTIFY on a short-lived connection (the LISTEN one is busy waiting)."""
        event, payload = _prepare(kind, data, key)
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
        return event

    async def start(self) -> None:
        """LISTEN now (raising if the database is unreachable), then keep listening in a task."""
        if self._task is not None:
            return
        conn = await self._connect()
        self._task = asyncio.create_task(self._run(conn), name="sentinel-bus-listener")

    async def stop(self) -> None:
        """Stop listening and end every subscription."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await super().stop()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name="sentinel-bus",
            connect_timeout=10,
            # Without keepalives a silently dead peer would leave us waiting forever.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except BaseException:
            await conn.close()
            raise
        self._listening = True
        return conn

    async def _run(self, conn: psycopg.AsyncConnection[Any]) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.0
        try:
            while True:
                connected_at = loop.time()
                try:
                    await self._pump(conn)
                except Exception as exc:  # whatever broke, the cure is a fresh connection
                    log.warning("event bus: LISTEN connection lost (%s); reconnecting", exc)
                self._listening = False
                with suppress(Exception):
                    await conn.close()
                # A connection that lived a while earns an immediate retry; a flapping one backs off.
                if loop.time() - connected_at > 6 * self.max_backoff:
                    delay = 0.0
                while True:
                    await asyncio.sleep(delay)
                    delay = min(max(delay * 2, 0.1), self.max_backoff)
                    try:
                        conn = await self._connect()
                        break
                    except (psycopg.Error, OSError) as exc:
                        log.warning("event bus: reconnect failed (%s); retrying in %.1fs", exc, delay)
                # Whatever was committed while we were away is lost: tell consumers to resync.
                self._fanout(Event(RECONNECTED, {}))
        finally:
            self._listening = False
            with suppress(Exception):
                await conn.close()

    async def _pump(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for notify in conn.notifies(timeout=self.ping_interval):
                if not self._subs:
                    continue  # nobody listens in this process: skip decoding (a hot path under ingest storms)
                try:
                    event = Event.from_json(notify.payload)
                except (ValueError, KeyError, TypeError):
                    log.warning(
                        "event bus: ignoring malformed payload on %s: %.200s", self.channel, notify.payload
                    )
                    continue
                self._fanout(event)
            # Quiet period: make sure the connection is still alive.
            await asyncio.wait_for(conn.execute("SELECT 1"), timeout=10)


# --- Process-wide bus ------------------------------------------------------------------------


def create_bus(database_url: str) -> Bus:
    """The bus matching the database: in-process for SQLite, LISTEN/NOTIFY for PostgreSQL."""
    try:
        backend = make_url(database_url).get_backend_name()
    except ArgumentError as exc:
        raise ConfigError("SENTINEL_DATABASE_URL", f"malformed database URL ({exc})") from None
    if backend == "sqlite":
        return MemoryBus()
    if backend == "postgresql":
        return PostgresBus(database_url)
    raise ConfigError("SENTINEL_DATABASE_URL", f"no event bus for database {backend!r}")


_bus: Bus | None = None
_bus_lock = threading.Lock()


def get_bus() -> Bus:
    """The process-wide bus, created for the configured database on first use."""
    global _bus
    if _bus is None:
        with _bus_lock:
            if _bus is None:
                _bus = create_bus(get_settings().effective_database_url)
    return _bus


def set_bus(bus: Bus | None) -> None:
    """Install the process-wide bus (None: recreate from settings on next use)."""
    global _bus
    with _bus_lock:
        _bus = bus


def publish(session: Session, kind: str, data: dict[str, Any], key: str | None = None) -> Event:
    """Publish on the process-wide bus, delivered only if `session`'s transaction commits."""
    return get_bus().publish(session, kind, data, key)


def publish_many(session: Session, events: list[tuple[str, dict[str, Any], str | None]]) -> list[Event]:
    """Publish several (kind, data, key) events on the process-wide bus, in order."""
    return get_bus().publish_many(session, events)


async def publish_now(kind: str, data: dict[str, Any], key: str | None = None) -> Event:
    """Publish on the process-wide bus right away (no transaction)."""
    return await get_bus().publish_now(kind, data, key)


def subscribe(
    kinds: set[str] | None = None, *, maxsize: int = 1000
) -> AbstractAsyncContextManager[Subscription]:
    """Subscribe to the process-wide bus; see `Bus.subscribe`."""
    return get_bus().subscribe(kinds, maxsize=maxsize)
