"""Actor names carry the app version: detached actors outlive a redeploy with their old code."""

from __future__ import annotations

from sentinel_app import __version__

NAMESPACE = "sentinel"


def versioned(name: str) -> str:
    """`name` qualified with the running app version, e.g. ``supervisor@0.1.0``."""
    return f"{name}@{__version__}"
