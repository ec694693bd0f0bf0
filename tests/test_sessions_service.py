"""Sign-in sessions: login, resolve with sliding expiry, logout, rate limits, first-admin setup."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app.db import create_db_engine
from sentinel_app.models import AuditEntry, User, UserSession
from sentinel_app.models.base import require_id
from sentinel_app.security import hash_token
from sentinel_app.services import sessions, users
from sentinel_app.services.errors import Conflict

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"


def _person(db: Session, email: str = "ana@example.com", **kw: object) -> User:
    user = users.create_user(db, email=email, name="Ana", password=PASSWORD, **kw)  # type: ignore[arg-type]
    db.commit()
    return user


def _login(
    db: Session,
    email: str = "ana@example.com",
    password: str = PASSWORD,
    *,
    now: dt.datetime = NOW,
    address: str = "10.0.0.1",
) -> tuple[UserSession, str]:
    row, token = sessions.login(
        db, email=email, password=password, client="web", user_agent="pytest", now=now, address=address
    )
    db.commit()
    return row, token


def test_login_returns_a_token_that_is_stored_only_as_a_hash(db: Session) -> None:
    ana = _person(db)
    row, token = _login(db, email="  ANA@example.com ")
    assert token.startswith("ss_") and len(token) > 40
    assert row.token_hash == hash_token(token) and token not in row.token_hash
    assert (row.client, row.user_agent, row.expires_at) == ("web", "pytest", NOW + dt.timedelta(days=30))
    assert sessions.resolve(db, token=token, now=NOW) == ana
    db.refresh(ana)
    assert ana.last_login_at == NOW
    created = db.exec(select(AuditEntry).where(AuditEntry.action == "session.create")).one()
    assert (created.actor_user_id, created.ip) == (ana.id, "10.0.0.1")


@pytest.mark.parametrize(
    ("email", "password", "active"),
    [
        ("ana@example.com", "wrong password!", True),  # wrong password
        ("bo@example.com", PASSWORD, True),  # unknown email
        ("ana@example.com", PASSWORD, False),  # disabled account
    ],
)
def test_bad_credentials_get_one_answer_and_the_failure_is_kept(
    db: Session, email: str, password: str, active: bool
) -> None:
    ana = _person(db)
    ana.is_active = active
    db.add(ana)
    db.commit()
    with pytest.raises(sessions.LoginFailed, match=r"^invalid email or password$") as failed:
        sessions.login(
            db, email=email, password=password, client="web", user_agent="", now=NOW, address="10.0.0.9"
        )
    assert failed.value.status == 401
    db.rollback()  # what a caller's transaction does after the error: the failure must survive it
    failures = db.exec(select(AuditEntry).where(AuditEntry.action == sessions.FAILED_ACTION)).all()
    assert [(f.entity_id, f.ip, f.after["email"]) for f in failures] == [
        (hash_token(email), "10.0.0.9", email)
    ]
    assert db.exec(select(UserSession)).all() == []


def _fail(db: Session, email: str, *, now: dt.datetime, address: str = "10.0.0.1") -> None:
    with pytest.raises(sessions.LoginFailed):
        _login(db, email=email, password="not the password", now=now, address=address)


def test_five_failures_lock_the_email_for_fifteen_minutes(db: Session) -> None:
    _person(db)
    for minute in range(5):
        _fail(db, "ana@example.com", now=NOW + dt.timedelta(minutes=minute), address=f"10.0.0.{minute}")
    # Even the right password is refused now, without being checked.
    with pytest.raises(sessions.TooManyAttempts, match="too many failed sign-ins for this email") as limited:
        _login(db, now=NOW + dt.timedelta(minutes=5), address="10.9.9.9")
    assert limited.value.status == 429 and limited.value.field == "email"
    # The oldest failure (minute 0) leaves the window at minute 15.
    assert limited.value.retry_after == dt.timedelta(minutes=10)
    with pytest.raises(sessions.TooManyAttempts):
        _login(db, now=NOW + dt.timedelta(minutes=14, seconds=59))
    _, token = _login(db, now=NOW + dt.timedelta(minutes=15))
    assert token


def test_a_successful_sign_in_forgives_earlier_failures_of_that_email(db: Session) -> None:
    _person(db)
    for second in range(4):
        _fail(db, "ana@example.com", now=NOW + dt.timedelta(seconds=second))
    _login(db, now=NOW + dt.timedelta(seconds=10))
    for second in range(4):
        _fail(db, "ana@example.com", now=NOW + dt.timedelta(seconds=20 + second))
    _login(
        db, now=NOW + dt.timedelta(seconds=30)
    )  # 8 failures in the window, but only 4 since the last login


def test_one_client_address_is_limited_across_emails(db: Session) -> None:
    _person(db)
    for index in range(sessions.MAX_FAILURES_PER_ADDRESS):
        _fail(db, f"guess{index}@example.com", now=NOW + dt.timedelta(seconds=index), address="203.0.113.7")
    with pytest.raises(sessions.TooManyAttempts, match="for this address"):
        _login(db, now=NOW + dt.timedelta(minutes=1), address="203.0.113.7")
    _, token = _login(db, now=NOW + dt.timedelta(minutes=1), address="198.51.100.1")
    assert token


def test_use_slides_the_expiry_and_idle_sessions_expire(db: Session) -> None:
    ana = _person(db)
    _, used = _login(db)
    _, idle = _login(db)
    day = dt.timedelta(days=1)
    assert sessions.resolve(db, token=used, now=NOW + 20 * day) == ana
    db.commit()
    assert sessions.resolve(db, token=idle, now=NOW + 30 * day) is None
    assert sessions.resolve(db, token=used, now=NOW + 49 * day) == ana
    db.commit()
    assert sessions.resolve(db, token=used, now=NOW + 79 * day + dt.timedelta(hours=1)) is None


def test_last_seen_is_written_at_most_once_a_minute(db: Session) -> None:
    _person(db)
    row, token = _login(db)
    sessions.resolve(db, token=token, now=NOW + dt.timedelta(seconds=30))
    db.commit()
    db.refresh(row)
    assert row.last_seen_at == NOW
    sessions.resolve(db, token=token, now=NOW + dt.timedelta(seconds=90))
    db.commit()
    db.refresh(row)
    assert (row.last_seen_at, row.expires_at) == (
        NOW + dt.timedelta(seconds=90),
        NOW + dt.timedelta(days=30, seconds=90),
    )


@pytest.mark.parametrize("token", ["", "ss_unknown", "sk_not-a-session", "garbage"])
def test_unknown_tokens_resolve_to_nobody(db: Session, token: str) -> None:
    _person(db)
    _login(db)
    assert sessions.resolve(db, token=token, now=NOW) is None


def test_logout_revokes_once(db: Session) -> None:
    ana = _person(db)
    _, token = _login(db)
    _, other = _login(db)
    assert sessions.logout(db, token=token, now=NOW) is True
    db.commit()
    assert sessions.resolve(db, token=token, now=NOW) is None
    assert sessions.logout(db, token=token, now=NOW) is False
    assert sessions.resolve(db, token=other, now=NOW) == ana
    revoked = db.exec(select(AuditEntry).where(AuditEntry.action == "session.revoke")).all()
    assert [r.actor_user_id for r in revoked] == [ana.id]


def test_revoke_all_and_disabling_end_every_session(db: Session) -> None:
    ana = _person(db)
    tokens = [_login(db)[1] for _ in range(3)]
    assert sessions.revoke_all(db, user_id=require_id(ana), now=NOW) == 3
    db.commit()
    assert all(sessions.resolve(db, token=t, now=NOW) is None for t in tokens)
    _, token = _login(db)
    ana.is_active = False
    db.add(ana)
    db.commit()
    assert sessions.resolve(db, token=token, now=NOW) is None


def test_sessions_survive_a_restart(db: Session, db_url: str) -> None:
    ana = _person(db)
    _, token = _login(db)
    db.close()
    fresh = create_db_engine(db_url)  # a new process would build exactly this
    try:
        with Session(fresh) as again:
            found = sessions.resolve(again, token=token, now=NOW + dt.timedelta(hours=1))
            assert found is not None and found.id == ana.id
    finally:
        fresh.dispose()


def test_first_admin_setup_only_on_an_empty_install(db: Session) -> None:
    assert sessions.needs_setup(db) is True
    admin, row, token = sessions.bootstrap_admin(
        db, email="Root@Example.com", name="Root", password=PASSWORD, now=NOW, address="10.0.0.1"
    )
    db.commit()
    assert (admin.email, admin.is_admin, row.user_id) == ("root@example.com", True, admin.id)
    assert sessions.resolve(db, token=token, now=NOW) == admin
    assert sessions.needs_setup(db) is False
    with pytest.raises(Conflict, match="already set up"):
        sessions.bootstrap_admin(db, email="eve@example.com", name="Eve", password=PASSWORD, now=NOW)
    db.rollback()
    assert db.exec(select(sa.func.count()).select_from(User)).one() == 1


def test_purge_deletes_long_ended_sessions_only(db: Session) -> None:
    _person(db)
    _, old = _login(db)
    _, live = _login(db)
    sessions.logout(db, token=old, now=NOW)
    db.commit()
    later = NOW + dt.timedelta(days=121)
    assert sessions.purge(db, now=NOW + dt.timedelta(days=91)) == 1  # revoked 91 days ago
    assert sessions.purge(db, now=later) == 1  # expired 91 days ago
    db.commit()
    _, fresh = _login(db, now=later)
    assert sessions.purge(db, now=later) == 0
    hashes = db.exec(select(UserSession.token_hash).order_by(col(UserSession.id))).all()
    assert hashes == [hash_token(fresh)] and hash_token(live) not in hashes
