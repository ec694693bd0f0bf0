"""Event bus: after-commit delivery, cross-process NOTIFY, per-key order, slow consumers."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session

from sentinel_app import bus as bus_module
from sentinel_app.bus import Bus, Event, MemoryBus, PostgresBus, Subscription, create_bus
from sentinel_app.db import create_db_engine, session_scope
from sentinel_app.settings import ConfigError
from tests import dbsupport

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent


async def next_event(sub: Subscription, timeout: float = 10.0) -> Event:
    """The subscriber's next event, failing the test rather than hanging."""
    return await asyncio.wait_for(anext(sub), timeout)


def _selected(backend: str) -> bool:
    return backend in os.environ.get("SENTINEL_TEST_BACKENDS", "sqlite,postgresql").split(",")


def _pg_or_skip() -> str:
    # Same policy as conftest's `db_url`: skip locally, fail in CI.
    if not _selected("postgresql"):
        pytest.skip("postgresql not selected by SENTINEL_TEST_BACKENDS")
    if not dbsupport.pg_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is not reachable at {dbsupport.PG_ADMIN_URL} (required in CI)")
        pytest.skip("PostgreSQL not reachable")
    return dbsupport.create_pg_database()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database (the bus needs no tables)."""
    url = _pg_or_skip()
    yield url
    dbsupport.drop_pg_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def bus_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL per backend."""
    if request.param == "sqlite":
        if not _selected("sqlite"):
            pytest.skip("sqlite not selected by SENTINEL_TEST_BACKENDS")
        yield f"sqlite:///{tmp_path / 'bus.db'}"
        return
    url = _pg_or_skip()
    yield url
    dbsupport.drop_pg_database(url)


@pytest.fixture
def bus_engine(bus_url: str) -> Iterator[sa.Engine]:
    """An engine on `bus_url`."""
    engine = create_db_engine(bus_url)
    yield engine
    engine.dispose()


@pytest_asyncio.fixture
async def bus(bus_url: str) -> AsyncIterator[Bus]:
    """The bus `create_bus` picks for `bus_url`, started."""
    instance = create_bus(bus_url)
    await instance.start()
    yield instance
    await instance.stop()


def commit_event(bus: Bus, engine: sa.Engine, kind: str, key: str = "marker") -> Event:
    """Publish one event in its own committed transaction."""
    with session_scope(engine=engine) as session:
        return bus.publish(session, kind, {"marker": True}, key=key)


def test_create_bus_picks_backend() -> None:
    assert isinstance(create_bus("sqlite:///x.db"), MemoryBus)
    assert isinstance(create_bus("postgresql+psycopg://u@h/db"), PostgresBus)
    assert isinstance(create_bus("postgresql://u@h/db"), PostgresBus)
    with pytest.raises(ConfigError, match="SENTINEL_DATABASE_URL"):
        create_bus("mysql://u@h/db")


@pytest.mark.asyncio
async def test_delivered_only_after_commit(bus: Bus, bus_engine: sa.Engine) -> None:
    async with bus.subscribe() as sub:
        with Session(bus_engine) as open_tx:
            early = bus.publish(open_tx, "alert.created", {"id": 1, "labels": ("a", "b")}, key="alert:1")
            # A later transaction commits first; its event must overtake the uncommitted one.
            marker = commit_event(bus, bus_engine, "alert.updated")
            assert (await next_event(sub)).id == marker.id
            open_tx.commit()
        got = await next_event(sub)
    assert got == early
    assert (got.kind, got.key, got.data) == ("alert.created", "alert:1", {"id": 1, "labels": ["a", "b"]})
    assert got.at.tzinfo is not None and got.at.utcoffset() == dt.timedelta(0)


@pytest.mark.asyncio
async def test_rollback_discards(bus: Bus, bus_engine: sa.Engine) -> None:
    async with bus.subscribe() as sub:
        with pytest.raises(RuntimeError), session_scope(engine=bus_engine) as session:
            bus.publish(session, "alert.created", {"id": 1})
            raise RuntimeError("boom")
        with Session(bus_engine) as session:
            bus.publish(session, "alert.created", {"id": 2})
            session.rollback()
            # The session is reusable: a stale event must not ride along with the next commit.
            kept = bus.publish(session, "alert.created", {"id": 3})
            session.commit()
        with Session(bus_engine) as session:
            bus.publish(session, "alert.created", {"id": 4})  # closed without commit
        marker = commit_event(bus, bus_engine, "marker")
        assert [(await next_event(sub)).id for _ in range(2)] == [kept.id, marker.id]


@pytest.mark.asyncio
async def test_savepoint_rollback_drops_only_its_events(bus: Bus, bus_engine: sa.Engine) -> None:
    async with bus.subscribe() as sub:
        with session_scope(engine=bus_engine) as session:
            outer = bus.publish(session, "outer", {})
            with pytest.raises(RuntimeError), session.begin_nested():
                bus.publish(session, "inner.rolledback", {})
                raise RuntimeError("boom")
            with session.begin_nested():
                released = bus.publish(session, "inner.released", {})
        marker = commit_event(bus, bus_engine, "marker")
        got = [(await next_event(sub)).id for _ in range(3)]
    assert got == [outer.id, released.id, marker.id]


