"""Outbox benchmark: an in-process `DispatcherCore` sending against loopback provider fakes.

Measures, on SQLite and PostgreSQL:

* throughput: a few thousand due purpose="alert" rows (composed at send time: alert lookup,
  signed action links, SMS reply refs) drained by the running dispatcher loop, per channel —
  webhooks (httpx) and SMS (the real Twilio client against the fake Twilio API), and
  `no_network` (an adapter that answers at once: the claim/compose/record cost alone);
  messages/s from the loop's start until the last row is recorded as sent;
* latency from a row's commit to the provider receiving the request (p50/p99/max), with rows
  committed at a steady rate while the loop runs: once relying on polling alone (≤ 0.5 s), once
  with `wake()` after each commit (what the app does through `wake_dispatchers()`).

The fakes are threaded Python HTTP servers in the same process, so the numbers are a floor for
the dispatcher, not for the providers. Prints one JSON object.
Run: `.venv/bin/python -m tests.perf.bench_outbox [--rows 2000] [--backends sqlite,postgresql]`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from actors.dispatcher import DispatchConfig, DispatcherCore
from sentinel_app import bus
from sentinel_app.db import create_db_engine, session_scope, utcnow
from sentinel_app.migrations import upgrade_to_head
from sentinel_app.models import Alert, Notification, Team, User
from sentinel_app.notify import ChannelRegistry, Endpoints, build_registry
from sentinel_app.notify.base import ChannelKind, DeliveryResult, OutgoingMessage
from sentinel_app.services.outbox import Composer
from sentinel_app.settings import Settings
from tests import dbsupport
from tests.notify.fakes.http import Recorded, Reply
from tests.notify.fakes.twilio import FakeTwilio
from tests.notify.fakes.webhook import FakeWebhookReceiver

TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "bench-twilio-token"
PHONE = "+15555550100"
ALERTS = 20


class TimedReceiver(FakeWebhookReceiver):
    """A webhook receiver that notes when each delivery arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}

    def handle(self, request: Recorded) -> Reply:
        self.arrived.setdefault(request.headers.get("x-sentinel-delivery", ""), time.perf_counter())
        return super().handle(request)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'sentinel.db'}"
        return
    url = dbsupport.create_pg_database()
    try:
        yield url
    finally:
        dbsupport.drop_pg_database(url)


def _seed(engine: sa.Engine) -> tuple[int, list[int]]:
    """A team, a user and a few firing alerts; (user id, alert ids)."""
    now = utcnow()
    with Session(engine) as session:
        team = Team(name="Bench", slug=f"bench-{uuid.uuid4().hex[:6]}")
        user = User(email="ana@example.com", name="Ana")
        session.add_all([team, user])
        session.flush()
        assert team.id is not None and user.id is not None
        alerts = [
            Alert(
                team_id=team.id,
                title=f"Disk full on db-{i}",
                message="/var is 98% full",
                labels={"alertname": "DiskFull", "instance": f"db-{i}"},
                dedup_key=f"bench-{i}",
                fired_at=now,
                first_seen_at=now,
                last_seen_at=now,
            )
            for i in range(ALERTS)
        ]
        session.add_all(alerts)
        session.commit()
        return user.id, [a.id for a in alerts if a.id is not None]


def _rows(
    user_id: int, alert_ids: list[int], *, channel: str, target: str, count: int, due: dt.datetime
) -> list[dict[str, Any]]:
    rows = []
    for index in range(count):
        alert_id = alert_ids[index % len(alert_ids)]
        rows.append(
            {
                "idempotency_key": f"bench:{uuid.uuid4().hex}",
                "alert_id": alert_id,
                "user_id": user_id,
                "channel": channel,
                "purpose": "alert",
                "important": False,
                "target": target,
                "payload": {"alert_id": alert_id, "method": channel, "step_index": 0, "cycle": 0},
                "status": "pending",
                "attempts": 0,
                "max_attempts": 5,
                "next_attempt_at": due,
                "claimed_by": "",
                "provider_id": "",
                "provider_status": "",
                "error": "",
                "created_at": due,
                "updated_at": due,
            }
        )
    return rows


