"""Sign-in sessions: email + password login, revocable tokens stored hashed, rate limits, first admin.

A session token (``ss_…``, 256 random bits) is shown to the client once; the database keeps only
its SHA-256 in ``user_sessions``, so sessions survive restarts and work across app processes.
A session lives until 30 days after it was last used (``resolve`` slides ``expires_at``; the write
happens at most once a minute) or until ``logout`` revokes it.

Failed sign-ins are recorded in the audit log (action ``session.login_failed``, entity ``login``,
entity id = SHA-256 of the normalised email, ``ip`` = client address). Counting them there makes
the limits hold across restarts and across several app processes without a table of their own:
at most ``MAX_FAILURES_PER_EMAIL`` failures per email (since its last successful sign-in) and
``MAX_FAILURES_PER_ADDRESS`` per client address within ``FAILURE_WINDOW``; beyond that ``login``
answers ``TooManyAttempts`` (429) without checking the password.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from sentinel_app.db import WRITE_OPTION
from sentinel_app.models import AuditEntry, User, UserSession
from sentinel_app.models.base import require_id
from sentinel_app.security import hash_token, new_token, verify_password
from sentinel_app.services import audit, users
from sentinel_app.services.errors import Conflict, ServiceError, ValidationFailed

TOKEN_KIND = "ss"
LIFETIME = dt.timedelta(days=30)
# Sliding the expiry is a write; once a minute is precise enough (as for API keys).
SEEN_GRANULARITY = dt.timedelta(minutes=1)
FAILURE_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
# Higher than per email: several people may sign in from behind one NAT or proxy.
MAX_FAILURES_PER_ADDRESS = 20
FAILED_ACTION = "session.login_failed"
_LOGIN_ENTITY = "login"
# Any constant works: it only serialises first-admin setups on PostgreSQL.
_SETUP_LOCK_KEY = 0x53454E5431


class LoginFailed(ServiceError):
    """Wrong email or password, or a disabled account (one answer for all, to reveal nothing)."""

    code = "unauthenticated"
    status = 401


class TooManyAttempts(ServiceError):
    """Too many failed sign-ins for this email or client address; `retry_after` says how long to wait."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: dt.timedelta, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


def _email_key(email: str) -> str:
    return hash_token(email.strip().lower())


@contextmanager
def _reader(session: Session) -> Iterator[Session]:
    """A short read-only session on the same database, outside the caller's transaction.

    The password check (argon2, tens of milliseconds) runs on what it reads, so SQLite's write
    lock is never held while hashing.
    """
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, sa.Connection) else bind
    with Session(engine.execution_options(**{WRITE_OPTION: False}), expire_on_commit=False) as reader:
        try:
            yield reader
        finally:
            reader.rollback()


def _failures_since(
    reader: Session, *, since: dt.datetime, email_key: str | None, address: str | None
) -> list[dt.datetime]:
    query = select(AuditEntry.created_at).where(
        AuditEntry.action == FAILED_ACTION, col(AuditEntry.created_at) > since
    )
    if email_key is not None:
        query = query.where(AuditEntry.entity_type == _LOGIN_ENTITY, AuditEntry.entity_id == email_key)
    if address is not None:
        query = query.where(AuditEntry.ip == address)
    return sorted(reader.exec(query).all())


