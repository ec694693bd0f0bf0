"""Small builders for rows that many tests need."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlmodel import Session

from sentinel_app.models import Alert, Integration, IntegrationKind, Team, User
from sentinel_app.security import hash_token


def team(session: Session, **kw: Any) -> Team:
    """A committed team."""
    slug = kw.pop("slug", f"team-{uuid.uuid4().hex[:8]}")
    row = Team(name=kw.pop("name", slug), slug=slug, **kw)
    session.add(row)
    session.commit()
    return row


def user(session: Session, **kw: Any) -> User:
    """A committed user."""
    row = User(
        email=kw.pop("email", f"{uuid.uuid4().hex[:8]}@example.com"), name=kw.pop("name", "Test User"), **kw
    )
    session.add(row)
    session.commit()
    return row


def integration(session: Session, team_id: int | None, **kw: Any) -> Integration:
    """A committed integration with a random token."""
    assert team_id is not None
    token = uuid.uuid4().hex
    row = Integration(
        team_id=team_id,
        name=kw.pop("name", f"int-{token[:6]}"),
        kind=kw.pop("kind", IntegrationKind.WEBHOOK),
        token_prefix=token[:10],
        token_hash=hash_token(token),
        **kw,
    )
    session.add(row)
    session.commit()
    return row


def alert(session: Session, team_id: int | None, **kw: Any) -> Alert:
    """An uncommitted alert with sensible defaults."""
    assert team_id is not None
    now = kw.pop("now", dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC))
    row = Alert(
        team_id=team_id,
        title=kw.pop("title", "Disk full"),
        dedup_key=kw.pop("dedup_key", "k1"),
        fired_at=now,
        first_seen_at=now,
        last_seen_at=now,
        **kw,
    )
    session.add(row)
    return row
