"""The live event every alert change publishes, in one shape for every publisher."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from sentinel_app import bus
from sentinel_app.models import Alert

UPDATED = "alert.updated"


def publish_updated(session: Session, alert: Alert, change: str, **extra: Any) -> None:
    """Publish `alert.updated` (delivered on commit) saying what changed: ack, note, notified, …"""
    bus.publish(
        session,
        UPDATED,
        {
            "id": alert.id,
            "team_id": alert.team_id,
            "status": alert.status,
            "severity": alert.severity,
            "change": change,
            **extra,
        },
        key=f"alert:{alert.id}",
    )
