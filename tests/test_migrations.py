"""Migrations create the whole model on an empty database and match the models exactly."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import sentinel_app.models  # noqa: F401  (registers every table)
from sentinel_app.db import create_db_engine
from sentinel_app.migrations import current_revision, head_revision, upgrade_to_head


def test_upgrade_head_creates_every_table_and_autogenerate_finds_no_difference(empty_db_url: str) -> None:
    upgrade_to_head(empty_db_url)
    engine = create_db_engine(empty_db_url)
    try:
        assert current_revision(engine) == head_revision()
        tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set(SQLModel.metadata.tables)
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
            )
        assert diff == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(empty_db_url: str) -> None:
    upgrade_to_head(empty_db_url)
    upgrade_to_head(empty_db_url)
    engine = create_db_engine(empty_db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_open_alert_uniqueness_index_is_partial(empty_db_url: str) -> None:
    upgrade_to_head(empty_db_url)
    engine = create_db_engine(empty_db_url)
    try:
        indexes = {ix["name"]: ix for ix in sa.inspect(engine).get_indexes("alerts")}
        assert indexes["uq_alerts_open_integration_dedup"]["unique"]
        assert indexes["uq_alerts_open_team_dedup"]["unique"]
    finally:
        engine.dispose()
