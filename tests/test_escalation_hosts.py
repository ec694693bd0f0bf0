"""Escalation and schedule hosts as real Ray actors: fast-forwarded flows, and SIGKILL in the middle."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import ray
import sqlalchemy as sa
from sqlmodel import Session, select

from actors.escalation_host import get_host
from actors.schedule_host import get_schedule_host
from sentinel_app.db import session_scope
from sentinel_app.models import AlertEvent, PushDevice
from tests.escalation_support import crew, fire, messages, outbox, policy

NIGHT = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


@pytest.fixture
def hosts(ray_cluster: None, db_url: str) -> Iterator[Any]:
    """Make hosts for this test's database with a manual clock; kill them afterwards."""
    made: list[Any] = []

    def make(kind: str = "escalation", **extra: Any) -> Any:
        config = {
            "database_url": db_url,
            "shard": 0,
            "shard_count": 1,
            "schedule_shards": 1,
            "manual_clock": NIGHT.isoformat(),
            "log_level": "WARNING",
            **extra,
        }
        handle = get_host(config) if kind == "escalation" else get_schedule_host(config)
        made.append(handle)
        return handle

    yield make
    for handle in made:
        ray.kill(handle, no_restart=True)


def _pid(handle: Any) -> int:
    return int(ray.get(handle.ping.remote(), timeout=60)["pid"])


def _steps(engine: sa.Engine, alert_id: int) -> list[str]:
    with Session(engine) as session:
        return [
            e.note
            for e in session.exec(select(AlertEvent).where(AlertEvent.alert_id == alert_id))
            if e.note.startswith("Step")
        ]


def test_a_multi_step_escalation_runs_on_a_ray_host(engine: sa.Engine, db: Session, hosts: Any) -> None:
    people = crew(db, "Ana", "Bo", now=NIGHT)
    pid = policy(
        db,
        people.team_id,
        [
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Ana"]]}, "delay_minutes": 5},
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Bo"]]}, "delay_minutes": 5},
        ],
        repeat_count=1,
    )
    alert_id = fire(engine, people.team_id, pid, now=NIGHT)
    host = hosts()
    ray.get(host.wait_ready.remote(), timeout=60)
    ray.get(host.deliver.remote(messages(engine)), timeout=30)
    ray.get(host.idle.remote(), timeout=30)
    report = ray.get(host.advance_to.remote((NIGHT + 30 * MIN).isoformat()), timeout=60)
    assert [(r[0] - NIGHT) // MIN for r in outbox(engine, alert_id)] == [0, 5, 10, 15]
    assert report["steps"] == 4 and report["errors"] == 0


def test_sigkill_of_the_host_mid_escalation_neither_skips_nor_repeats_a_step(
    engine: sa.Engine, db: Session, hosts: Any
) -> None:
    people = crew(db, "Ana", "Bo", "Cy", now=NIGHT)
    pid = policy(
        db,
        people.team_id,
        [
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Ana"]]}, "delay_minutes": 5},
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Bo"]]}, "delay_minutes": 5},
            {"kind": "notify_users", "targets": {"user_ids": [people.users["Cy"]]}},
        ],
    )
    alert_ids = [fire(engine, people.team_id, pid, now=NIGHT, key=f"k{i}") for i in range(5)]
    host = hosts()
    ray.get(host.wait_ready.remote(), timeout=60)
    ray.get(host.deliver.remote(messages(engine)), timeout=30)
    ray.get(host.advance_to.remote((NIGHT + 5 * MIN).isoformat()), timeout=60)
    before = _pid(host)
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:  # Ray restarts it (max_restarts=-1) with empty memory; it rebuilds from the database
        try:
            if _pid(host) != before:
                break
        except ray.exceptions.RayActorError:
            pass
        assert time.monotonic() < deadline, "the host did not come back"
        time.sleep(0.2)
    ray.get(host.wait_ready.remote(), timeout=60)
    report = ray.get(host.advance_to.remote((NIGHT + 60 * MIN).isoformat()), timeout=60)
    assert report["rehydrated"] == 5
    for alert_id in alert_ids:
        assert [(r[0] - NIGHT) // MIN for r in outbox(engine, alert_id)] == [0, 5, 10]
        assert len(_steps(engine, alert_id)) == 3


def test_schedule_host_answers_on_call_and_announces_handoffs(
    engine: sa.Engine, db: Session, hosts: Any
) -> None:
    from sentinel_app.services import schedules

    people = crew(db, "Ana", "Bo", now=NIGHT)
    db.add(PushDevice(user_id=people.users["Bo"], platform="apns", token="ab" * 32, name="Bo's iPhone"))
    db.commit()
    with session_scope(write=True, engine=engine) as session:
        schedule = schedules.create_schedule(session, team_id=people.team_id, name="Primary", timezone="UTC")
        schedules.create_layer(
            session,
            schedule=schedule,
            fields={
                "name": "Days",
                "kind": "daily",
                "start_at": "2026-11-01T00:00:00Z",
                "participants": [people.users["Ana"], people.users["Bo"]],
            },
        )
        schedule_id = schedule.id
    host = hosts("schedule")
    expected_now = ray.get(host.who_is_on_call.remote([schedule_id], NIGHT.isoformat()), timeout=60)
    with Session(engine) as session:
        truth = [o.user_id for o in schedules.on_call_at(session, schedule_id=schedule_id, at=NIGHT)]  # type: ignore[arg-type]
    assert expected_now == {schedule_id: truth}
    report = ray.get(host.advance_to.remote((NIGHT + dt.timedelta(days=1)).isoformat()), timeout=60)
    assert report["handoffs"] == 1
    rows = outbox(engine)
    if truth == [people.users["Ana"]]:  # Bo starts a shift and has a device: one "you are on call" push
        assert [(r[1], r[2]) for r in rows] == [(people.users["Bo"], "apns")]
        assert rows[0][3].startswith(f"oncall:s{schedule_id}:u{people.users['Bo']}:oncall_start:")
    else:
        assert rows == []