def check_rate_limit(session: Session, *, email: str, address: str, now: dt.datetime) -> None:
    """Raise TooManyAttempts when this email or client address failed too often lately."""
    window_start = now - FAILURE_WINDOW
    user = users.get_by_email(session, email=email)
    since = window_start
    if user is not None and user.last_login_at is not None:
        # A successful sign-in forgives the failures before it (for that email, not the address).
        since = max(since, user.last_login_at)
    checks: list[tuple[list[dt.datetime], int, str]] = [
        (
            _failures_since(session, since=since, email_key=_email_key(email), address=None),
            MAX_FAILURES_PER_EMAIL,
            "email",
        )
    ]
    if address:
        checks.append(
            (
                _failures_since(session, since=window_start, email_key=None, address=address[:64]),
                MAX_FAILURES_PER_ADDRESS,
                "address",
            )
        )
    for failures, limit, what in checks:
        if len(failures) >= limit:
            # The window reopens when the oldest failure that still counts leaves it.
            wait = failures[len(failures) - limit] + FAILURE_WINDOW - now
            minutes = max(1, int(-(-wait.total_seconds() // 60)))
            raise TooManyAttempts(
                f"too many failed sign-ins for this {what}; try again in {minutes} minute"
                + ("s" if minutes != 1 else ""),
                retry_after=max(wait, dt.timedelta(seconds=1)),
                field="email" if what == "email" else None,
            )


def _record_failure(session: Session, *, email: str, address: str, reason: str, now: dt.datetime) -> None:
    entry = audit.record(
        session,
        action=FAILED_ACTION,
        entity_type=_LOGIN_ENTITY,
        entity_id=_email_key(email),
        after={"email": email[:320], "reason": reason},
        ip=address[:64],
    )
    entry.created_at = now


def open_session(
    session: Session, *, user: User, client: str, user_agent: str, now: dt.datetime, address: str = ""
) -> tuple[UserSession, str]:
    """Start a session for `user` (already authenticated); returns the row and its token, shown only now."""
    token = new_token(TOKEN_KIND)
    row = UserSession(
        user_id=require_id(user),
        token_hash=hash_token(token),
        client=(client or "web")[:32],
        user_agent=user_agent[:500],
        created_at=now,
        last_seen_at=now,
        expires_at=now + LIFETIME,
    )
    session.add(row)
    session.execute(sa.update(User).where(col(User.id) == user.id).values(last_login_at=now))
    session.flush()
    audit.record(
        session,
        action="session.create",
        entity_type="user_session",
        entity_id=row.id,
        after={"user_id": row.user_id, "client": row.client, "expires_at": row.expires_at.isoformat()},
        actor_user_id=row.user_id,
        ip=address[:64],
    )
    return row, token


def login(
    session: Session,
    *,
    email: str,
    password: str,
    client: str,
    user_agent: str,
    now: dt.datetime,
    address: str = "",
) -> tuple[UserSession, str]:
    """Sign in with email and password; returns the new session and its token (shown only now).

    Raises TooManyAttempts (before looking at the password) when the email or the client
    `address` failed too often lately, and LoginFailed for a wrong email or password or a disabled
    account. A failure is committed before LoginFailed is raised, since it must outlive the error
    for the limits to work: call this in a transaction of its own. On success the caller commits.
    """
    email = email.strip().lower()
    if not email or not password:
        raise LoginFailed("email and password are required", field="email" if not email else "password")
    with _reader(session) as reader:
        check_rate_limit(reader, email=email, address=address, now=now)
        found = users.get_by_email(reader, email=email)
        user_id = found.id if found else None
        password_hash = found.password_hash if found else None
        active = bool(found and found.is_active)
    matches = verify_password(password_hash, password)
    if user_id is None or not matches or not active:
        reason = "unknown email" if user_id is None else ("disabled" if not active else "wrong password")
        _record_failure(session, email=email, address=address, reason=reason, now=now)
        session.commit()
        raise LoginFailed("invalid email or password")
    user = session.get(User, user_id)
    if user is None or not user.is_active:  # deleted or disabled while the password was checked
        raise LoginFailed("invalid email or password")
    return open_session(session, user=user, client=client, user_agent=user_agent, now=now, address=address)


def _live_row(session: Session, token: str, now: dt.datetime) -> UserSession | None:
    if not token or not token.startswith(f"{TOKEN_KIND}_"):
        return None
    row = session.exec(
        select(UserSession)
        .where(UserSession.token_hash == hash_token(token))
        .execution_options(populate_existing=True)
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return row


def resolve(session: Session, *, token: str, now: dt.datetime) -> User | None:
    """The active user behind a session token, or None (unknown, revoked, expired, user disabled).

    Use slides the expiry to 30 days after `now`, written at most once a minute: commit afterwards.
    """
    row = _live_row(session, token, now)
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if row.last_seen_at is None or now - row.last_seen_at >= SEEN_GRANULARITY:
        row.last_seen_at, row.expires_at = now, now + LIFETIME
        session.add(row)
    return user


def session_of(session: Session, *, token: str, now: dt.datetime) -> UserSession | None:
    """The live session row of a token (no expiry sliding), e.g. to show or revoke it."""
    return _live_row(session, token, now)


def logout(session: Session, *, token: str, now: dt.datetime) -> bool:
    """Revoke the session of `token`; False when it was unknown or already over. The caller commits."""
    row = _live_row(session, token, now)
    if row is None:
        return False
    return revoke(session, session_id=require_id(row), actor_user_id=row.user_id, now=now)


def revoke(session: Session, *, session_id: int, actor_user_id: int | None, now: dt.datetime) -> bool:
    """Revoke one session by id; False when it was already revoked."""
    result = session.execute(
        sa.update(UserSession)
        .where(col(UserSession.id) == session_id, col(UserSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    done = bool(getattr(result, "rowcount", 0))
    if done:
        audit.record(
            session,
            action="session.revoke",
            entity_type="user_session",
            entity_id=session_id,
            after={"revoked_at": now.isoformat()},
            actor_user_id=actor_user_id,
        )
    return done


def revoke_all(session: Session, *, user_id: int, now: dt.datetime, actor_user_id: int | None = None) -> int:
    """Revoke every open session of a user (after a password change or when disabling them)."""
    ids = session.exec(
        select(UserSession.id).where(UserSession.user_id == user_id, col(UserSession.revoked_at).is_(None))
    ).all()
    return sum(
        revoke(session, session_id=int(i), actor_user_id=actor_user_id, now=now) for i in ids if i is not None
    )


def needs_setup(session: Session) -> bool:
    """Whether the installation has no users yet (the sign-in page then offers the setup form)."""
    return session.exec(select(func.count()).select_from(User)).one() == 0


def bootstrap_admin(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    now: dt.datetime,
    client: str = "web",
    user_agent: str = "",
    address: str = "",
    timezone: str = "UTC",
) -> tuple[User, UserSession, str]:
    """Create the first installation administrator and sign them in; Conflict once any user exists.

    Pass a write session (SQLite takes its write lock at BEGIN, which serialises two racing
    setups); on PostgreSQL an advisory transaction lock does the same. The caller commits.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SETUP_LOCK_KEY})
    if not needs_setup(session):
        raise Conflict("this installation is already set up: sign in instead", field="email")
    if not password:
        raise ValidationFailed("password must not be empty", field="password")
    user = users.create_user(
        session, email=email, name=name, password=password, is_admin=True, timezone=timezone
    )
    row, token = open_session(
        session, user=user, client=client, user_agent=user_agent, now=now, address=address
    )
    return user, row, token


def purge(session: Session, *, now: dt.datetime, older_than: dt.timedelta = dt.timedelta(days=90)) -> int:
    """Delete sessions that ended (expired or revoked) more than `older_than` ago; returns how many."""
    cutoff = now - older_than
    result = session.execute(
        sa.delete(UserSession).where(
            sa.or_(
                col(UserSession.expires_at) < cutoff,
                sa.and_(col(UserSession.revoked_at).is_not(None), col(UserSession.revoked_at) < cutoff),
            )
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