@pytest.mark.asyncio
async def test_publish_many_keeps_order_and_commit_semantics(bus: Bus, bus_engine: sa.Engine) -> None:
    async with bus.subscribe() as sub:
        with Session(bus_engine) as session:
            bus.publish_many(session, [("alert.created", {"id": 9}, "alert:9")])
            session.rollback()
        with session_scope(engine=bus_engine) as session:
            sent = bus.publish_many(session, [(f"alert.n{i}", {"n": i}, f"alert:{i % 3}") for i in range(25)])
        got = [await next_event(sub) for _ in range(25)]
    assert [e.id for e in got] == [e.id for e in sent]
    assert [e.data["n"] for e in got] == list(range(25))


@pytest.mark.asyncio
async def test_kind_filter(bus: Bus, bus_engine: sa.Engine) -> None:
    async with bus.subscribe({"alert.created"}) as alerts, bus.subscribe() as everything:
        oncall = commit_event(bus, bus_engine, "oncall.changed")
        alert = commit_event(bus, bus_engine, "alert.created")
        assert (await next_event(alerts)).id == alert.id
        assert [(await next_event(everything)).id for _ in range(2)] == [oncall.id, alert.id]


@pytest.mark.asyncio
async def test_publish_now(bus: Bus) -> None:
    async with bus.subscribe() as sub:
        sent = await bus.publish_now("escalation.step", {"alert_id": 7, "step": 2}, key="alert:7")
        assert await next_event(sub) == sent


@pytest.mark.asyncio
async def test_unsubscribe_on_exit_and_stop_ends_iteration(bus: Bus) -> None:
    with pytest.raises(KeyError):
        async with bus.subscribe() as sub:
            assert bus.subscriber_count == 1
            raise KeyError("consumer crashed")
    assert bus.subscriber_count == 0
    with pytest.raises(StopAsyncIteration):
        await next_event(sub)

    async def consume(sub: Subscription) -> int:
        return len([event async for event in sub])

    async with bus.subscribe() as live, bus.subscribe() as probe:
        consumer = asyncio.create_task(consume(live))
        await bus.publish_now("x", {})
        await next_event(probe)  # fan-out reached every subscriber
        await bus.stop()  # the consumer still drains what was queued, then its loop ends
        assert await asyncio.wait_for(consumer, 10) == 1


@pytest.mark.asyncio
async def test_oversize_and_non_json_rejected(bus: Bus, bus_engine: sa.Engine) -> None:
    big = {"blob": "x" * 8000}
    async with bus.subscribe() as sub:
        with session_scope(engine=bus_engine) as session:
            with pytest.raises(ValueError, match=re.escape("'alert.created'")):
                bus.publish(session, "alert.created", big)
            with pytest.raises(TypeError, match=re.escape("'alert.created'")):
                bus.publish(session, "alert.created", {"when": dt.datetime.now(dt.UTC)})
        with pytest.raises(ValueError, match=re.escape("'escalation.step'")):
            await bus.publish_now("escalation.step", big)
        ok = await bus.publish_now("escalation.step", {"blob": "x" * 6500})
        assert (await next_event(sub)).id == ok.id


@pytest.mark.asyncio
async def test_slow_subscriber_blocks_nobody_and_learns_of_overflow(bus: Bus, bus_engine: sa.Engine) -> None:
    async with bus.subscribe(maxsize=5) as slow, bus.subscribe() as fast:
        sent = []
        for i in range(50):  # completes although `slow` reads nothing
            with session_scope(engine=bus_engine) as session:
                sent.append(bus.publish(session, "alert.updated", {"i": i}, key="alert:1"))
        assert [(await next_event(fast)).id for _ in range(50)] == [e.id for e in sent]

        overflow = await next_event(slow)
        assert (overflow.kind, overflow.data) == ("bus.overflow", {"dropped": 45})
        assert [(await next_event(slow)).id for _ in range(5)] == [e.id for e in sent[-5:]]


THREADS, TXNS, KEYS = 8, 25, 3


