"""Database-level guarantees of the model, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, select

from sentinel_app.models import Alert, AlertStatus, Notification, TeamMembership
from sentinel_app.models.base import require_id
from tests import factories


def test_one_open_alert_per_integration_and_dedup_key(db: Session) -> None:
    team = factories.team(db)
    integ = factories.integration(db, team.id)
    factories.alert(db, team.id, integration_id=integ.id, dedup_key="disk")
    db.commit()
    factories.alert(db, team.id, integration_id=integ.id, dedup_key="disk")
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_a_resolved_alert_does_not_block_a_new_one(db: Session) -> None:
    team = factories.team(db)
    integ = factories.integration(db, team.id)
    first = factories.alert(db, team.id, integration_id=integ.id, dedup_key="disk")
    db.commit()
    first.status = AlertStatus.RESOLVED
    db.add(first)
    db.commit()
    factories.alert(db, team.id, integration_id=integ.id, dedup_key="disk")
    factories.alert(db, team.id, integration_id=integ.id, dedup_key="other")
    db.commit()
    assert len(db.exec(select(Alert)).all()) == 3


def test_alerts_without_integration_dedupe_per_team(db: Session) -> None:
    team = factories.team(db)
    other = factories.team(db)
    factories.alert(db, team.id, dedup_key="api")
    factories.alert(db, other.id, dedup_key="api")
    db.commit()
    factories.alert(db, team.id, dedup_key="api")
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


@pytest.mark.parametrize(
    "given",
    [
        dt.datetime(2026, 3, 8, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        dt.datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ],
)
def test_timestamps_round_trip_as_aware_utc(db: Session, given: dt.datetime) -> None:
    team = factories.team(db)
    row = factories.alert(db, team.id, now=given)
    db.commit()
    db.expire_all()
    loaded = db.get(Alert, row.id)
    assert loaded is not None
    assert loaded.fired_at == given
    assert loaded.fired_at.utcoffset() == dt.timedelta(0)


def test_naive_datetimes_are_refused(db: Session) -> None:
    team = factories.team(db)
    factories.alert(db, team.id, now=dt.datetime(2026, 1, 1, 12, 0))
    with pytest.raises(StatementError, match="naive datetime"):
        db.commit()
    db.rollback()


def test_foreign_keys_are_enforced(db: Session) -> None:
    db.add(TeamMembership(team_id=999_999, user_id=999_999, role="viewer"))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_deleting_a_team_removes_its_memberships(db: Session) -> None:
    team = factories.team(db)
    person = factories.user(db)
    db.add(TeamMembership(team_id=require_id(team), user_id=require_id(person), role="admin"))
    db.commit()
    db.delete(team)
    db.commit()
    assert db.exec(select(TeamMembership)).all() == []


def test_notification_idempotency_key_is_unique(db: Session) -> None:
    for _ in range(2):
        db.add(Notification(idempotency_key="alert:1:cycle:0:step:0:user:1:email", channel="email"))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_json_columns_keep_nested_values(db: Session) -> None:
    team = factories.team(db)
    row = factories.alert(
        db,
        team.id,
        labels={"alertname": "DiskFull", "émoji": "🔥"},
        links=[{"kind": "runbook", "url": "https://runbooks/disk"}],
    )
    db.commit()
    db.expire_all()
    loaded = db.get(Alert, row.id)
    assert loaded is not None
    assert loaded.labels == {"alertname": "DiskFull", "émoji": "🔥"}
    assert loaded.links[0]["kind"] == "runbook"
