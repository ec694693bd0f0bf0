"""Who acts: the user (or system component) behind a change, and the channel it came through."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The author of a change, for timelines and the audit log."""

    user_id: int | None = None
    label: str = ""
    channel: str = "api"
    api_key_id: int | None = None


SYSTEM = Actor(label="system", channel="system")
