"""Escalation policies, their steps, and the durable escalation state of each alert."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from sentinel_app.domain.escalation_policy import StepKind
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


class EscalationPolicy(SQLModel, table=True):
    """An ordered list of steps, repeated while nobody acknowledges."""

    __tablename__ = "escalation_policies"
    __table_args__ = (
        sa.UniqueConstraint("team_id", "name"),
        sa.CheckConstraint("repeat_count >= 0 AND repeat_count <= 10", name="repeat_count_range"),
    )

    id: int | None = id_field()
    team_id: int = fk("teams.id")
    name: str = text_field(200, default=...)
    description: str = text_field()
    repeat_count: int = Field(default=0)
    # Page again when acknowledged but still unresolved after this long.
    reescalate_after_ack_minutes: int | None = Field(default=None)
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()


class EscalationStep(SQLModel, table=True):
    """One step of a policy; `targets` and `config` depend on `kind`."""

    __tablename__ = "escalation_steps"
    __table_args__ = (sa.UniqueConstraint("policy_id", "position"),)

    id: int | None = id_field()
    policy_id: int = fk("escalation_policies.id", index=False)
    position: int = Field(default=0)
    kind: str = enum_field(StepKind.NOTIFY_USERS, length=24)
    # Minutes to wait after this step before the next one runs.
    delay_minutes: int = Field(default=0)
    important: bool = Field(default=False)
    # {"user_ids": [...], "schedule_ids": [...], "team_ids": [...]}
    targets: dict[str, Any] = json_field()
    # Kind-specific settings: webhook url, time window (days, start, end, timezone), ...
    config: dict[str, Any] = json_field()
    # Round-robin steps remember whose turn is next across alerts.
    round_robin_cursor: int = Field(default=0)
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()


class EscalationState(StrEnum):
    """Whether an alert's escalation still has work to do."""

    ACTIVE = "active"
    PAUSED = "paused"
    DONE = "done"


class Escalation(SQLModel, table=True):
    """The durable state of one alert's escalation; actors rebuild their timers from it.

    Steps are claimed by compare-and-set on `version`, so only one worker acts on each.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        sa.UniqueConstraint("alert_id"),
        sa.Index("ix_escalations_state_next_at", "state", "next_at"),
        sa.Index("ix_escalations_shard_state", "shard", "state"),
    )

    id: int | None = id_field()
    alert_id: int = fk("alerts.id", index=False)
    policy_id: int | None = fk("escalation_policies.id", nullable=True, ondelete="SET NULL", index=False)
    # The policy as it was when the alert fired: later edits never change a running escalation.
    policy_snapshot: dict[str, Any] = json_field()
    state: str = enum_field(EscalationState.ACTIVE, length=16)
    step_index: int = Field(default=0)
    cycle: int = Field(default=0)
    next_at: dt.datetime | None = when()
    version: int = Field(default=0)
    shard: int = Field(default=0)
    last_step_at: dt.datetime | None = when()
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()
