"""Senders' many severity spellings mapped onto critical, error, warning and info."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sentinel_app.ingest.normalized import SEVERITIES

_ALIASES: dict[str, tuple[str, ...]] = {
    "critical": ("critical", "crit", "page", "p1", "fatal", "emergency", "emerg", "sev1", "high", "disaster"),
    "error": ("error", "err", "major", "p2", "sev2"),
    "warning": ("warning", "warn", "minor", "p3", "sev3", "medium"),
    "info": (
        "info",
        "informational",
        "information",
        "notice",
        "low",
        "none",
        "ok",
        "p4",
        "p5",
        "sev4",
        "sev5",
        "debug",
    ),
}
_SEVERITY_OF = {alias: severity for severity, aliases in _ALIASES.items() for alias in aliases}
_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


def normalize_severity(value: Any) -> str | None:
    """critical/error/warning/info for a known spelling (any case, "sev-1" = "sev1"), else None."""
    if not isinstance(value, str):
        return None
    key = value.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    return _SEVERITY_OF.get(key)


def severity_from_labels(labels: dict[str, str], default: str = "error") -> str:
    """The severity named by the `severity` label, else by `priority`, else `default`."""
    for key in ("severity", "priority"):
        severity = normalize_severity(labels.get(key))
        if severity is not None:
            return severity
    return default


def most_urgent(severities: Iterable[str], default: str = "error") -> str:
    """The most urgent of `severities` (critical first), or `default` when there are none."""
    return min(severities, key=_RANK.__getitem__, default=default)
