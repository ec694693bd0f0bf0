"""A real Prometheus Alertmanager delivers to the running app: firing opens an alert, resolution closes it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from sentinel_app.models import Role
from sentinel_app.services import api_keys, integrations, teams, users
from tests.support.app_process import RunningApp, app_db_engine, free_port

pytestmark = pytest.mark.e2e

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
CONFIG = """\
route:
  receiver: sentinel
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sentinel
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


def _seed(app: RunningApp) -> tuple[str, str]:
    """An Alertmanager integration and a read key in the app's own database."""
    engine = app_db_engine(app.data_dir)
    with Session(engine, expire_on_commit=False) as session:
        team = teams.create_team(session, name=f"Storage {os.getpid()}-{time.monotonic_ns()}")
        person = users.create_user(session, email=f"am{time.monotonic_ns()}@example.com", name="Alertmanager test")
        assert team.id is not None and person.id is not None
        teams.set_membership(session, team_id=team.id, user_id=person.id, role=Role.VIEWER)
        _, token = integrations.create_integration(session, team_id=team.id, name="prometheus", kind="alertmanager")
        _, key = api_keys.issue_key(session, user_id=person.id, name="am-test", scopes=["read"])
        session.commit()
    engine.dispose()
    return token, key


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start Alertmanager on loopback with a webhook to the given URL; yields its API base."""
    if not Path(ALERTMANAGER).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("prometheus-alertmanager is not installed (scripts/bootstrap.sh --browser installs it)")
        pytest.skip("prometheus-alertmanager is not installed")
    processes: list[subprocess.Popen[bytes]] = []

    def start(webhook_url: str) -> str:
        config = tmp_path / "alertmanager.yml"
        config.write_text(CONFIG.format(url=webhook_url))
        port = free_port()
        log = (tmp_path / "alertmanager.log").open("wb")
        processes.append(subprocess.Popen(
            [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"
        _until(lambda: httpx.get(f"{base}/-/ready", timeout=2).status_code == 200, "Alertmanager ready")
        return base

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def _until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_alert_from_real_alertmanager_fires_and_resolves(
    app_server: RunningApp, alertmanager: Callable[[str], str]
) -> None:
    token, key = _seed(app_server)
    am = alertmanager(f"{app_server.base_url}/api/v1/webhooks/alertmanager/{token}")
    starts = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    alert = {"labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db-1"},
             "annotations": {"summary": "Disk full on db-1", "runbook_url": "https://runbooks.example/disk"},
             "generatorURL": "http://prom.example/graph", "startsAt": starts.isoformat()}
    assert httpx.post(f"{am}/api/v2/alerts", json=[alert], timeout=5).status_code == 200

    headers = {"Authorization": f"Bearer {key}"}
    found: dict[str, object] = {}

    def arrived(status: str) -> bool:
        page = httpx.get(f"{app_server.base_url}/api/v1/alerts", headers=headers, timeout=5).json()
        found.update(page["items"][0] if page["items"] else {})
        return found.get("status") == status

    _until(lambda: arrived("firing"), "the firing alert to arrive")
    assert found["title"] == "Disk full on db-1" and found["severity"] == "critical"
    links: list[dict[str, str]] = found["links"]  # type: ignore[assignment]
    assert any(link["kind"] == "runbook" and link["url"] == "https://runbooks.example/disk" for link in links)

    alert["endsAt"] = dt.datetime.now(dt.UTC).isoformat()
    assert httpx.post(f"{am}/api/v2/alerts", json=[alert], timeout=5).status_code == 200
    _until(lambda: arrived("resolved"), "the resolution to arrive")
    page = httpx.get(f"{app_server.base_url}/api/v1/alerts", headers=headers, timeout=5).json()
    assert len(page["items"]) == 1
