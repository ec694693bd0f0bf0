"""Escalation hosts on an existing Ray cluster (`SENTINEL_RAY_ADDRESS`), not the embedded runtime."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.escalation_support import crew, fire, policy
from tests.support.app_process import REPO_ROOT, free_port, stop_app

pytestmark = pytest.mark.slow


def test_hosts_run_on_an_existing_cluster(
    engine: sa.Engine, db: Session, db_url: str, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    people = crew(db, "Ana", now=now)
    pid = policy(
        db, people.team_id, [{"kind": "notify_users", "targets": {"user_ids": [people.users["Ana"]]}}]
    )
    alert_id = fire(engine, people.team_id, pid, now=now)
    port = free_port()
    # Ray's socket paths must fit the Unix limit (~107 bytes): pytest's tmp_path is too deep.
    short_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    marker = uuid.uuid4().hex
    # The cluster and its client must agree on Ray's token auth; this test turns it off for both.
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
        "SENTINEL_TEST_APP_ID": marker,
    }
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=1",
            "--include-dashboard=false",
            f"--temp-dir={short_dir}",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        child = subprocess.run(
            [sys.executable, "-m", "tests.support.cluster_child", f"127.0.0.1:{port}", db_url, str(alert_id)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert child.returncode == 0, child.stdout + child.stderr[-4000:]
        assert child.stdout.strip() == "paged 1"
    finally:
        stop_app(head, marker, grace=10)
        shutil.rmtree(short_dir, ignore_errors=True)
