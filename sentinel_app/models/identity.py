"""People and access: users, teams, memberships with roles, API keys, login sessions."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sentinel_app.models.base import (
    created_at_field,
    enum_field,
    fk,
    id_field,
    json_field,
    text_field,
    updated_at_field,
    when,
)


class Role(StrEnum):
    """A member's role within a team; ordered from most to least powerful."""

    ADMIN = "admin"
    RESPONDER = "responder"
    VIEWER = "viewer"


class User(SQLModel, table=True):
    """A person who can sign in, be on call and be notified."""

    __tablename__ = "users"
    __table_args__ = (sa.UniqueConstraint("email"),)

    id: int | None = id_field()
    email: str = text_field(320, default=...)
    name: str = text_field(200, default=...)
    password_hash: str | None = text_field(255, default=None, nullable=True)
    timezone: str = text_field(64, default="UTC")
    # Global administrators manage every team and the installation itself.
    is_admin: bool = Field(default=False)
    is_active: bool = Field(default=True)
    notify_on_shift_start: bool = Field(default=True)
    notify_on_shift_end: bool = Field(default=False)
    ical_token_hash: str | None = text_field(64, default=None, nullable=True, index=True)
    last_login_at: dt.datetime | None = when()
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()


class Team(SQLModel, table=True):
    """The unit that owns integrations, schedules, policies and alerts."""

    __tablename__ = "teams"
    __table_args__ = (sa.UniqueConstraint("slug"),)

    id: int | None = id_field()
    name: str = text_field(200, default=...)
    slug: str = text_field(100, default=...)
    description: str = text_field()
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()


class TeamMembership(SQLModel, table=True):
    """A user's role in one team."""

    __tablename__ = "team_memberships"
    __table_args__ = (sa.UniqueConstraint("team_id", "user_id"),)

    id: int | None = id_field()
    team_id: int = fk("teams.id")
    user_id: int = fk("users.id")
    role: str = enum_field(Role.RESPONDER, length=16)
    created_at: dt.datetime = created_at_field()


class ApiKey(SQLModel, table=True):
    """A bearer key for the REST and GraphQL APIs; only a hash of the secret is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (sa.UniqueConstraint("prefix"),)

    id: int | None = id_field()
    name: str = text_field(200, default=...)
    # The non-secret start of the key, shown in lists and used to find the row.
    prefix: str = text_field(24, default=...)
    key_hash: str = text_field(64, default=...)
    scopes: list[str] = json_field(list)
    user_id: int = fk("users.id")
    # A key limited to one team; None acts with all the owner's memberships.
    team_id: int | None = fk("teams.id", nullable=True)
    created_at: dt.datetime = created_at_field()
    last_used_at: dt.datetime | None = when()
    expires_at: dt.datetime | None = when()
    revoked_at: dt.datetime | None = when()


class UserSession(SQLModel, table=True):
    """A revocable sign-in session (web or mobile app); only a hash of the token is stored."""

    __tablename__ = "user_sessions"
    __table_args__ = (sa.UniqueConstraint("token_hash"),)

    id: int | None = id_field()
    user_id: int = fk("users.id")
    token_hash: str = text_field(64, default=...)
    client: str = text_field(32, default="web")
    user_agent: str = text_field(500)
    created_at: dt.datetime = created_at_field()
    last_seen_at: dt.datetime | None = when()
    expires_at: dt.datetime = when(nullable=False)
    revoked_at: dt.datetime | None = when()
