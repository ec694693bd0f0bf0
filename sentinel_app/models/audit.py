"""The audit log of configuration changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from sentinel_app.models.base import created_at_field, fk, id_field, json_field, text_field


class AuditEntry(SQLModel, table=True):
    """Who changed what configuration, with the values before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_entity", "entity_type", "entity_id"),
        sa.Index("ix_audit_log_team_created", "team_id", "created_at"),
        sa.Index("ix_audit_log_created", "created_at"),
    )

    id: int | None = id_field()
    actor_user_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL")
    actor_api_key_id: int | None = fk("api_keys.id", nullable=True, ondelete="SET NULL", index=False)
    # "<entity>.<verb>", e.g. "integration.create", "api_key.revoke"
    action: str = text_field(64, default=...)
    entity_type: str = text_field(32, default=...)
    entity_id: str = text_field(64, default=...)
    team_id: int | None = fk("teams.id", nullable=True, ondelete="SET NULL", index=False)
    before: dict[str, Any] = json_field()
    after: dict[str, Any] = json_field()
    ip: str = text_field(64)
    created_at: dt.datetime = created_at_field()
