"""Escalation benchmark: 100,000 live escalations on Ray hosts over PostgreSQL (the production path).

Measures: memory of the escalation hosts holding every alert's actor; timer lateness p50/p99/max
while idle and while 10,000 acknowledgements arrive (committed through the alert service and
relayed over LISTEN/NOTIFY, as in the app); acknowledgement throughput; rehydration time of every
escalation after a host is SIGKILLed; and ingest-commit → first outbox row latency.
Timers fire all along: due times are spread so about `--rate` steps per second come due, and
each one is claimed in the database like any real step. Prints one JSON object.
Run: `.venv/bin/python -m tests.perf.bench_escalation [--alerts 100000] [--hosts 2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray
import sqlalchemy as sa
from sqlmodel import Session, col, select

from actors.relay import Relay
from sentinel_app import bus
from sentinel_app.db import create_db_engine, session_scope, utcnow
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.domain.escalation_policy import snapshot_to_json
from sentinel_app.migrations import upgrade_to_head
from sentinel_app.models import Alert, Escalation, Notification
from sentinel_app.services import alerts
from sentinel_app.services.actor import Actor
from sentinel_app.services.escalation_policies import load_snapshots
from sentinel_app.settings import Settings
from tests import dbsupport
from tests.escalation_support import crew, fire, policy


def _log(message: str) -> None:
    print(f"bench_escalation: {message}", file=sys.stderr, flush=True)


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)


def _seed(engine: sa.Engine, count: int, spread_s: float, start_in_s: float) -> tuple[int, int, int]:
    """`count` firing alerts with escalations due over `spread_s` seconds; returns (team, user, policy)."""
    now = utcnow()
    with Session(engine, expire_on_commit=False) as session:
        people = crew(session, "Ana", now=now)
        ana = people.users["Ana"]
        # Step 1 pages Ana, then an hour's wait: each escalation's timer fires once in the run.
        pid = policy(
            session,
            people.team_id,
            [
                {"kind": "notify_users", "targets": {"user_ids": [ana]}, "delay_minutes": 60},
                {"kind": "notify_users", "targets": {"user_ids": [ana]}},
            ],
        )
        snapshot = snapshot_to_json(load_snapshots(session, policy_ids=[pid])[pid])
    alert_table = Alert.__table__  # type: ignore[attr-defined]
    esc_table = Escalation.__table__  # type: ignore[attr-defined]
    batch = 5_000
    with engine.begin() as conn:
        for first in range(0, count, batch):
            rows = [
                {
                    "team_id": people.team_id,
                    "status": "firing",
                    "severity": "critical",
                    "title": f"bench {i}",
                    "message": "",
                    "labels": {},
                    "annotations": {},
                    "links": [],
                    "source": "bench",
                    "dedup_key": f"bench-{i}",
                    "occurrence_count": 1,
                    "fired_at": now,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "created_at": now,
                    "updated_at": now,
                    "escalation_policy_id": pid,
                }
                for i in range(first, min(count, first + batch))
            ]
            ids = [
                r.id
                for r in conn.execute(
                    sa.insert(alert_table).returning(alert_table.c.id, sort_by_parameter_order=True), rows
                )
            ]
            conn.execute(
                sa.insert(esc_table),
                [
                    {
                        "alert_id": alert_id,
                        "policy_id": pid,
                        "policy_snapshot": snapshot,
                        "state": "active",
                        "step_index": 0,
                        "cycle": 0,
                        "version": 0,
                        "shard": 0,
                        "created_at": now,
                        "updated_at": now,
                        "next_at": now + dt.timedelta(seconds=start_in_s + spread_s * ((first + k) / count)),
                    }
                    for k, alert_id in enumerate(ids)
                ],
            )
    return people.team_id, ana, pid


def _host_reports(relay: Relay) -> list[dict[str, Any]]:
    return [ray.get(h.ping.remote(), timeout=120) for h in relay.hosts]


async def _reset(relay: Relay) -> None:
    await asyncio.gather(*(h.reset_lateness.remote() for h in relay.hosts))


async def _lateness(relay: Relay) -> dict[str, Any]:
    reports = await asyncio.gather(*(h.ping.remote() for h in relay.hosts))
    return {"per_host": [r["lateness_ms"] for r in reports], "steps": sum(r["steps"] for r in reports)}


def _ack_many(engine: sa.Engine, alert_ids: list[int], workers: int) -> float:
    actor = Actor(label="bench", channel="api")

    def ack(chunk: list[int]) -> None:
        for alert_id in chunk:
            with session_scope(write=True, engine=engine) as session:
                alerts.transition(
                    session, alert_id=alert_id, transition=Transition.ACKNOWLEDGE, actor=actor, now=utcnow()
                )

    began = time.perf_counter()
    chunks = [alert_ids[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(ack, chunks))
    return time.perf_counter() - began


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    url = dbsupport.create_pg_database()
    engine = create_db_engine(url, pool_size=8)
    try:
        upgrade_to_head(url)
        _log(f"seeding {args.alerts} alerts")
        began = time.perf_counter()
        team_id, _, _ = _seed(engine, args.alerts, args.alerts / args.rate, start_in_s=args.warmup)
        seed_s = time.perf_counter() - began
        settings = Settings(
            database_url=url,
            escalation_hosts=args.hosts,
            escalation_sweep_seconds=10,
            escalation_grace_seconds=5,
            log_level="WARNING",
            dispatchers=0,  # outbox delivery is measured by bench_outbox
        )
        event_bus = bus.create_bus(url)
        bus.set_bus(event_bus)
        await event_bus.start()
        relay = Relay(settings)
        relay_task = asyncio.create_task(relay.run())
        while not relay.hosts:
            await asyncio.sleep(0.1)
        _log("waiting for the hosts to rehydrate")
        await asyncio.gather(*(h.wait_ready.remote() for h in relay.hosts))
        start_reports = _host_reports(relay)
        memory = {
            "alerts_per_host": [r["actors"] for r in start_reports],
            "rss_mb_per_host": [round(r["rss_bytes"] / 2**20, 1) for r in start_reports],
            "rss_mb_total": round(sum(r["rss_bytes"] for r in start_reports) / 2**20, 1),
            "initial_rehydrate_s": [r["rehydrate_seconds"] for r in start_reports],
        }
        _log(f"hosts hold {sum(memory['alerts_per_host'])} escalations, {memory['rss_mb_total']} MB")
        await asyncio.sleep(max(0.0, args.warmup - (time.perf_counter() - began)))  # until steps come due
        await _reset(relay)
        _log(f"idle phase {args.seconds} s")
        await asyncio.sleep(args.seconds)
        idle = await _lateness(relay)

        # Acknowledge alerts whose timers are not due during the burst, like people acking pages.
        with Session(engine) as session:
            ack_ids = list(
                session.exec(
                    select(Alert.id)
                    .where(Alert.team_id == team_id)
                    .order_by(col(Alert.id).desc())
                    .limit(args.acks)
                ).all()
            )
        await _reset(relay)
        _log(f"acknowledging {len(ack_ids)} alerts")
        ack_s = await asyncio.to_thread(_ack_many, engine, [int(i or 0) for i in ack_ids], 4)
        await asyncio.sleep(1.0)
        burst = await _lateness(relay)

        # ingest-commit → first outbox row, with a policy whose first step pages at once.
        with Session(engine, expire_on_commit=False) as session:
            fast = policy(
                session,
                team_id,
                [{"kind": "notify_users", "targets": {"user_ids": [_first_user(session, team_id)]}}],
                name="fast",
            )
        committed: dict[int, dt.datetime] = {}
        for i in range(args.first_page):
            alert_id = await asyncio.to_thread(fire, engine, team_id, fast, now=utcnow(), key=f"fp-{i}")
            committed[alert_id] = utcnow()
            await asyncio.sleep(1 / 20)
        await asyncio.sleep(3.0)
        with Session(engine) as session:
            firsts = {
                int(a or 0): c
                for a, c in session.exec(
                    select(Notification.alert_id, sa.func.min(Notification.created_at))
                    .where(col(Notification.alert_id).in_(list(committed)))
                    .group_by(col(Notification.alert_id))
                ).all()
            }
        latencies = [(firsts[a] - t).total_seconds() * 1000 for a, t in committed.items() if a in firsts]

        # Kill one host: Ray restarts it empty and it rebuilds its shard from the database.
        victim = relay.hosts[0]
        before = ray.get(victim.ping.remote())
        os.kill(before["pid"], signal.SIGKILL)
        killed_at = time.perf_counter()
        while True:
            try:
                report = await asyncio.wait_for(victim.ping.remote(), 5)
                if report["pid"] != before["pid"]:
                    break
            except Exception:
                pass
            await asyncio.sleep(0.2)
        await victim.wait_ready.remote()
        recovered = await victim.ping.remote()
        rehydration = {
            "escalations": recovered["rehydrated"],
            "rehydrate_s": recovered["rehydrate_seconds"],
            "kill_to_ready_s": round(time.perf_counter() - killed_at, 2),
        }
        relay_task.cancel()
        for handle in [*relay.hosts, *relay.schedule_hosts]:
            ray.kill(handle, no_restart=True)
        await event_bus.stop()
        return {
            "alerts": args.alerts,
            "hosts": args.hosts,
            "seed_s": round(seed_s, 1),
            "due_steps_per_s": args.rate,
            "memory": memory,
            "lateness_idle_ms": idle,
            "acks": {
                "count": len(ack_ids),
                "seconds": round(ack_s, 2),
                "per_s": round(len(ack_ids) / ack_s, 1),
            },
            "lateness_during_acks_ms": burst,
            "ingest_to_first_outbox_ms": {
                "n": len(latencies),
                "missing": len(committed) - len(latencies),
                "p50": _pct(latencies, 0.5),
                "p99": _pct(latencies, 0.99),
                "mean": round(statistics.fmean(latencies), 2) if latencies else None,
            },
            "rehydration_after_sigkill": rehydration,
        }
    finally:
        engine.dispose()
        dbsupport.drop_pg_database(url)


def _first_user(session: Session, team_id: int) -> int:
    from sentinel_app.models import TeamMembership

    return int(
        session.exec(select(TeamMembership.user_id).where(TeamMembership.team_id == team_id)).first() or 0
    )


def main() -> None:
    """Run the benchmark and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rate", type=float, default=50.0, help="escalation steps coming due per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the idle phase")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the first due time")
    parser.add_argument("--acks", type=int, default=10_000)
    parser.add_argument("--first-page", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local",
        num_cpus=os.cpu_count() or 1,
        include_dashboard=False,
        log_to_driver=False,
        namespace="sentinel-bench",
    )
    try:
        result = asyncio.run(_run(args))
    finally:
        ray.shutdown()
    result.update(
        {
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
            "python": platform.python_version(),
            "date": dt.datetime.now(dt.UTC).date().isoformat(),
            "command": "python -m tests.perf.bench_escalation " + " ".join(sys.argv[1:]),
        }
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
