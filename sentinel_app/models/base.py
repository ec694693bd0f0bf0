"""Column helpers shared by every table: ids, UTC timestamps, JSON, enum-like strings."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sentinel_app.db import BigIntId, JSONType, UTCDateTime, utcnow

# Stable constraint names keep Alembic autogenerate and SQLite batch mode deterministic.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def id_field() -> Any:
    """A 64-bit autoincrement primary key."""
    return Field(default=None, primary_key=True, sa_type=BigIntId)


def fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE", index: bool = True) -> Any:
    """A 64-bit foreign key to `target` (``table.column``)."""
    return Field(
        default=None if nullable else ...,
        sa_column_args=[sa.ForeignKey(target, ondelete=ondelete)],
        sa_type=BigIntId,
        nullable=nullable,
        index=index,
    )


def created_at_field() -> Any:
    """Creation instant, set on insert."""
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def updated_at_field() -> Any:
    """Last change instant, refreshed on every update."""
    return Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        nullable=False,
        sa_column_kwargs={"onupdate": utcnow},
    )


def when(*, nullable: bool = True, index: bool = False) -> Any:
    """An optional UTC instant."""
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def json_field(factory: type = dict) -> Any:
    """A JSON document (JSONB on PostgreSQL)."""
    return Field(default_factory=factory, sa_type=JSONType, nullable=False)


def enum_field(default: StrEnum | None = None, *, length: int = 24, index: bool = False) -> Any:
    """An enum stored as its string value (no native DB enum, so migrations stay simple)."""
    return Field(
        default=default if default is not None else ...,
        sa_type=sa.String(length),
        nullable=False,
        index=index,
    )


def text_field(
    length: int | None = None, *, default: Any = "", nullable: bool = False, index: bool = False
) -> Any:
    """A string column; unbounded text when `length` is None."""
    return Field(
        default=default,
        sa_type=sa.String(length) if length else sa.Text(),
        nullable=nullable,
        index=index,
    )


def require_id(row: SQLModel) -> int:
    """The primary key of a flushed row (never None once the row is in the database)."""
    value = getattr(row, "id", None)
    if value is None:
        raise ValueError(f"{type(row).__name__} has no id yet; flush the session first")
    return int(value)
