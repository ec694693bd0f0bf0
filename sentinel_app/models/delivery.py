"""Delivery bookkeeping: used action links, SMS reply references and outgoing webhook subscriptions."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sentinel_app.models.base import (
    created_at_field,
    fk,
    id_field,
    json_field,
    text_field,
    updated_at_field,
    when,
)


class ActionLinkUse(SQLModel, table=True):
    """A signed action link that was used; the unique nonce makes every link single-use."""

    __tablename__ = "action_link_uses"
    __table_args__ = (sa.UniqueConstraint("nonce"),)

    id: int | None = id_field()
    nonce: str = text_field(64, default=...)
    alert_id: int | None = fk("alerts.id", nullable=True, ondelete="CASCADE", index=False)
    user_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    action: str = text_field(16)
    used_at: dt.datetime = created_at_field()
    # Rows can be pruned once the link would have expired anyway.
    expires_at: dt.datetime = when(nullable=False, index=True)


class SmsRef(SQLModel, table=True):
    """The short per-person number of an alert in SMS reply codes ("reply 3a to acknowledge")."""

    __tablename__ = "sms_refs"
    __table_args__ = (sa.UniqueConstraint("user_id", "ref"), sa.UniqueConstraint("user_id", "alert_id"))

    id: int | None = id_field()
    user_id: int = fk("users.id", index=False)
    alert_id: int = fk("alerts.id", ondelete="CASCADE")
    ref: str = text_field(8, default=...)
    created_at: dt.datetime = created_at_field()


class OutgoingWebhook(SQLModel, table=True):
    """A team's subscription: POST signed JSON to `url` on the chosen alert events."""

    __tablename__ = "outgoing_webhooks"
    __table_args__ = (sa.UniqueConstraint("team_id", "name"),)

    id: int | None = id_field()
    team_id: int = fk("teams.id")
    name: str = text_field(200, default=...)
    url: str = text_field(2000, default=...)
    # HMAC key, encrypted with the server's secret key (it must be recoverable to sign).
    secret_encrypted: str | None = text_field(None, default=None, nullable=True)
    # Any of "fired", "acknowledged", "resolved", "escalated".
    events: list[str] = json_field(list)
    enabled: bool = Field(default=True)
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()
