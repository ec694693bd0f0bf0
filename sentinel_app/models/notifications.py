"""How people are reached: contact methods, personal rules, push devices and the outbox."""

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


class ContactKind(StrEnum):
    """A way to reach a person that needs an address."""

    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"
    SLACK = "slack"
    WEBHOOK = "webhook"


class Channel(StrEnum):
    """A delivery channel of the outbox."""

    APNS = "apns"
    FCM = "fcm"
    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"
    SLACK = "slack"
    WEBHOOK = "webhook"


class Urgency(StrEnum):
    """Which set of personal notification rules applies."""

    DEFAULT = "default"
    IMPORTANT = "important"


class ContactMethod(SQLModel, table=True):
    """A verified address (phone, email, Slack user, webhook URL) of a user."""

    __tablename__ = "contact_methods"
    __table_args__ = (sa.UniqueConstraint("user_id", "kind", "value"),)

    id: int | None = id_field()
    user_id: int = fk("users.id")
    kind: str = enum_field(ContactKind.EMAIL, length=16)
    value: str = text_field(500, default=...)
    label: str = text_field(100)
    enabled: bool = Field(default=True)
    verified_at: dt.datetime | None = when()
    verification_code_hash: str | None = text_field(64, default=None, nullable=True)
    verification_expires_at: dt.datetime | None = when()
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()


class NotificationRule(SQLModel, table=True):
    """One step of a user's personal rules: a method and how long after the page to use it."""

    __tablename__ = "notification_rules"
    __table_args__ = (sa.Index("ix_notification_rules_user_urgency", "user_id", "urgency", "delay_minutes"),)

    id: int | None = id_field()
    user_id: int = fk("users.id", index=False)
    urgency: str = enum_field(Urgency.DEFAULT, length=16)
    # "push" (every active device) or a contact kind.
    method: str = text_field(16, default="push")
    # A specific address; None means every verified method of that kind.
    contact_method_id: int | None = fk("contact_methods.id", nullable=True)
    delay_minutes: int = Field(default=0)
    created_at: dt.datetime = created_at_field()


class PushPlatform(StrEnum):
    """Mobile push transport."""

    APNS = "apns"
    FCM = "fcm"


class PushDevice(SQLModel, table=True):
    """A mobile app installation registered for push notifications."""

    __tablename__ = "push_devices"
    __table_args__ = (sa.UniqueConstraint("platform", "token"),)

    id: int | None = id_field()
    user_id: int = fk("users.id")
    platform: str = enum_field(PushPlatform.APNS, length=16)
    token: str = text_field(4096, default=...)
    name: str = text_field(200)
    app_version: str = text_field(64)
    active: bool = Field(default=True)
    last_seen_at: dt.datetime | None = when()
    deactivated_at: dt.datetime | None = when()
    deactivation_reason: str = text_field(200)
    created_at: dt.datetime = created_at_field()


class NotificationStatus(StrEnum):
    """Outbox row state: pending → sending → sent/delivered, or failed/cancelled."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Notification(SQLModel, table=True):
    """An outbox row: one message to one target on one channel, sent at least once.

    The unique idempotency key (alert, cycle, step, user, channel, ...) makes a
    resend after a crash a no-op.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        sa.UniqueConstraint("idempotency_key"),
        sa.Index("ix_notifications_status_next_attempt", "status", "next_attempt_at"),
        sa.Index("ix_notifications_alert_created", "alert_id", "created_at"),
        # Provider status callbacks (Twilio, Slack) find their row by the provider's id.
        sa.Index("ix_notifications_provider_id", "provider_id"),
    )

    id: int | None = id_field()
    idempotency_key: str = text_field(255, default=...)
    alert_id: int | None = fk("alerts.id", nullable=True, index=False)
    user_id: int | None = fk("users.id", nullable=True, ondelete="SET NULL")
    channel: str = enum_field(Channel.EMAIL, length=16)
    # "alert", "oncall_start", "oncall_end", "verification", "status_update"
    purpose: str = text_field(32, default="alert")
    important: bool = Field(default=False)
    contact_method_id: int | None = fk("contact_methods.id", nullable=True, ondelete="SET NULL", index=False)
    push_device_id: int | None = fk("push_devices.id", nullable=True, ondelete="SET NULL", index=False)
    # The address at the time of writing (phone, email, channel id, url), for the record.
    target: str = text_field(500)
    payload: dict[str, Any] = json_field()
    status: str = enum_field(NotificationStatus.PENDING, length=16)
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=5)
    next_attempt_at: dt.datetime | None = when()
    claimed_until: dt.datetime | None = when()
    claimed_by: str = text_field(100)
    provider_id: str = text_field(200)
    provider_status: str = text_field(64)
    error: str = text_field()
    created_at: dt.datetime = created_at_field()
    updated_at: dt.datetime = updated_at_field()
    sent_at: dt.datetime | None = when()
    delivered_at: dt.datetime | None = when()
