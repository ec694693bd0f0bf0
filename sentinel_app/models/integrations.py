"""Where alerts come from: integrations with their tokens, grouping and routing rules."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

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


class IntegrationKind(StrEnum):
    """The sender an integration expects (selects the payload adapter)."""

    ALERTMANAGER = "alertmanager"
    GRAFANA_ALERTING = "grafana_alerting"
    GRAFANA = "grafana"
    PAGERDUTY = "pagerduty"
    WEBHOOK = "webhook"
    FORMATTED_WEBHOOK = "formatted_webhook"


class Integration(SQLModel, table=True):
    """An inbound alert source owned by a team, authenticated by a secret token."""

    __tablename__ = "integrations"
    __table_args__ = (sa.UniqueConstraint("token_hash"), sa.UniqueConstraint("team_id", "name"))

    id: int | None = id_field()
    team_id: int = fk("teams.id")
    name: str = text_field(200, default=...)
    kind: str = enum_field(IntegrationKind.WEBHOOK)
    description: str = text_field()
    token_prefix: str = text_field(24, default=...)
    token_hash: str = text_field(64, default=...)
    # HMAC key for optional signature checks; it must be recoverable, so it is
    # encrypted with the server's secret key rather than hashed.
    signing_secret_encrypted: str | None = text_field(None, default=None, nullable=True)
    default_escalation_policy_id: int | None = fk(
        "escalation_policies.id", nullable=True, ondelete="SET NULL"
    )
    # e.g. {"mode": "fingerprint"} or {"mode": "group", "group_by": ["alertname"]}
    grouping: dict[str, Any] = json_field()
    slack_channel_id: str | None = text_field(64, default=None, nullable=True)
    enabled: bool = Field(default=True)
    last_received_at: dt.datetime | None = when()
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()


class IntegrationRoute(SQLModel, table=True):
    """An ordered routing rule: label matchers choose the escalation policy (and team)."""

    __tablename__ = "integration_routes"
    __table_args__ = (sa.UniqueConstraint("integration_id", "position"),)

    id: int | None = id_field()
    integration_id: int = fk("integrations.id")
    position: int = Field(default=0)
    # [{"label": "severity", "op": "=", "value": "critical"}, ...]; ops: = != =~ !~
    matchers: list[dict[str, Any]] = json_field(list)
    escalation_policy_id: int | None = fk("escalation_policies.id", nullable=True, ondelete="SET NULL")
    team_id: int | None = fk("teams.id", nullable=True, ondelete="SET NULL")
    created_at: dt.datetime = created_at_field()
