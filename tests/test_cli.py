"""The `sentinel` command: migrations, first admin, demo data, and clear configuration errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from sentinel_app.cli import main
from sentinel_app.db import create_db_engine
from sentinel_app.migrations import current_revision, head_revision
from sentinel_app.models import (
    ApiKey,
    EscalationPolicy,
    EscalationStep,
    Integration,
    LayerParticipant,
    RotationLayer,
    Schedule,
    Team,
    TeamMembership,
    User,
)
from sentinel_app.security import hash_token, verify_password

ROOT = Path(__file__).resolve().parent.parent
TABLES = [
    User,
    Team,
    TeamMembership,
    ApiKey,
    Integration,
    Schedule,
    RotationLayer,
    LayerParticipant,
    EscalationPolicy,
    EscalationStep,
]


@pytest.fixture
def cli_db(settings_env: pytest.MonkeyPatch, empty_db_url: str) -> str:
    """An empty database configured through SENTINEL_DATABASE_URL."""
    settings_env.setenv("SENTINEL_DATABASE_URL", empty_db_url)
    return empty_db_url


def _counts(url: str) -> dict[str, int]:
    engine = create_db_engine(url)
    with Session(engine) as session:
        counts = {t.__name__: session.exec(select(func.count()).select_from(t)).one() for t in TABLES}
    engine.dispose()
    return counts


def test_db_upgrade_migrates_an_empty_database(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    engine = create_db_engine(cli_db)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    assert f"database at revision {head_revision()}" in capsys.readouterr().out


def test_demo_seeds_once_and_prints_working_credentials(
    cli_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo"]) == 0
    first = capsys.readouterr().out
    counts = _counts(cli_db)
    assert counts == {
        "User": 4,
        "Team": 1,
        "TeamMembership": 4,
        "ApiKey": 1,
        "Integration": 1,
        "Schedule": 1,
        "RotationLayer": 1,
        "LayerParticipant": 4,
        "EscalationPolicy": 1,
        "EscalationStep": 2,
    }

    assert main(["demo"]) == 0
    second = capsys.readouterr().out
    assert _counts(cli_db) == counts
    assert "already present" in second
    assert first.splitlines()[1:] == second.splitlines()[1:]

    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in first.splitlines()[1:]}
    email, password = (part.strip() for part in lines["sign in"].split(" / "))
    api_key = lines["API key"]
    token = lines["webhook"].rsplit("/", 1)[1]
    assert lines["webhook"].startswith("http://localhost:3000/api/v1/webhooks/alertmanager/it_")
    assert lines["grafana_oncall"].endswith(f"/integrations/v1/alertmanager/{token}/")

    engine = create_db_engine(cli_db)
    with Session(engine) as session:
        admin = session.exec(select(User).where(User.email == email)).one()
        assert verify_password(admin.password_hash, password)
        assert (
            session.exec(select(ApiKey).where(ApiKey.key_hash == hash_token(api_key))).one().user_id
            == admin.id
        )
        assert session.exec(select(Integration).where(Integration.token_hash == hash_token(token))).one()
        # No secret is stored in the clear.
        assert api_key not in str(session.exec(select(ApiKey)).all())
    engine.dispose()


def test_admin_create_makes_a_global_admin_and_refuses_duplicates(
    cli_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["admin", "create", "--email", "Root@Example.com", "--password", "correct horse battery"]) == 0
    )
    assert "created administrator root@example.com" in capsys.readouterr().out
    engine = create_db_engine(cli_db)
    with Session(engine) as session:
        root = session.exec(select(User).where(User.email == "root@example.com")).one()
        assert root.is_admin and verify_password(root.password_hash, "correct horse battery")
    engine.dispose()
    assert main(["admin", "create", "--email", "root@example.com", "--password", "another password"]) == 1
    assert "email: a user with email root@example.com already exists" in capsys.readouterr().err
    assert main(["admin", "create", "--email", "not-an-email", "--password", "long enough pw"]) == 1
    assert "email: not a valid email address" in capsys.readouterr().err


def _run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    return subprocess.run(
        [sys.executable, "-m", "sentinel_app.cli", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "setting"),
    [
        (("db", "upgrade"), {"SENTINEL_DATABASE_URL": "not a url"}, "SENTINEL_DATABASE_URL: malformed"),
        (
            ("db", "upgrade"),
            {"SENTINEL_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/x"},
            "SENTINEL_DATABASE_URL: cannot connect",
        ),
        (
            ("db", "upgrade"),
            {"SENTINEL_DATABASE_URL": "mysql://h/db"},
            "SENTINEL_DATABASE_URL: unsupported database",
        ),
        (("up",), {"SENTINEL_RAY_ADDRESS": "127.0.0.1:9"}, "SENTINEL_RAY_ADDRESS: cannot reach Ray"),
        (("up",), {"SENTINEL_RAY_ADDRESS": "no-port-here"}, "SENTINEL_RAY_ADDRESS: expected host:port"),
        (("demo",), {"SENTINEL_PORT": "eighty"}, "SENTINEL_PORT:"),
    ],
)
def test_bad_configuration_fails_fast_with_one_line(
    args: tuple[str, ...], env: dict[str, str], setting: str, tmp_path: Path
) -> None:
    result = _run_cli(*args, SENTINEL_DATA_DIR=str(tmp_path), **env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith(f"sentinel: error: {setting}")
    assert "Traceback" not in result.stderr
