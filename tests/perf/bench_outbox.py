"""Outbox benchmark: an in-process `DispatcherCore` sending against loopback provider fakes.

Measures, on SQLite and PostgreSQL:

* throughput: a few thousand due purpose="alert" rows (composed at send time: alert lookup,
  signed action links, SMS reply refs) drained by the running dispatcher loop, per channel —
  webhooks (httpx) and SMS (the real Twilio client against the fake Twilio API), and
  `no_network` (an adapter that answers at once: the claim/compose/record cost alone);
  messages/s from the loop's start until the last row is recorded as sent, and a check that
  the provider received every message exactly once;
* latency from a row's commit to the provider receiving the request (p50/p99/max), with rows
  committed at a steady rate while the loop runs: once relying on polling alone (≤ 0.5 s), once
  with `wake()` after each commit (what the app does through `wake_dispatchers()`).

The fakes are threaded Python HTTP servers in a spawned child process (`RemoteFakes`), so they
do not compete with the dispatcher for its GIL; on a small machine they still compete for CPU
cores, so the numbers are a floor for the dispatcher. Prints one JSON object.
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
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
from tests.notify.fakes.remote import RemoteFakes
from tests.notify.fakes.twilio import FakeTwilio
from tests.notify.fakes.webhook import HOOK_PATH, FakeWebhookReceiver

TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "bench-twilio-token"
PHONE = "+15555550100"
ALERTS = 20
# A run that stops making progress fails instead of waiting forever.
STALL_S = 60.0


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


def _sent_provider_ids(engine: sa.Engine, channel: str) -> tuple[int, int]:
    """(sent rows, distinct provider ids among them) of `channel`."""
    with Session(engine) as session:
        n = Notification
        total, distinct = session.exec(
            select(func.count(), func.count(sa.distinct(col(n.provider_id)))).where(
                n.channel == channel, n.status == "sent"
            )
        ).one()
        return int(total), int(distinct)


def _unsent(engine: sa.Engine) -> int:
    """Rows still to send. Polled every 50 ms: counted on the status index, not by a table scan."""
    with Session(engine) as session:
        return int(
            session.exec(
                select(func.count())
                .select_from(Notification)
                .where(col(Notification.status).in_(["pending", "sending"]))
            ).one()
        )


async def _drain(core: DispatcherCore, engine: sa.Engine, count: int) -> dict[str, Any]:
    """Run the loop until every row is sent; messages/s over that time."""
    began = time.perf_counter()
    runner = asyncio.create_task(core.run())
    try:
        left, stalled_since = count, time.monotonic()
        while unsent := await asyncio.to_thread(_unsent, engine):
            if unsent != left:
                left, stalled_since = unsent, time.monotonic()
            elif time.monotonic() - stalled_since > STALL_S:
                raise RuntimeError(f"no row sent for {STALL_S:.0f} s ({unsent} left): see the dispatcher log")
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
    fakes: RemoteFakes,
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
        # time.monotonic(): the fakes' process stamps arrivals with the same system-wide clock.
        start = time.monotonic() + 0.2
        for index in range(count):
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            [row] = _rows(
                user_id, alert_ids, channel="webhook", target=_hook_url(fakes), count=1, due=utcnow()
            )
            await asyncio.to_thread(_insert, engine, [row])
            committed[row["idempotency_key"]] = time.monotonic()
            if wake:
                core.wake()
        deadline = time.monotonic() + 30
        arrived: dict[str, list[float]] = {}
        while time.monotonic() < deadline:
            arrived = await asyncio.to_thread(fakes.call, "webhook", "deliveries", list(committed))
            if len(arrived) == len(committed):
                break
            await asyncio.sleep(0.05)
    finally:
        await core.stop()
        await runner
    latencies = [(arrived[key][0] - at) * 1000 for key, at in committed.items() if key in arrived]
    return {
        "rows": count,
        "rate_per_s": rate,
        "received": len(latencies),
        "duplicates": sum(len(times) - 1 for times in arrived.values()),
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


def _hook_url(fakes: RemoteFakes) -> str:
    return f"{fakes.urls['webhook']}{HOOK_PATH}"


def _delivered_once(
    fakes: RemoteFakes, engine: sa.Engine, name: str, rows: list[dict[str, Any]], twilio_before: int
) -> dict[str, Any]:
    """What the provider fake received for a throughput run: every row exactly once?"""
    if name == "webhook":
        keys = [row["idempotency_key"] for row in rows]
        arrived = fakes.call("webhook", "deliveries", keys)
        duplicates = sum(len(times) - 1 for times in arrived.values())
        return {
            "requests": sum(len(times) for times in arrived.values()),
            "exactly_once": len(arrived) == len(keys) and duplicates == 0,
        }
    if name == "sms":
        # Message bodies are not unique per row; the fake's SIDs are: one request per row, and
        # every sent row holding a SID of its own, means each row reached the fake once.
        requests = fakes.call("twilio", "count", "/Messages.json") - twilio_before
        sent, distinct = _sent_provider_ids(engine, "sms")
        return {"requests": requests, "exactly_once": requests == len(rows) == sent == distinct}
    return {}


async def _run_backend(url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    engine = create_db_engine(url)
    event_bus = bus.create_bus(url)
    bus.set_bus(event_bus)
    fakes = RemoteFakes(
        {
            "webhook": (FakeWebhookReceiver, {}),
            "twilio": (FakeTwilio, {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}),
        }
    ).start()
    settings = Settings(
        _env_file=None,
        data_dir=tmp,
        public_url="https://sentinel.example.com",
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_from_number="+15555550199",
    )
    endpoints = Endpoints(twilio_base_url=fakes.urls["twilio"], timeout=10.0)
    try:
        user_id, alert_ids = _seed(engine)
        throughput: dict[str, Any] = {}
        scenarios = (
            ("webhook", "webhook", _hook_url(fakes)),
            ("sms", "sms", PHONE),
            ("no_network", "webhook", ""),
        )
        for name, channel, target in scenarios:
            rows = _rows(user_id, alert_ids, channel=channel, target=target, count=args.rows, due=utcnow())
            _insert(engine, rows)
            twilio_before = fakes.call("twilio", "count", "/Messages.json")
            core = _core(engine, settings, endpoints, args.concurrency, null=name == "no_network")
            try:
                throughput[name] = await _drain(core, engine, args.rows)
            finally:
                await core.aclose()
            throughput[name].update(_delivered_once(fakes, engine, name, rows, twilio_before))
        latency: dict[str, Any] = {}
        for mode, wake in (("polling", False), ("wake_after_commit", True)):
            core = _core(engine, settings, endpoints, args.concurrency)
            try:
                latency[mode] = await _latency(
                    core,
                    engine,
                    fakes,
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
        fakes.stop()
        bus.set_bus(None)
        engine.dispose()


# A whole backend takes well under a minute; a run that sat idle for ten minutes was seen twice
# in about a dozen, with nothing scheduled on its event loop. This turns such a hang into an
# error that shows where every task was waiting.
RUN_LIMIT_S = 600.0


async def _watched(url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    main = asyncio.ensure_future(_run_backend(url, tmp, args))
    done, _ = await asyncio.wait({main}, timeout=RUN_LIMIT_S)
    if not done:
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)
        main.cancel()
        raise RuntimeError(f"benchmark did not finish within {RUN_LIMIT_S:.0f} s; task stacks above")
    return main.result()


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one backend on a fresh database."""
    with tempfile.TemporaryDirectory() as tmp_dir, _database(backend, Path(tmp_dir)) as url:
        upgrade_to_head(url)
        return asyncio.run(_watched(url, Path(tmp_dir), args))


def main() -> None:
    """Parse arguments, run every backend, print JSON."""
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
