"""bulk.insert_rows: the array form on PostgreSQL writes what SQLAlchemy's own INSERT writes."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, StatementError
from sqlmodel import Session, col, select

from sentinel_app import bulk
from sentinel_app.models import AlertEvent, AlertEventKind, Notification
from tests import factories

NOW = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
EVENTS = AlertEvent.__table__  # type: ignore[attr-defined]
NOTIFICATIONS = Notification.__table__  # type: ignore[attr-defined]


def _alert_id(db: Session) -> int:
    team = factories.team(db)
    alert = factories.alert(db, team.id)
    db.commit()
    assert alert.id is not None
    return alert.id


def test_rows_get_values_enums_json_and_python_defaults(db: Session) -> None:
    alert_id = _alert_id(db)
    rows = [
        {
            "alert_id": alert_id,
            "kind": AlertEventKind.NOTE,
            "note": "with 'quotes', \"double\", {braces}, back\\slash and ünïcode",
            "payload": {"labels": {"a": "1"}, "list": [1, None, 2.5], "nested": {"ok": True}},
            "created_at": NOW,
        },
        # Another set of keys in the same call: the omitted columns get their defaults.
        {"alert_id": alert_id, "note": "second"},
    ]
    returned = bulk.insert_rows(db, EVENTS, rows, returning=("id", "note"))
    db.commit()
    assert sorted(r.note for r in returned) == sorted(str(r["note"]) for r in rows)
    stored = db.exec(select(AlertEvent).order_by(col(AlertEvent.id))).all()
    assert [e.note for e in stored] == [r["note"] for r in rows]
    first, second = stored
    assert first.kind == "note" and first.payload == rows[0]["payload"] and first.created_at == NOW
    assert second.kind == AlertEventKind.CREATED.value  # the column's default
    assert second.channel == "system" and second.payload == {} and second.actor == ""
    assert second.created_at is not None and second.created_at.tzinfo is not None


def test_nothing_to_insert_returns_nothing(db: Session) -> None:
    assert bulk.insert_rows(db, EVENTS, [], returning=("id",)) == []


def test_on_conflict_skips_existing_keys(db: Session) -> None:
    dialect = db.get_bind().dialect.name

    def row(key: str) -> dict[str, object]:
        return {"idempotency_key": key, "target": "ops@example.com", "next_attempt_at": NOW}

    def insert(keys: list[str]) -> int:
        statement = None
        if dialect == "sqlite":
            from sqlalchemy.dialects import sqlite

            statement = (
                sqlite.insert(NOTIFICATIONS)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(NOTIFICATIONS.c.id)
            )
        written = bulk.insert_rows(
            db,
            NOTIFICATIONS,
            [row(k) for k in keys],
            returning=("id",),
            on_conflict="ON CONFLICT (idempotency_key) DO NOTHING",
            sqlite_statement=statement,
        )
        return len(written)

    assert insert(["a", "b"]) == 2
    assert insert(["b", "c"]) == 1
    db.commit()
    assert sorted(n.idempotency_key for n in db.exec(select(Notification)).all()) == ["a", "b", "c"]


def test_naive_datetimes_are_refused(db: Session) -> None:
    alert_id = _alert_id(db)
    with pytest.raises((ValueError, StatementError)):
        bulk.insert_rows(db, EVENTS, [{"alert_id": alert_id, "created_at": NOW.replace(tzinfo=None)}])


def test_too_long_text_is_refused_not_cut(db: Session) -> None:
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    alert_id = _alert_id(db)
    with pytest.raises(DBAPIError, match="too long"):
        bulk.insert_rows(db, EVENTS, [{"alert_id": alert_id, "kind": "x" * 500}])
    db.rollback()
    assert db.exec(select(sa.func.count()).select_from(EVENTS)).one() == 0


def test_json_that_orjson_refuses_is_still_written(db: Session) -> None:
    alert_id = _alert_id(db)
    payload = {"big": 10**30, 7: "integer key"}
    bulk.insert_rows(db, EVENTS, [{"alert_id": alert_id, "payload": payload}])
    db.commit()
    [event] = db.exec(select(AlertEvent)).all()
    assert event.payload == {"big": 10**30, "7": "integer key"}
