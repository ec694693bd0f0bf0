"""The app's relay: committed alerts reach real Ray hosts through the bus, and host events come back."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
import ray
import sqlalchemy as sa
from sqlmodel import Session

from actors.relay import Relay
from sentinel_app import bus
from sentinel_app.settings import Settings
from tests.escalation_support import crew, fire, outbox, policy

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("ray_cluster")]


async def test_a_committed_alert_is_paged_through_the_relay(
    engine: sa.Engine, db: Session, db_url: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    people = crew(db, "Ana", "Bo", now=now)
    pid = policy(
        db,
        people.team_id,
        [
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Ana"]]}},
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Bo"]]}},
        ],
    )
    event_bus = bus.create_bus(db_url)
    bus.set_bus(event_bus)
    await event_bus.start()
    relay = Relay(Settings(database_url=db_url, escalation_hosts=2, dispatchers=0))
    task = asyncio.create_task(relay.run())
    try:
        while not relay.hosts:
            await asyncio.sleep(0.05)
        await asyncio.gather(*(h.wait_ready.remote() for h in relay.hosts))
        async with bus.subscribe({"alert.updated"}) as updates:
            alert_ids = [
                fire(engine, people.team_id, pid, now=dt.datetime.now(dt.UTC), key=f"k{i}") for i in range(4)
            ]
            deadline = time.monotonic() + 30
            while len(outbox(engine)) < 8 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            # The hosts' own events (here: "escalated") reach this process's bus, on SQLite too.
            seen = await asyncio.wait_for(updates.__anext__(), 10)
        keys = sorted(row[3].split(":")[1] for row in outbox(engine))  # "a<alert id>" of each row
        assert keys == sorted(f"a{a}" for a in alert_ids for _ in range(2))
        assert seen.data["id"] in alert_ids
        assert relay.failures == 0 and relay.delivered >= 1
    finally:
        task.cancel()
        for host in [*relay.hosts, *relay.schedule_hosts]:
            ray.kill(host, no_restart=True)
        await event_bus.stop()
        bus.set_bus(None)
