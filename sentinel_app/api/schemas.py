"""Request and response bodies of the REST API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SeverityName = Literal["critical", "error", "warning", "info"]


class Strict(BaseModel):
    """Bodies refuse unknown fields, so typos are reported instead of ignored."""

    model_config = ConfigDict(extra="forbid")


class AlertCreate(Strict):
    """An alert raised directly through the API (no integration)."""

    team_id: int
    title: str = Field(min_length=1, max_length=500)
    message: str = Field(default="", max_length=20_000)
    severity: SeverityName = "error"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    links: list[dict[str, str]] = Field(default_factory=list)
    dedup_key: str | None = Field(default=None, min_length=1, max_length=255)
    escalation_policy_id: int | None = None


class NoteBody(Strict):
    """A free-text note."""

    note: str = Field(default="", max_length=5_000)


class ResolveBody(Strict):
    """Resolution with an optional note."""

    resolution_note: str = Field(default="", max_length=5_000)


class SilenceBody(Strict):
    """Silence for a number of minutes (at most 7 days)."""

    duration_minutes: int = Field(gt=0, le=7 * 24 * 60)
    note: str = Field(default="", max_length=5_000)


class AddNoteBody(Strict):
    """A timeline note."""

    note: str = Field(min_length=1, max_length=5_000)


class AlertOut(BaseModel):
    """An alert as the API shows it."""

    id: int
    team_id: int
    integration_id: int | None
    escalation_policy_id: int | None
    status: str
    severity: str
    title: str
    message: str
    labels: dict[str, str]
    annotations: dict[str, str]
    links: list[dict[str, Any]]
    source: str
    dedup_key: str
    fingerprint: str | None
    occurrence_count: int
    fired_at: dt.datetime
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by_id: int | None
    resolved_at: dt.datetime | None
    resolved_by_id: int | None
    assigned_to_id: int | None
    silenced_until: dt.datetime | None


class EventOut(BaseModel):
    """One timeline entry."""

    id: int
    kind: str
    actor_user_id: int | None
    actor: str
    channel: str
    note: str
    payload: dict[str, Any]
    created_at: dt.datetime


class AlertDetail(AlertOut):
    """An alert with its timeline."""

    timeline: list[EventOut]


class AlertPage(BaseModel):
    """One page of alerts and the cursor of the next one."""

    items: list[AlertOut]
    next_cursor: str | None