async def check_per_key_order(bus: Bus, engine: sa.Engine) -> None:
    """Concurrent threads bump per-key counters; each key's events must arrive in commit order."""
    with session_scope(engine=engine) as session:
        session.connection().execute(
            sa.text("CREATE TABLE counters (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        )
        for k in range(KEYS):
            session.connection().execute(sa.text("INSERT INTO counters VALUES (:k, 0)"), {"k": str(k)})

    def worker(thread: int) -> None:
        # Writers of one key serialize on its row, so the counter is that key's commit order.
        for txn in range(TXNS):
            key = str((thread + txn) % KEYS)
            with session_scope(write=True, engine=engine) as session:
                n = (
                    session.connection()
                    .execute(sa.text("UPDATE counters SET n = n + 1 WHERE k = :k RETURNING n"), {"k": key})
                    .scalar_one()
                )
                bus.publish(session, "alert.updated", {"n": n}, key=f"alert:{key}")

    total = THREADS * TXNS
    async with bus.subscribe(maxsize=total) as sub:

        async def collect() -> list[Event]:
            return [await next_event(sub, 30) for _ in range(total)]

        collector = asyncio.create_task(collect())
        await asyncio.gather(*(asyncio.to_thread(worker, t) for t in range(THREADS)))
        events = await asyncio.wait_for(collector, 60)

    per_key: dict[str | None, list[int]] = {}
    for event in events:
        per_key.setdefault(event.key, []).append(event.data["n"])
    assert set(per_key) == {f"alert:{k}" for k in range(KEYS)}
    for key, numbers in per_key.items():
        assert numbers == list(range(1, len(numbers) + 1)), key


@pytest.mark.asyncio
async def test_per_key_order_across_threads(bus: Bus, bus_engine: sa.Engine) -> None:
    await check_per_key_order(bus, bus_engine)


@pytest.mark.asyncio
async def test_per_key_order_in_process_bus_on_postgresql(pg_url: str) -> None:
    # Real row locks hand over fast, the hardest case for the in-process commit-order lock.
    engine = create_db_engine(pg_url)
    try:
        await check_per_key_order(MemoryBus(), engine)
    finally:
        engine.dispose()


async def _child(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bus_child",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.asyncio
async def test_events_cross_processes(pg_url: str) -> None:
    bus = PostgresBus(pg_url)
    await bus.start()
    try:
        async with bus.subscribe({"child.tick", "child.rolledback", "child.done"}) as sub:
            child = await _child("publish", pg_url, "20")
            got = [await next_event(sub, 30) for _ in range(21)]
            _, err = await asyncio.wait_for(child.communicate(), 30)
            assert child.returncode == 0, err.decode()
        assert [e.data.get("i") for e in got[:20]] == list(range(20))
        assert got[20].kind == "child.done"  # the rolled-back event never arrived

        child = await _child("listen", pg_url, "5")
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
        engine = create_db_engine(pg_url)
        for i in range(5):
            with session_scope(engine=engine) as session:
                bus.publish(session, "parent.tick", {"i": i})
        engine.dispose()
        out, err = await asyncio.wait_for(child.communicate(), 30)
        assert child.returncode == 0, err.decode()
        assert out.split() == [b"0", b"1", b"2", b"3", b"4"]
    finally:
        await bus.stop()


@pytest.mark.asyncio
async def test_reconnects_after_connection_loss(pg_url: str) -> None:
    bus = PostgresBus(pg_url)
    await bus.start()
    engine = create_db_engine(pg_url)
    try:
        async with bus.subscribe({"alert.created"}) as sub:
            assert bus.listening
            with engine.connect() as conn:
                killed = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = 'sentinel-bus' AND datname = current_database()"
                    )
                ).scalar_one()
            assert killed == 1
            assert (await next_event(sub)).kind == "bus.reconnected"
            sent = commit_event(bus, engine, "alert.created")
            assert (await next_event(sub)).id == sent.id
    finally:
        engine.dispose()
        await bus.stop()


class _SignalOn(logging.Handler):
    """Sets an asyncio.Event when a log message containing `text` is emitted."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@pytest.mark.asyncio
async def test_keeps_retrying_while_database_refuses(pg_url: str) -> None:
    name = make_url(pg_url).database
    admin = sa.create_engine(dbsupport.PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    failed = _SignalOn("reconnect failed")
    logging.getLogger("sentinel_app.bus").addHandler(failed)
    bus = PostgresBus(pg_url)
    await bus.start()
    try:
        async with bus.subscribe() as sub:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    f" WHERE application_name = 'sentinel-bus' AND datname = '{name}'"
                )
            await asyncio.wait_for(failed.seen.wait(), 10)
            assert not bus.listening
            with admin.connect() as conn:
                conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            assert (await next_event(sub)).kind == "bus.reconnected"
            assert bus.listening
    finally:
        logging.getLogger("sentinel_app.bus").removeHandler(failed)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        admin.dispose()
        await bus.stop()


@pytest.mark.asyncio
async def test_process_wide_bus(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'bus.db'}")
    bus_module.set_bus(MemoryBus())
    try:
        async with bus_module.subscribe({"oncall.changed"}) as sub:
            with session_scope(engine=engine) as session:
                sent = bus_module.publish(session, "oncall.changed", {"team_id": 3}, key="team:3")
            assert await next_event(sub) == sent
            now = await bus_module.publish_now("oncall.changed", {"team_id": 4})
            assert await next_event(sub) == now
    finally:
        bus_module.set_bus(None)
        engine.dispose()
