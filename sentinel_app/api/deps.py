"""Request dependencies: database sessions and the authenticated principal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlmodel import Session, select

from sentinel_app.api.errors import ApiError
from sentinel_app.db import session_scope, utcnow
from sentinel_app.models import ApiKey, Role, TeamMembership, User
from sentinel_app.security import hash_token

# Refreshing last_used_at is a write; once a minute is precise enough and spares SQLite.
_LAST_USED_GRANULARITY = dt.timedelta(minutes=1)
_SCOPE_RANK = {"read": 0, "write": 1, "admin": 2}
_ROLE_FOR = {
    "read": {Role.ADMIN, Role.RESPONDER, Role.VIEWER},
    "write": {Role.ADMIN, Role.RESPONDER},
    "admin": {Role.ADMIN},
}


def engine_of(request: Request) -> sa.Engine:
    """The engine this API app was built with."""
    engine: sa.Engine = request.app.state.engine_factory()
    return engine


def read_db(request: Request) -> Iterator[Session]:
    """A session for reads (committed at the end, rolled back on error)."""
    with session_scope(engine=engine_of(request)) as session:
        yield session


def write_db(request: Request) -> Iterator[Session]:
    """A session that writes: takes SQLite's write lock at BEGIN."""
    with session_scope(write=True, engine=engine_of(request)) as session:
        yield session


@dataclass
class Principal:
    """An authenticated caller: a user acting through an API key (or a session, later)."""

    user: User
    scopes: frozenset[str]
    roles: dict[int, str] = field(default_factory=dict)
    api_key_id: int | None = None
    key_team_id: int | None = None

    @property
    def user_id(self) -> int:
        """The acting user's id."""
        assert self.user.id is not None
        return self.user.id

    def has_scope(self, scope: str) -> bool:
        """Whether the credential carries `scope` (admin ⊇ write ⊇ read)."""
        return any(_SCOPE_RANK[s] >= _SCOPE_RANK[scope] for s in self.scopes if s in _SCOPE_RANK)

    def visible_team_ids(self) -> set[int] | None:
        """Teams whose data the caller may read; None means every team."""
        if self.key_team_id is not None:
            return {self.key_team_id}
        return None if self.user.is_admin else set(self.roles)

    def can(self, action: str, team_id: int | None) -> bool:
        """Whether the caller may `read`, `write` or `admin` within `team_id` (None: installation-wide)."""
        if not self.has_scope(action):
            return False
        if self.key_team_id is not None and team_id != self.key_team_id:
            return False
        if self.user.is_admin:
            return True
        return team_id is not None and self.roles.get(team_id) in _ROLE_FOR[action]

    def require_visible(self, team_id: int | None, action: str, *, what: str, ident: int, field: str) -> None:
        """404 for a missing row (team_id None) or another team's row, else `require(action, team_id)`.

        Both cases get the same answer, so ids of other teams' objects are not revealed.
        """
        if team_id is None or not self.can("read", team_id):
            raise ApiError(404, f"{what} {ident} not found", field=field)
        self.require(action, team_id)

    def require(self, action: str, team_id: int | None) -> None:
        """Raise 403 unless `can(action, team_id)`."""
        if not self.can(action, team_id):
            where = f"team {team_id}" if team_id is not None else "this installation"
            raise ApiError(403, f"not allowed to {action} in {where}")


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def principal(request: Request, session: Session = Depends(read_db)) -> Principal:
    """Authenticate the Authorization: Bearer API key."""
    token = _bearer(request)
    now = utcnow()
    key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_token(token))).first()
    if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise ApiError(401, "invalid, revoked or expired token", headers={"WWW-Authenticate": "Bearer"})
    if not any(scope in _SCOPE_RANK for scope in key.scopes):
        # NOC wall keys (scope "wall") open the dashboard's /wall page only.
        raise ApiError(401, "this key only opens the NOC wall", headers={"WWW-Authenticate": "Bearer"})
    user = session.get(User, key.user_id)
    if user is None or not user.is_active:
        raise ApiError(401, "the key's user is disabled", headers={"WWW-Authenticate": "Bearer"})
    roles = {
        m.team_id: m.role
        for m in session.exec(select(TeamMembership).where(TeamMembership.user_id == user.id))
    }
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_GRANULARITY:
        with session_scope(write=True, engine=engine_of(request)) as writer:
            writer.execute(sa.update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))  # type: ignore[arg-type]
    request.state.principal_user_id = user.id
    return Principal(
        user=user, scopes=frozenset(key.scopes), roles=roles, api_key_id=key.id, key_team_id=key.team_id
    )
