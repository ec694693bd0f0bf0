"""API keys: issued once, stored as hashes, scoped and revocable."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from sentinel_app.models import ApiKey
from sentinel_app.security import hash_token, new_token, token_prefix
from sentinel_app.services import audit
from sentinel_app.services.errors import ValidationFailed

SCOPES = ("read", "write", "admin")
# A NOC wall display key: opens the read-only /wall page and nothing else (no REST, no GraphQL,
# since Principal.has_scope knows only SCOPES). Always the key's only scope.
WALL_SCOPE = "wall"


def issue_key(
    session: Session,
    *,
    user_id: int,
    name: str,
    scopes: list[str],
    team_id: int | None = None,
    token: str | None = None,
    actor_user_id: int | None = None,
) -> tuple[ApiKey, str]:
    """Create an API key and return it with its secret, which is never shown again."""
    if WALL_SCOPE in scopes:
        if set(scopes) != {WALL_SCOPE}:
            raise ValidationFailed(f"the {WALL_SCOPE!r} scope cannot be combined with others", field="scopes")
        scopes = [WALL_SCOPE]
    elif not scopes or any(s not in SCOPES for s in scopes):
        raise ValidationFailed(
            f"scopes must be a non-empty subset of {', '.join(SCOPES)} (or just {WALL_SCOPE})", field="scopes"
        )
    if not name.strip():
        raise ValidationFailed("name must not be empty", field="name")
    secret = token or new_token("sk")
    key = ApiKey(
        name=name.strip(),
        prefix=token_prefix(secret),
        key_hash=hash_token(secret),
        scopes=sorted(set(scopes), key=(*SCOPES, WALL_SCOPE).index),
        user_id=user_id,
        team_id=team_id,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        action="api_key.create",
        entity_type="api_key",
        entity_id=key.id,
        team_id=team_id,
        after=audit.snapshot(key),
        actor_user_id=actor_user_id,
    )
    return key, secret


def revoke_key(
    session: Session, *, key: ApiKey, now: dt.datetime, actor_user_id: int | None = None
) -> ApiKey:
    """Revoke a key; it stops authenticating at once."""
    before = audit.snapshot(key)
    key.revoked_at = key.revoked_at or now
    session.add(key)
    audit.record(
        session,
        action="api_key.revoke",
        entity_type="api_key",
        entity_id=key.id,
        team_id=key.team_id,
        before=before,
        after=audit.snapshot(key),
        actor_user_id=actor_user_id,
    )
    return key
