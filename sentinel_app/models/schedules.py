"""On-call schedules: rotation layers with participants and restrictions, and overrides."""

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


class RotationKind(StrEnum):
    """How often a layer hands off; `custom` uses interval + unit."""

    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    CUSTOM = "custom"


class Schedule(SQLModel, table=True):
    """Who is on call for a team, in the schedule's IANA timezone."""

    __tablename__ = "schedules"
    __table_args__ = (sa.UniqueConstraint("team_id", "name"),)

    id: int | None = id_field()
    team_id: int = fk("teams.id")
    name: str = text_field(200, default=...)
    description: str = text_field()
    timezone: str = text_field(64, default="UTC")
    # Unguessable, rotatable token for the iCalendar feed; only its hash is kept.
    ical_token_hash: str | None = text_field(64, default=None, nullable=True, index=True)
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()


class RotationLayer(SQLModel, table=True):
    """One rotation within a schedule; higher priority wins where it has someone on call."""

    __tablename__ = "rotation_layers"

    id: int | None = id_field()
    schedule_id: int = fk("schedules.id")
    name: str = text_field(200, default=...)
    priority: int = Field(default=0)
    kind: str = enum_field(RotationKind.WEEKLY, length=16)
    interval: int = Field(default=1)
    # Unit for custom rotations: hour, day, week or month.
    unit: str | None = text_field(8, default=None, nullable=True)
    shift_length_minutes: int | None = Field(default=None)
    handoff_time: str = text_field(5, default="09:00")
    handoff_weekday: int | None = Field(default=None)
    handoff_day: int | None = Field(default=None)
    # The layer's own zone; None uses the schedule's.
    timezone: str | None = text_field(64, default=None, nullable=True)
    start_at: dt.datetime = when(nullable=False)
    end_at: dt.datetime | None = when()
    start_index: int = Field(default=0)
    # [{"kind": "daily"|"weekly", "start": "09:00", "end": "17:00", "start_weekday": 0, "end_weekday": 4}]
    restrictions: list[dict[str, Any]] = json_field(list)
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()


class LayerParticipant(SQLModel, table=True):
    """A slot in a layer's rotation order; a user may hold several slots."""

    __tablename__ = "layer_participants"
    __table_args__ = (sa.UniqueConstraint("layer_id", "position"),)

    id: int | None = id_field()
    layer_id: int = fk("rotation_layers.id", index=False)
    position: int = Field(default=0)
    user_id: int = fk("users.id")


class ScheduleOverride(SQLModel, table=True):
    """Replaces whoever the layers give in [start_at, end_at); the newest override wins."""

    __tablename__ = "schedule_overrides"
    __table_args__ = (sa.Index("ix_schedule_overrides_schedule_range", "schedule_id", "start_at", "end_at"),)

    id: int | None = id_field()
    schedule_id: int = fk("schedules.id", index=False)
    user_id: int = fk("users.id")
    start_at: dt.datetime = when(nullable=False)
    end_at: dt.datetime = when(nullable=False)
    reason: str = text_field()
    # Both halves of a shift swap share one group id and are created together.
    swap_group: str | None = text_field(36, default=None, nullable=True, index=True)
    created_by_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL", index=False)
    created_at: dt.datetime = created_at_field()
