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
            if backend == "postgresql" and not _pg_up():
                continue
            tmp = tmp_path_factory.mktemp(f"template-{backend}")
            templates[backend] = stack.enter_context(dbsupport.migrated_template(backend, tmp))
        yield templates


def require_backend(backend: str) -> None:
    """Skip a backend not selected; PostgreSQL being unreachable skips locally and fails in CI."""
    if backend not in _backends():
        pytest.skip(f"{backend} not selected by SENTINEL_TEST_BACKENDS")
    if backend == "postgresql" and not _pg_up():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is not reachable at {dbsupport.PG_ADMIN_URL} (required in CI)")
        pytest.skip("PostgreSQL not reachable")


_pg_state: dict[str, bool] = {}


def _pg_up() -> bool:
    if "up" not in _pg_state:
        _pg_state["up"] = dbsupport.pg_available()
    return _pg_state["up"]


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, _templates: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a fresh, migrated database; the test runs once per backend."""
    backend: str = request.param
    require_backend(backend)
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


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """URL of a database with no tables at all, once per backend."""
    backend: str = request.param
    require_backend(backend)
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    url = dbsupport.create_pg_database()
    yield url
    dbsupport.drop_pg_database(url)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One small local Ray runtime for the whole test session."""
    import ray

    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        namespace="sentinel-test",
        log_to_driver=False,
        object_store_memory=128 * 1024 * 1024,
    )
    yield
    ray.shutdown()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> Iterator[pytest.MonkeyPatch]:
    """Isolated SENTINEL_* environment (data dir in tmp) with the settings cache cleared."""
    from sentinel_app.settings import get_settings

    for name in list(os.environ):
        if name.startswith("SENTINEL_") and not name.startswith("SENTINEL_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
