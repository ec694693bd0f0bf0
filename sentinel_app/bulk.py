"""Many-row INSERTs: one short, fixed statement per table on PostgreSQL, whatever the row count.

SQLAlchemy's multi-row form writes `VALUES (…), (…), …` with a placeholder per cell, so every
batch size is a new, long SQL string that psycopg re-tokenises in Python on each call (it caches
only short statements) and PostgreSQL re-plans. `INSERT … SELECT FROM unnest(%(col)b::type[], …)`
sends one binary array per column instead: the statement text never changes, psycopg caches its
conversion and PostgreSQL prepares it, and no element needs escaping. Measured on the ingest
path this cut the client's CPU per alert by more than half. SQLite keeps SQLAlchemy's form (it has no arrays, and its statements
are cheap to prepare).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlmodel import Session

_PG = postgresql.dialect()


def insert_rows(
    session: Session,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: Sequence[str] = (),
    on_conflict: str = "",
    sqlite_statement: Any = None,
) -> Sequence[Row[Any]]:
    """Insert `rows` in one statement per set of keys; RETURNING rows come in no set order.

    `on_conflict` is the PostgreSQL `ON CONFLICT …` clause; `sqlite_statement` is the SQLAlchemy
    statement used elsewhere (default: a plain INSERT … RETURNING `returning`). Correlate returned
    rows by a returned key, never by position.
    """
    found: list[Row[Any]] = []
    shapes: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(row), []).append(row)
    postgres = session.get_bind().dialect.name == "postgresql"
    for given, group in shapes.items():
        if postgres:
            found.extend(_insert_pg(session, table, given, group, tuple(returning), on_conflict))
            continue
        statement = sqlite_statement
        if statement is None:
            statement = sa.insert(table)
            if returning:
                statement = statement.returning(*(table.c[name] for name in returning))
        result = session.execute(statement, group)
        found.extend(result.all() if result.returns_rows else [])  # type: ignore[attr-defined]
    return found


def _insert_pg(
    session: Session,
    table: sa.Table,
    given: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
    returning: tuple[str, ...],
    on_conflict: str,
) -> Sequence[Row[Any]]:
    sql, columns, converters = _plan(table, given, returning, on_conflict)
    params = {
        f"c{index}": [convert(row[name]) for row in rows]
        for index, (name, convert) in enumerate(zip(given, converters, strict=False))
    }
    for offset in range(len(given), len(columns)):
        convert = converters[offset]
        make = getattr(table.c[columns[offset]].default, "arg", None)
        params[f"c{offset}"] = [convert(make(None) if callable(make) else make) for _ in rows]
    result = session.connection().exec_driver_sql(sql, params)
    return result.all() if returning else []


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _json(value: Any) -> Any:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson refuses (integers over 64 bits, non-string keys) json takes
        return json.dumps(value, separators=(",", ":"))


@lru_cache(maxsize=64)
def _plan(
    table: sa.Table, given: tuple[str, ...], returning: tuple[str, ...], on_conflict: str
) -> tuple[str, tuple[str, ...], list[Callable[[Any], Any]]]:
    # Columns left out get their Python-side default, as SQLAlchemy's own INSERT would give them.
    defaulted = tuple(c.name for c in table.c if c.default is not None and c.name not in given)
    columns = given + defaulted
    arrays: list[str] = []
    converters: list[Callable[[Any], Any]] = []
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        impl = column_type.dialect_impl(_PG)
        if isinstance(impl, sa.TypeDecorator):
            converters.append(partial(impl.process_bind_param, dialect=_PG))
        elif isinstance(impl, sa.JSON):
            converters.append(_json)
        else:
            converters.append(_plain)
        # No length in the cast: casting to VARCHAR(n) would silently truncate; the column refuses.
        type_sql = re.sub(r"\(\d+\)$", "", column_type.compile(dialect=_PG))
        arrays.append(f"%(c{index})b::{type_sql}[]")
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"SELECT * FROM unnest({', '.join(arrays)}) {on_conflict}"
    )
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
    return sql, columns, converters
