"""GraphQL benchmark on PostgreSQL: page latency at 10,000 alerts, subscription fan-out latency.

* `alertsConnection(first: 50)` and `alerts(first: 50)` with nested fields (assignee, team, last
  timeline entry and its author, labels, escalation), paging through the whole table with cursors,
  one request at a time over keep-alive HTTP: p50/p90/p99 in ms, for an installation administrator
  (every team) and for a responder (team filter).
* Fan-out: `subscribers` websocket clients subscribe to `alertCreated` on process B; alerts are
  raised one at a time through REST on process A (so every event crosses LISTEN/NOTIFY). Latency
  is from just before the POST to each subscriber's receipt; the POST's own latency is reported too.

The servers are `create_api` under granian (the server Reflex runs on), one worker each, started
by tests/graphql/serve.py. The client runs on the same machine and competes for the same cores.
`--gc-freeze` makes the servers call gc.freeze() after startup: without it, a full garbage
collection of the app's long-lived objects now and then adds ~150 ms to one request.
Prints one JSON object. Run: `.venv/bin/python -m tests.perf.bench_graphql [--alerts 10000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import time
from typing import Any

import aiohttp
import httpx
import sqlalchemy as sa
from sqlmodel import Session

from sentinel_app.db import create_db_engine
from sentinel_app.migrations import upgrade_to_head
from sentinel_app.models import Alert, AlertEvent, Role
from sentinel_app.models.base import require_id
from sentinel_app.services import api_keys, teams, users
from tests import dbsupport
from tests.graphql.serve import serving

CONNECTION = """query($after: String) { alertsConnection(first: 50, after: $after) {
  pageInfo { hasNextPage endCursor }
  edges { cursor node {
    id title severity status firedAt labels { key value }
    assignedTo { id name email } team { id name }
    lastEvent { kind at actor actorUser { name } } escalation { state }
  } } } }"""
LIST = """query($after: String) { alerts(first: 50, after: $after) {
  id title severity status firedAt cursor labels { key value }
  assignedTo { id name email } team { id name }
  lastEvent { kind at actor actorUser { name } } escalation { state } } }"""
CREATED = "subscription { alertCreated { id title severity team { name } assignedTo { name } } }"


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "count": len(ordered),
        "p50_ms": pick(0.50),
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def seed(url: str, alerts: int) -> dict[str, Any]:
    """Two teams, an admin and a responder with keys, `alerts` alerts with two timeline entries each."""
    upgrade_to_head(url)
    engine = create_db_engine(url)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with Session(engine, expire_on_commit=False) as session:
        team = teams.create_team(session, name="Payments")
        other = teams.create_team(session, name="Search")
        admin = users.create_user(session, email="admin@example.com", name="Admin", is_admin=True)
        responder = users.create_user(session, email="responder@example.com", name="Responder")
        for person, role in ((admin, Role.ADMIN), (responder, Role.RESPONDER)):
            teams.set_membership(session, team_id=require_id(team), user_id=require_id(person), role=role)
        _, admin_key = api_keys.issue_key(
            session, user_id=require_id(admin), name="b", scopes=["read", "write"]
        )
        _, responder_key = api_keys.issue_key(
            session, user_id=require_id(responder), name="b", scopes=["read", "write"]
        )
        session.commit()
        team_ids, people = [require_id(team), require_id(other)], [require_id(admin), require_id(responder)]
    table: sa.Table = Alert.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        for chunk in range(0, alerts, 1000):
            rows: list[dict[str, Any]] = []
            for i in range(chunk, min(alerts, chunk + 1000)):
                at = start + dt.timedelta(seconds=30 * i)
                acknowledged = i % 3 == 0
                rows.append(
                    {
                        "team_id": team_ids[i % 2],
                        "status": "acknowledged" if acknowledged else "firing",
                        "severity": ("critical", "error", "warning", "info")[i % 4],
                        "title": f"Alert {i}",
                        "message": f"Something happened to host-{i % 97}",
                        "labels": {"alertname": f"Alert{i % 13}", "instance": f"host-{i % 97}"},
                        "annotations": {"summary": "benchmark"},
                        "links": [],
                        "source": "bench",
                        "dedup_key": f"bench-{i}",
                        "occurrence_count": 1,
                        "fired_at": at,
                        "first_seen_at": at,
                        "last_seen_at": at,
                        "acknowledged_at": at + dt.timedelta(minutes=2) if acknowledged else None,
                        "acknowledged_by_id": people[i % 2] if acknowledged else None,
                        "assigned_to_id": people[i % 2] if acknowledged else None,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
            ids = conn.execute(sa.insert(table).returning(table.c.id), rows).scalars().all()
            events = []
            for alert_id, row in zip(ids, rows, strict=True):
                events.append(_event(alert_id, "created", None, "bench", row["fired_at"]))
                if row["acknowledged_at"] is not None:
                    events.append(
                        _event(
                            alert_id,
                            "acknowledged",
                            row["acknowledged_by_id"],
                            "someone",
                            row["acknowledged_at"],
                        )
                    )
            conn.execute(sa.insert(AlertEvent.__table__), events)  # type: ignore[attr-defined]
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return {"admin_key": admin_key, "responder_key": responder_key, "team_id": team_ids[0]}


def _event(alert_id: int, kind: str, user_id: int | None, actor: str, at: dt.datetime) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "kind": kind,
        "actor_user_id": user_id,
        "actor": actor,
        "channel": "bench",
        "note": "",
        "payload": {},
        "created_at": at,
    }


def page_latency(base_url: str, key: str, query: str, requests: int) -> dict[str, Any]:
    """Page through the alerts with cursors, `requests` times (restarting at the end), timing each."""
    timings: list[float] = []
    after: str | None = None
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for i in range(requests + 20):
            started = time.perf_counter()
            response = client.post("/api/graphql", json={"query": query, "variables": {"after": after}})
            elapsed = (time.perf_counter() - started) * 1000
            body = response.json()
            if "errors" in body:
                raise RuntimeError(body["errors"])
            data = body["data"]
            if "alertsConnection" in data:
                info = data["alertsConnection"]["pageInfo"]
                after = info["endCursor"] if info["hasNextPage"] else None
            else:
                items = data["alerts"]
                after = items[-1]["cursor"] if len(items) == 50 else None
            if i >= 20:  # the first requests warm caches and connections
                timings.append(elapsed)
    return _percentiles(timings)


async def fanout(
    publish_url: str, subscribe_url: str, key: str, team_id: int, subscribers: int, events: int
) -> dict[str, Any]:
    """Latency from raising an alert on one process to each of `subscribers` websockets on another."""
    auth = {"Authorization": f"Bearer {key}"}
    arrivals: dict[str, list[float]] = {}
    ready = asyncio.Event()
    connected = 0

    async def subscriber(http: aiohttp.ClientSession) -> None:
        nonlocal connected
        ws_url = subscribe_url.replace("http", "ws", 1) + "/api/graphql"
        async with http.ws_connect(ws_url, protocols=("graphql-transport-ws",), max_msg_size=0) as ws:
            await ws.send_json({"type": "connection_init", "payload": auth})
            assert (await ws.receive_json())["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": CREATED}})
            await ws.send_json({"type": "ping"})
            assert (await ws.receive_json())["type"] == "pong"
            connected += 1
            if connected == subscribers:
                ready.set()
            received = 0
            while received < events:
                message = await ws.receive_json()
                now = time.perf_counter()
                if message.get("type") != "next":
                    raise RuntimeError(message)
                arrivals.setdefault(message["payload"]["data"]["alertCreated"]["title"], []).append(now)
                received += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = [asyncio.create_task(subscriber(http)) for _ in range(subscribers)]
        await asyncio.wait_for(ready.wait(), 120)
        sent: dict[str, float] = {}
        post_ms: list[float] = []
        async with httpx.AsyncClient(base_url=publish_url, headers=auth, timeout=30) as client:
            for i in range(events):
                title = f"fan-out {i}"
                sent[title] = time.perf_counter()
                response = await client.post("/api/v1/alerts", json={"team_id": team_id, "title": title})
                post_ms.append((time.perf_counter() - sent[title]) * 1000)
                response.raise_for_status()
                await asyncio.sleep(0.3)  # let one event fan out before the next
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    deliveries = [(at - sent[title]) * 1000 for title, times in arrivals.items() for at in times]
    last = [(max(times) - sent[title]) * 1000 for title, times in arrivals.items()]
    return {
        "subscribers": subscribers,
        "events": events,
        "delivery": _percentiles(deliveries),
        "last_subscriber_per_event": _percentiles(last),
        "rest_post": _percentiles(post_ms),
    }


def main() -> None:
    """Parse arguments, seed PostgreSQL, start two app processes, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="servers call gc.freeze() after startup (see tests/graphql/serve.py)",
    )
    args = parser.parse_args()
    url = dbsupport.create_pg_database()
    try:
        seeded = seed(url, args.alerts)
        with serving(url, count=2, gc_freeze=args.gc_freeze) as (process_a, process_b):
            results = {
                "alertsConnection_first_50_admin": page_latency(
                    process_a, seeded["admin_key"], CONNECTION, args.requests
                ),
                "alerts_first_50_admin": page_latency(process_a, seeded["admin_key"], LIST, args.requests),
                "alertsConnection_first_50_responder": page_latency(
                    process_a, seeded["responder_key"], CONNECTION, args.requests
                ),
                "fanout_alertCreated": asyncio.run(
                    fanout(
                        process_a,
                        process_b,
                        seeded["admin_key"],
                        seeded["team_id"],
                        args.subscribers,
                        args.events,
                    )
                ),
            }
    finally:
        dbsupport.drop_pg_database(url)
    print(
        json.dumps(
            {
                "benchmark": "graphql",
                "database": "postgresql",
                "alerts": args.alerts,
                "gc_freeze": args.gc_freeze,
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
