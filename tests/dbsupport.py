"""Fresh test databases: one migrated template per backend, cloned for every test."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("SENTINEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pg_available() -> bool:
    """Whether the test PostgreSQL server answers."""
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def _admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def pg_url_for(name: str) -> str:
    """URL of database `name` on the test server."""
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def create_pg_database(template: str | None = None) -> str:
    """Create an empty (or template-cloned) database and return its URL."""
    name = f"sentinel_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.connect() as conn:
        clause = f" TEMPLATE {template}" if template else ""
        conn.exec_driver_sql(f"CREATE DATABASE {name}{clause}")
    engine.dispose()
    return pg_url_for(name)


def drop_pg_database(url: str) -> None:
    """Drop a test database, disconnecting whoever still holds it."""
    name = make_url(url).database
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()


@contextmanager
def migrated_template(backend: str, tmp_dir: Path) -> Iterator[str]:
    """Yield a migrated template: a SQLite file path or a PostgreSQL database name."""
    from sentinel_app.migrations import upgrade_to_head

    if backend == "sqlite":
        path = tmp_dir / "template.db"
        upgrade_to_head(f"sqlite:///{path}")
        yield str(path)
        return
    url = create_pg_database()
    upgrade_to_head(url)
    try:
        yield str(make_url(url).database)
    finally:
        drop_pg_database(url)


def clone_database(backend: str, template: str, tmp_dir: Path) -> str:
    """A fresh migrated database cloned from the template; returns its URL."""
    if backend == "sqlite":
        target = tmp_dir / f"db-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    return create_pg_database(template=template)
