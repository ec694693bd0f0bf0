"""Alert ingestion adapters: pure functions from a sender's JSON payload to normalised alerts.

No database, no HTTP and no clock: the caller passes `now`. Every invalid input raises
PayloadError naming the offending field; nothing else escapes `parse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sentinel_app.ingest import alertmanager, generic, grafana, pagerduty
from sentinel_app.ingest.alertmanager import Grouping, read_grouping
from sentinel_app.ingest.normalized import (
    LINK_KINDS,
    MAX_ALERTS,
    SEVERITIES,
    Action,
    NormalizedAlert,
    PayloadError,
    as_utc,
    check_depth,
)
from sentinel_app.ingest.severity import normalize_severity

__all__ = [
    "KINDS",
    "LINK_KINDS",
    "MAX_ALERTS",
    "SEVERITIES",
    "Action",
    "Grouping",
    "NormalizedAlert",
    "PayloadError",
    "normalize_severity",
    "parse",
    "validate_grouping",
]

KINDS: tuple[str, ...] = (
    "alertmanager",
    "grafana_alerting",
    "grafana",
    "pagerduty",
    "webhook",
    "formatted_webhook",
)


def parse(
    kind: str,
    payload: Any,
    *,
    grouping: Mapping[str, Any] | None = None,
    lenient: bool = False,
    now: datetime,
) -> list[NormalizedAlert]:
    """The alerts in `payload` as sent by an integration of `kind` (PayloadError when it is not valid).

    `grouping` applies to Alertmanager-shaped payloads; `lenient` to the generic webhook only.
    """
    if not isinstance(kind, str) or kind not in KINDS:
        raise PayloadError("kind", f"must be one of {', '.join(KINDS)}")
    now = as_utc(now)
    check_depth(payload)
    if kind == "alertmanager":
        return alertmanager.parse(payload, grouping=grouping, now=now)
    if kind == "grafana_alerting":
        return grafana.parse_alerting(payload, grouping=grouping, now=now)
    if kind == "grafana":
        return grafana.parse_any(payload, grouping=grouping, now=now)
    if kind == "pagerduty":
        return pagerduty.parse(payload, now=now)
    if kind == "webhook":
        return generic.parse(payload, lenient=lenient, now=now)
    return generic.parse_formatted(payload, now=now)


def validate_grouping(grouping: Mapping[str, Any] | None) -> Grouping:
    """The integration grouping setting checked (PayloadError with field grouping.mode / grouping.group_by)."""
    return read_grouping(grouping)
