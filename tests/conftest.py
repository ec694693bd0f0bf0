"""Shared fixtures: a fresh database per test on every backend, one Ray runtime per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from sentinel_app.db import create_db_engine
from tests import dbsupport

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")


def _backends() -> list[str]:
    wanted = os.environ.get("SENTINEL_TEST_BACKENDS", "sqlite,postgresql")
    return [b.strip() for b in wanted.split(",") if b.strip()]


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Migrate one template database per backend for the whole session."""
    from contextlib import ExitStack

    templates: dict[str, str] = {}
    with ExitStack() as stack:
        for backend in _backends():
            if backend == "postgresql" and not dbsupport.pg_available():
                continue
            tmp = tmp_path_factory.mktemp(f"template-{backend}")
            templates[backend] = stack.enter_context(dbsupport.migrated_template(backend, tmp))
        yield templates


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, _templates: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a fresh, migrated database; the test runs once per backend.

    PostgreSQL being unreachable skips its half locally and fails it in CI.
    """
    backend: str = request.param
    if backend not in _backends():
        pytest.skip(f"{backend} not selected by SENTINEL_TEST_BACKENDS")
    if backend not in _templates:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is not reachable at {dbsupport.PG_ADMIN_URL} (required in CI)")
        pytest.skip("PostgreSQL not reachable")
    url = dbsupport.clone_database(backend, _templates[backend], tmp_path_factory.mktemp("db"))
    yield url
    if backend == "postgresql":
        dbsupport.drop_pg_database(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on the fresh database."""
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: sa.Engine) -> Iterator[Session]:
    """A session on the fresh database (the caller commits)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session
