"""Database engine, sessions and column types shared by every model and service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlmodel import Session

from sentinel_app.settings import ConfigError, get_settings

WRITE_OPTION = "sentinel_write"


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """`timestamptz` that always returns aware UTC datetimes, also on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        value = value.astimezone(dt.UTC)
        # SQLite stores text; dropping tzinfo keeps values sortable as strings.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# JSON everywhere, JSONB on PostgreSQL so label filters can use indexes.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
# 64-bit ids on PostgreSQL; SQLite only autoincrements a plain INTEGER primary key.
BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for `url`, tuned per dialect (SQLite: WAL, FKs, explicit BEGIN)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError("SENTINEL_DATABASE_URL", f"malformed database URL ({exc})") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _tune_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername != "postgresql+psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_size", 10)
        # Fail fast on an unroutable host instead of hanging for minutes.
        kwargs.setdefault("connect_args", {"connect_timeout": 5})
        kwargs.setdefault("max_overflow", 20)
        return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
    raise ConfigError(
        "SENTINEL_DATABASE_URL",
        f"unsupported database {parsed.get_backend_name()!r} (use sqlite or postgresql)",
    )


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # SQLite has no row locks: writers take the write lock up front so that a
        # read-then-write transaction never fails half-way with SQLITE_BUSY.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: the configured database)."""
    return create_db_engine(url or get_settings().effective_database_url)


@contextmanager
def session_scope(*, write: bool = False, engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    `write=True` takes SQLite's write lock at BEGIN; on PostgreSQL it changes nothing.
    """
    bind = engine or get_engine()
    if write:
        bind = bind.execution_options(**{WRITE_OPTION: True})
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def check_database(engine: Engine) -> None:
    """Raise ConfigError naming the setting when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means "unreachable" to the operator
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            "SENTINEL_DATABASE_URL",
            f"cannot connect to {engine.url.render_as_string(hide_password=True)}: {reason}",
        ) from None
