"""PagerDuty Events API v2 alert events (trigger, acknowledge, resolve)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sentinel_app.ingest.normalized import (
    MAX_DEDUP_KEY,
    MAX_TITLE,
    ROOT,
    SEVERITIES,
    NormalizedAlert,
    PayloadError,
    child,
    display_json,
    get_list,
    get_object,
    get_str,
    make_link,
    not_after,
    parse_timestamp,
    require_object,
    scalar_text,
    unique_links,
)

EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_SUMMARY = 1024
# The routing key is the integration's secret; it must not reach the alert timeline.
REDACTED = "[redacted]"


def parse(payload: Any, *, now: datetime) -> list[NormalizedAlert]:
    """The one alert signal of an Events API v2 event; messages quote the field like PagerDuty does."""
    try:
        return [_event(payload, now)]
    except PayloadError as error:
        raise PayloadError(error.field, f"'{error.field}' {error.message}") from None


def _event(payload: Any, now: datetime) -> NormalizedAlert:
    body = require_object(payload, ROOT)
    get_str(body, "routing_key", ROOT, required=True)
    action = get_str(body, "event_action", ROOT, required=True)
    if action not in EVENT_ACTIONS:
        raise PayloadError("event_action", f"must be one of {', '.join(EVENT_ACTIONS)}")
    dedup_key = (get_str(body, "dedup_key", ROOT, max_length=MAX_DEDUP_KEY) or "").strip()
    raw = {**body, "routing_key": REDACTED}
    if action != "trigger":
        if not dedup_key:
            raise PayloadError("dedup_key", f"is missing or blank (required for {action})")
        return NormalizedAlert(
            action="acknowledge" if action == "acknowledge" else "resolve",
            dedup_key=dedup_key,
            # Only the key matters for acknowledge/resolve; the title is a placeholder.
            title=dedup_key,
            source="pagerduty",
            ended_at=now if action == "resolve" else None,
            raw=raw,
        )
    return _trigger(body, dedup_key or uuid.uuid4().hex, raw, now)


def _trigger(body: dict[str, Any], dedup_key: str, raw: dict[str, Any], now: datetime) -> NormalizedAlert:
    event = get_object(body, "payload", ROOT, required=True) or {}
    summary = get_str(event, "summary", "payload", required=True, max_length=MAX_SUMMARY) or ""
    source = get_str(event, "source", "payload", required=True) or ""
    severity = get_str(event, "severity", "payload", required=True) or ""
    if severity.strip().lower() not in SEVERITIES:
        raise PayloadError("payload.severity", f"must be one of {', '.join(SEVERITIES)}")
    timestamp = parse_timestamp(event.get("timestamp"), "payload.timestamp")
    labels = {"source": source.strip()}
    for key in ("component", "group", "class"):
        value = get_str(event, key, "payload")
        if value and value.strip():
            labels[key] = value.strip()
    details = event.get("custom_details")
    annotations = _flatten(details)
    if details is not None:
        annotations["custom_details"] = display_json(details)
    client = get_str(body, "client", ROOT)
    client_url = get_str(body, "client_url", ROOT)
    if client and client.strip():
        annotations["client"] = client.strip()
    message_parts = [summary.strip()] if len(summary.strip()) > MAX_TITLE else []
    if isinstance(details, str) and details.strip():
        message_parts.append(details.strip())
    return NormalizedAlert(
        action="trigger",
        dedup_key=dedup_key,
        title=summary,
        message="\n\n".join(message_parts),
        severity=severity.strip().lower(),
        labels=labels,
        annotations=annotations,
        links=unique_links(
            [
                make_link("generator", client_url, (client or "").strip() or "Client"),
                *_links(body),
                *_images(body),
            ]
        ),
        source="pagerduty",
        fired_at=not_after(timestamp, now) or now,
        raw=raw,
    )


def _flatten(details: Any) -> dict[str, str]:
    """Top-level scalar entries of custom_details, so routing rules and the UI can use them directly."""
    if not isinstance(details, dict):
        return {}
    flat: dict[str, str] = {}
    for key, value in details.items():
        text = scalar_text(value)
        if text is not None:
            flat[str(key)] = text
    return flat


def _links(body: dict[str, Any]) -> list[dict[str, str] | None]:
    result: list[dict[str, str] | None] = []
    for index, entry in enumerate(get_list(body, "links", ROOT) or []):
        path = child("links", index)
        link = require_object(entry, path)
        href = get_str(link, "href", path, required=True)
        result.append(make_link("link", href, get_str(link, "text", path) or ""))
    return result


def _images(body: dict[str, Any]) -> list[dict[str, str] | None]:
    result: list[dict[str, str] | None] = []
    for index, entry in enumerate(get_list(body, "images", ROOT) or []):
        path = child("images", index)
        image = require_object(entry, path)
        src = get_str(image, "src", path, required=True)
        href = get_str(image, "href", path)
        alt = get_str(image, "alt", path) or ""
        result.append(make_link("image", src, alt))
        result.append(make_link("link", href, alt))
    return result
