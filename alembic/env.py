"""Alembic environment: migrates the configured database using the models' metadata."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel

import sentinel_app.models  # noqa: F401  (registers every table)
from sentinel_app.db import UTCDateTime, create_db_engine
from sentinel_app.settings import get_settings

target_metadata = SQLModel.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations must not import app types: UTCDateTime is a timestamptz to the database.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        # SQLite can only ALTER through table copies.
        render_as_batch=True,
        **kwargs,
    )


def _url() -> str:
    return context.config.attributes.get("url") or get_settings().effective_database_url


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on a live connection (one given by the caller, or a new one)."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(_url())
    try:
        with engine.connect() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
