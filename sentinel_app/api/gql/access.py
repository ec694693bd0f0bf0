"""Who may do what through GraphQL: credentials (API keys, login sessions) and every permission check.

API keys are checked by the REST dependency `deps.principal`, so both APIs accept exactly the same
keys. Login sessions are those of `services/sessions.py` (`ss_…` tokens stored hashed, 30 days
after their last use, revoked by `logout`, failed sign-ins rate-limited); a session acts with the
user's own team roles and every scope.
Team-scoped checks all go through `Principal` (`require_visible`, `require`): objects of teams the
caller cannot read are NOT_FOUND, missing rights are FORBIDDEN, and viewers never get `write`.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Session, select
from starlette.requests import HTTPConnection, Request

from sentinel_app.api import deps
from sentinel_app.api.deps import Principal
from sentinel_app.api.errors import ApiError
from sentinel_app.api.gql.context import Credential
from sentinel_app.api.gql.errors import not_found
from sentinel_app.db import session_scope
from sentinel_app.models import TeamMembership, User
from sentinel_app.services.actor import Actor

# Login session tokens (services/sessions.py) start with this; API keys with "sk_".
SESSION_TOKEN_KIND = "ss"
SESSION_SCOPES = frozenset({"read", "write", "admin"})
_INVALID = "invalid, revoked or expired token"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value (None when absent or another scheme)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(
    connection: HTTPConnection, engine: sa.Engine, authorization: str | None, *, now: dt.datetime
) -> Credential:
    """The caller behind an Authorization value; UNAUTHENTICATED (ApiError 401) otherwise."""
    token = bearer_token(authorization)
    if token is None:
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <API key or session token>")
    if token.startswith(f"{SESSION_TOKEN_KIND}_"):
        return _session_credential(engine, token, now)
    with session_scope(engine=engine) as session:
        return Credential(deps.principal(_request_with(connection, f"Bearer {token}"), session))


def _request_with(connection: HTTPConnection, authorization: str) -> Request:
    """A request carrying `authorization`, for `deps.principal` (websockets send it in connection_init)."""
    if isinstance(connection, Request) and connection.headers.get("authorization") == authorization:
        return connection
    headers = [(k, v) for k, v in connection.scope.get("headers", []) if k.lower() != b"authorization"]
    scope = {
        **connection.scope,
        "type": "http",
        "method": "POST",
        "headers": [*headers, (b"authorization", authorization.encode("latin-1", "replace"))],
        "state": {},
    }
    return Request(scope)


def _roles(session: Session, user_id: int) -> dict[int, str]:
    rows = session.exec(select(TeamMembership).where(TeamMembership.user_id == user_id))
    return {m.team_id: m.role for m in rows}


def _session_credential(engine: sa.Engine, token: str, now: dt.datetime) -> Credential:
    from sentinel_app.services import sessions

    with session_scope(engine=engine) as session:
        row = sessions.session_of(session, token=token, now=now)
        user = session.get(User, row.user_id) if row is not None else None
        if row is None or user is None or not user.is_active:
            raise ApiError(401, _INVALID)
        roles = _roles(session, row.user_id)
    if row.last_seen_at is None or now - row.last_seen_at >= sessions.SEEN_GRANULARITY:
        # Using a session extends it; that is a write, so only once a minute (like API keys' stamp).
        with session_scope(write=True, engine=engine) as writer:
            if sessions.resolve(writer, token=token, now=now) is None:
                raise ApiError(401, _INVALID)
    return Credential(Principal(user=user, scopes=SESSION_SCOPES, roles=roles), session_id=row.id)


def actor(principal: Principal) -> Actor:
    """The author of changes made through GraphQL (timelines, audit log)."""
    return Actor(
        user_id=principal.user_id,
        label=principal.user.name,
        channel="graphql",
        api_key_id=principal.api_key_id,
    )


def team_scope(principal: Principal, team_id: int | None) -> set[int] | None:
    """Teams to read: the visible ones, narrowed to `team_id` (NOT_FOUND when it is not visible)."""
    visible = principal.visible_team_ids()
    if team_id is None:
        return visible
    if not principal.can("read", team_id):
        raise not_found("team", team_id, "team")
    return {team_id}


def require_visible(
    principal: Principal, team_id: int | None, action: str, *, what: str, ident: int, field: str
) -> None:
    """NOT_FOUND for a missing row or another team's; FORBIDDEN without `action` (viewers cannot write)."""
    principal.require_visible(team_id, action, what=what, ident=ident, field=field)


def require_personal_write(principal: Principal) -> None:
    """Changes to the caller's own account need a credential with the write scope."""
    if not principal.has_scope("write"):
        raise ApiError(403, "this credential is read-only")


def can_admin(principal: Principal, team_id: int) -> bool:
    """Whether the caller administers `team_id` (sees secrets-bearing settings)."""
    return principal.can("admin", team_id)
