"""Writing the audit log of configuration changes."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, SQLModel

from sentinel_app.models import AuditEntry
from sentinel_app.services.actor import Actor

# Never copied into the audit log, whatever the entity.
_SECRET_FIELDS = {
    "password_hash",
    "key_hash",
    "token_hash",
    "signing_secret_encrypted",
    "secret_encrypted",
    # Push device tokens are credentials for reaching a phone.
    "token",
    "ical_token_hash",
    "verification_code_hash",
}


def snapshot(obj: SQLModel | None) -> dict[str, Any]:
    """A JSON-safe copy of a row for the audit log, without secret hashes."""
    if obj is None:
        return {}
    data = obj.model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in _SECRET_FIELDS}


def record(
    session: Session,
    *,
    action: str,
    entity_type: str,
    entity_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    team_id: int | None = None,
    actor_user_id: int | None = None,
    actor_api_key_id: int | None = None,
    ip: str = "",
) -> AuditEntry:
    """Add an audit entry to the session's transaction."""
    entry = AuditEntry(
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        before=before or {},
        after=after or {},
        team_id=team_id,
        actor_user_id=actor_user_id,
        actor_api_key_id=actor_api_key_id,
        ip=ip,
    )
    session.add(entry)
    return entry


def record_by(
    session: Session,
    actor: Actor,
    *,
    action: str,
    entity_type: str,
    entity_id: object,
    team_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry for a change made by `actor` (its user and API key)."""
    return record(
        session,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        team_id=team_id,
        before=before,
        after=after,
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
    )
