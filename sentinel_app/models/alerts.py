"""Alerts, their timeline and incidents that group them."""

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

# The WHERE clauses of the partial unique indexes; upserts must name the same ones.
OPEN_WITH_INTEGRATION = sa.text("status <> 'resolved'")
OPEN_WITHOUT_INTEGRATION = sa.text("status <> 'resolved' AND integration_id IS NULL")


class AlertStatus(StrEnum):
    """Where an alert is in its lifecycle."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """Normalised severity, most urgent first."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Alert(SQLModel, table=True):
    """One deduplicated problem: repeats of an open alert add occurrences, never new pages."""

    __tablename__ = "alerts"
    __table_args__ = (
        # Exactly one open alert per (integration, dedup key), enforced by the database.
        sa.Index(
            "uq_alerts_open_integration_dedup",
            "integration_id",
            "dedup_key",
            unique=True,
            postgresql_where=OPEN_WITH_INTEGRATION,
            sqlite_where=OPEN_WITH_INTEGRATION,
        ),
        # Alerts created through the API without an integration dedupe per team.
        sa.Index(
            "uq_alerts_open_team_dedup",
            "team_id",
            "dedup_key",
            unique=True,
            postgresql_where=OPEN_WITHOUT_INTEGRATION,
            sqlite_where=OPEN_WITHOUT_INTEGRATION,
        ),
        sa.Index("ix_alerts_status_fired_at", "status", "fired_at"),
        sa.Index("ix_alerts_team_status_fired_at", "team_id", "status", "fired_at"),
        sa.Index("ix_alerts_integration_fired_at", "integration_id", "fired_at"),
        sa.Index("ix_alerts_severity_status", "severity", "status"),
    )

    id: int | None = id_field()
    team_id: int = fk("teams.id", index=False)
    integration_id: int | None = fk("integrations.id", nullable=True, ondelete="SET NULL", index=False)
    escalation_policy_id: int | None = fk("escalation_policies.id", nullable=True, ondelete="SET NULL")
    incident_id: int | None = fk("incidents.id", nullable=True, ondelete="SET NULL")
    status: str = enum_field(AlertStatus.FIRING, length=16)
    severity: str = enum_field(Severity.ERROR, length=16)
    title: str = text_field(500, default=...)
    message: str = text_field()
    labels: dict[str, str] = json_field()
    annotations: dict[str, str] = json_field()
    # [{"kind": "runbook"|"dashboard"|"panel"|"silence"|"generator"|"image"|"link", "url": ..., "title": ...}]
    links: list[dict[str, Any]] = json_field(list)
    source: str = text_field(64, default="api")
    dedup_key: str = text_field(255, default=...)
    fingerprint: str | None = text_field(128, default=None, nullable=True)
    occurrence_count: int = Field(default=1)
    fired_at: dt.datetime = when(nullable=False)
    first_seen_at: dt.datetime = when(nullable=False)
    last_seen_at: dt.datetime = when(nullable=False)
    acknowledged_at: dt.datetime | None = when()
    acknowledged_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    resolved_at: dt.datetime | None = when(index=True)
    resolved_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    assigned_to_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL")
    silenced_until: dt.datetime | None = when()
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()


class AlertEventKind(StrEnum):
    """What happened to an alert (one timeline entry)."""

    CREATED = "created"
    OCCURRENCE = "occurrence"
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"
    RESOLVED = "resolved"
    SILENCED = "silenced"
    UNSILENCED = "unsilenced"
    NOTE = "note"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    NOTIFIED = "notified"
    NOTIFICATION_FAILED = "notification_failed"


class AlertEvent(SQLModel, table=True):
    """One entry of an alert's timeline: who did what, when, through which channel."""

    __tablename__ = "alert_events"
    __table_args__ = (sa.Index("ix_alert_events_alert_created", "alert_id", "created_at"),)

    id: int | None = id_field()
    alert_id: int = fk("alerts.id", index=False)
    kind: str = enum_field(AlertEventKind.CREATED, length=32)
    actor_user_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    # Who acted when it was not a user: "Alertmanager", "escalation", "Slack", ...
    actor: str = text_field(200)
    channel: str = text_field(32, default="system")
    note: str = text_field()
    payload: dict[str, Any] = json_field()
    created_at: dt.datetime = created_at_field()


class IncidentStatus(StrEnum):
    """Lifecycle of an incident."""

    OPEN = "open"
    RESOLVED = "resolved"


class Incident(SQLModel, table=True):
    """A group of related alerts handled as one piece of work."""

    __tablename__ = "incidents"
    __table_args__ = (sa.Index("ix_incidents_team_status", "team_id", "status"),)

    id: int | None = id_field()
    team_id: int = fk("teams.id", index=False)
    title: str = text_field(500, default=...)
    summary: str = text_field()
    status: str = enum_field(IncidentStatus.OPEN, length=16)
    severity: str = enum_field(Severity.ERROR, length=16)
    created_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()
    resolved_at: dt.datetime | None = when()