def _insert(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with session_scope(write=True, engine=engine) as session:
        session.execute(sa.insert(Notification.__table__), rows)  # type: ignore[attr-defined]


def _unsent(engine: sa.Engine) -> int:
    with Session(engine) as session:
        return int(
            session.exec(
                select(func.count()).select_from(Notification).where(col(Notification.status) != "sent")
            ).one()
        )


async def _drain(core: DispatcherCore, engine: sa.Engine, count: int) -> dict[str, Any]:
    """Run the loop until every row is sent; messages/s over that time."""
    began = time.perf_counter()
    runner = asyncio.create_task(core.run())
    try:
        while await asyncio.to_thread(_unsent, engine):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - began
    finally:
        await core.stop()
        await runner
    return {
        "rows": count,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(count / elapsed, 1),
        "sent": core.stats["sent"],
        "retries": core.stats["retry"],
    }


async def _latency(
    core: DispatcherCore,
    engine: sa.Engine,
    receiver: TimedReceiver,
    user_id: int,
    alert_ids: list[int],
    *,
    count: int,
    rate: float,
    wake: bool,
) -> dict[str, Any]:
    """Commit rows at `rate` per second while the loop runs; commit → provider request times."""
    committed: dict[str, float] = {}
    runner = asyncio.create_task(core.run())
    try:
        start = time.perf_counter() + 0.2
        for index in range(count):
            await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
            [row] = _rows(
                user_id, alert_ids, channel="webhook", target=receiver.hook_url, count=1, due=utcnow()
            )
            await asyncio.to_thread(_insert, engine, [row])
            committed[row["idempotency_key"]] = time.perf_counter()
            if wake:
                core.wake()
        deadline = time.perf_counter() + 30
        while not all(key in receiver.arrived for key in committed) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await core.stop()
        await runner
    latencies = [
        (receiver.arrived[key] - at) * 1000 for key, at in committed.items() if key in receiver.arrived
    ]
    return {
        "rows": count,
        "rate_per_s": rate,
        "received": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
    }


class NullChannel:
    """An adapter that accepts every message at once: what the dispatcher costs without a network."""

    kind = ChannelKind.WEBHOOK

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        return DeliveryResult.sent(str(message.extra.get("delivery_id") or "null"))

    async def aclose(self) -> None:
        return None


def _core(
    engine: sa.Engine, settings: Settings, endpoints: Endpoints, concurrency: int, *, null: bool = False
) -> DispatcherCore:
    registry = build_registry(settings, endpoints)
    if null:
        registry = ChannelRegistry({ChannelKind.WEBHOOK: NullChannel()}, {}, registry.links)
    return DispatcherCore(
        engine=engine,
        registry=registry,
        composer=Composer.from_settings(settings),
        worker_id=f"bench-{uuid.uuid4().hex[:6]}",
        config=DispatchConfig(batch_size=concurrency, concurrency=concurrency),
    )


async def _run_backend(url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    engine = create_db_engine(url)
    event_bus = bus.create_bus(url)
    bus.set_bus(event_bus)
    receiver, twilio = TimedReceiver(), FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN)
    receiver.start()
    twilio.start()
    settings = Settings(
        _env_file=None,
        data_dir=tmp,
        public_url="https://sentinel.example.com",
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_from_number="+15555550199",
    )
    endpoints = Endpoints(twilio_base_url=twilio.url, timeout=10.0)
    try:
        user_id, alert_ids = _seed(engine)
        throughput: dict[str, Any] = {}
        scenarios = (
            ("webhook", "webhook", receiver.hook_url),
            ("sms", "sms", PHONE),
            ("no_network", "webhook", ""),
        )
        for name, channel, target in scenarios:
            _insert(
                engine,
                _rows(user_id, alert_ids, channel=channel, target=target, count=args.rows, due=utcnow()),
            )
            core = _core(engine, settings, endpoints, args.concurrency, null=name == "no_network")
            try:
                throughput[name] = await _drain(core, engine, args.rows)
            finally:
                await core.aclose()
        latency: dict[str, Any] = {}
        for mode, wake in (("polling", False), ("wake_after_commit", True)):
            core = _core(engine, settings, endpoints, args.concurrency)
            try:
                latency[mode] = await _latency(
                    core,
                    engine,
                    receiver,
                    user_id,
                    alert_ids,
                    count=args.latency_rows,
                    rate=args.rate,
                    wake=wake,
                )
            finally:
                await core.aclose()
        return {"throughput": throughput, "commit_to_provider_latency": latency}
    finally:
        receiver.stop()
        twilio.stop()
        bus.set_bus(None)
        engine.dispose()


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one backend on a fresh database."""
    with tempfile.TemporaryDirectory() as tmp_dir, _database(backend, Path(tmp_dir)) as url:
        upgrade_to_head(url)
        return asyncio.run(_run_backend(url, Path(tmp_dir), args))


def main() -> None:
    """Parse arguments, run every backend, print JSON."""
    # socketserver's default listen backlog (5) resets connections when 32 senders connect at once.
    ThreadingHTTPServer.request_queue_size = 256
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2000, help="rows per channel for the throughput runs")
    parser.add_argument("--concurrency", type=int, default=32, help="sends in flight (dispatch_concurrency)")
    parser.add_argument("--latency-rows", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="rows committed per second in latency runs")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    # Adapters log every non-sent result; a benchmark only wants the JSON.
    logging.basicConfig(level=logging.ERROR)
    results = {b: run(b, args) for b in args.backends.split(",")}
    print(
        json.dumps(
            {
                "benchmark": "outbox_dispatcher",
                "rows_per_channel": args.rows,
                "concurrency": args.concurrency,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
