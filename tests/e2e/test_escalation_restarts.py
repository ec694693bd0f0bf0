"""Whole-process crashes: the production app killed mid-escalation, and two apps racing on one PostgreSQL.

Each app is `sentinel up` with its own local Ray runtime (so its own escalation hosts). Time is
fast-forwarded by moving the escalation's due time in the database, which is what a host would
find after sleeping through the wait.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app.db import create_db_engine, utcnow
from sentinel_app.migrations import upgrade_to_head
from sentinel_app.models import AlertEvent, Escalation, Notification
from sentinel_app.services import api_keys
from tests import dbsupport
from tests.conftest import require_backend
from tests.escalation_support import crew, policy
from tests.support.app_process import run_app, stop_app

WAIT_S = 90.0


def _seed(url: str, steps: int, delays: list[int]) -> tuple[int, int, str, dict[str, int]]:
    """A team of three reachable people, a policy paging them in turn, and an admin API key."""
    upgrade_to_head(url)
    engine = create_db_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            people = crew(session, "Ana", "Bo", "Cy", now=utcnow())
            names = ["Ana", "Bo", "Cy"][:steps]
            pid = policy(
                session,
                people.team_id,
                [
                    {"kind": "notify_users", "targets": {"user_ids": [people.users[n]]}, "delay_minutes": d}
                    for n, d in zip(names, delays, strict=True)
                ],
            )
            _, key = api_keys.issue_key(
                session, user_id=people.users["Ana"], name="test", scopes=["read", "write", "admin"]
            )
            session.commit()
        return people.team_id, pid, key, people.users
    finally:
        engine.dispose()


def _raise(base_url: str, key: str, team_id: int, policy_id: int, title: str) -> int:
    reply = httpx.post(
        f"{base_url}/api/v1/alerts",
        json={"team_id": team_id, "title": title, "escalation_policy_id": policy_id},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def _rows(engine: sa.Engine, alert_ids: list[int]) -> list[tuple[int, int]]:
    """(alert, user) of every outbox row of these alerts."""
    with Session(engine) as session:
        found = session.exec(
            select(Notification.alert_id, Notification.user_id).where(
                col(Notification.alert_id).in_(alert_ids)
            )
        ).all()
    return [(int(a or 0), int(u or 0)) for a, u in found]


def _wait_rows(engine: sa.Engine, alert_ids: list[int], count: int) -> list[tuple[int, int]]:
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = _rows(engine, alert_ids)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.25)


def _step_notes(engine: sa.Engine, alert_id: int) -> Counter[str]:
    with Session(engine) as session:
        notes = session.exec(select(AlertEvent.note).where(AlertEvent.alert_id == alert_id)).all()
    return Counter(n.split(":")[0] for n in notes if n.startswith("Step"))


def test_killing_the_whole_app_mid_escalation_loses_and_repeats_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'sentinel.db'}"
    data.mkdir()
    team_id, policy_id, key, users = _seed(url, 3, [1, 60, 0])
    engine = create_db_engine(url)
    env = {"REFLEX_WEB_WORKDIR": str(tmp_path / "web"), "REFLEX_STATES_WORKDIR": str(tmp_path / "states")}
    try:
        with run_app(data, extra_env=env, log_name="crash-app-1.log") as first:
            alert_id = _raise(first.base_url, key, team_id, policy_id, "Checkout down")
            assert _wait_rows(engine, [alert_id], 1) == [(alert_id, users["Ana"])], first.log_tail()
            stop_app(first.process, first.marker, hard=True)  # kill -9, app and Ray alike
        # Sleep through the one-minute wait, as far as the escalation can tell.
        with engine.begin() as conn:
            conn.execute(
                sa.update(Escalation.__table__)  # type: ignore[attr-defined]
                .where(Escalation.__table__.c.alert_id == alert_id)  # type: ignore[attr-defined]
                .values(next_at=utcnow() - dt.timedelta(seconds=1))
            )
        with run_app(data, extra_env=env, log_name="crash-app-2.log") as second:
            rows = _wait_rows(engine, [alert_id], 2)
            time.sleep(2)  # anything doubled would show up by now
            rows = _rows(engine, [alert_id])
            assert sorted(rows) == sorted([(alert_id, users["Ana"]), (alert_id, users["Bo"])]), (
                second.log_tail()
            )
            assert _step_notes(engine, alert_id) == Counter({"Step 1": 1, "Step 2": 1})
    finally:
        engine.dispose()


def test_two_apps_racing_on_one_postgresql_page_each_step_once(tmp_path: Path) -> None:
    require_backend("postgresql")
    url = dbsupport.create_pg_database()
    engine = create_db_engine(url)
    try:
        team_id, policy_id, key, users = _seed(url, 3, [0, 0, 0])
        apps = []
        for name in ("a", "b"):
            env = {
                "SENTINEL_DATABASE_URL": url,
                "SENTINEL_ESCALATION_HOSTS": "2",
                "SENTINEL_ESCALATION_SWEEP_SECONDS": "1",
                "SENTINEL_ESCALATION_GRACE_SECONDS": "0",
                "REFLEX_WEB_WORKDIR": str(tmp_path / f"web-{name}"),
                "REFLEX_STATES_WORKDIR": str(tmp_path / f"states-{name}"),
            }
            apps.append(run_app(tmp_path / f"data-{name}", extra_env=env, log_name=f"race-app-{name}.log"))
        with apps[0] as a, apps[1] as b:
            alert_ids = [
                _raise((a, b)[i % 2].base_url, key, team_id, policy_id, f"Race {i}") for i in range(20)
            ]
            rows = _wait_rows(engine, alert_ids, 60)
            time.sleep(3)  # both host sets keep sweeping: give a double page time to appear
            rows = _rows(engine, alert_ids)
            assert len(rows) == 60, f"{len(rows)} rows\n{a.log_tail(4000)}\n{b.log_tail(4000)}"
            assert Counter(rows) == Counter(
                {(alert, user): 1 for alert in alert_ids for user in users.values()}
            )
            for alert_id in alert_ids:
                assert _step_notes(engine, alert_id) == Counter({"Step 1": 1, "Step 2": 1, "Step 3": 1})
    finally:
        engine.dispose()
        dbsupport.drop_pg_database(url)
