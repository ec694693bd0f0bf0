"""Sentinel's own webhook format (strict or lenient) and Grafana OnCall's formatted webhook."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sentinel_app.ingest.normalized import (
    LINK_KINDS,
    ROOT,
    Action,
    NormalizedAlert,
    PayloadError,
    child,
    first_text,
    get_id,
    get_list,
    get_str,
    lenient_string_map,
    make_link,
    not_after,
    parse_timestamp,
    require_object,
    stable_hash,
    string_map,
    unique_links,
)
from sentinel_app.ingest.severity import normalize_severity

_ACTION_OF: dict[str, Action] = {
    **dict.fromkeys(("firing", "trigger", "triggered", "alerting", "problem"), "trigger"),
    **dict.fromkeys(("resolved", "resolve", "ok"), "resolve"),
    **dict.fromkeys(("acknowledge", "acknowledged", "ack"), "acknowledge"),
}
_SEVERITY_HELP = "must be one of critical, error, warning, info (or an alias such as p1, sev2, high, low)"
_STATUS_HELP = "must be one of firing, resolved, trigger, resolve, ok, acknowledge, acknowledged"

_LENIENT_TITLE_KEYS = ("title", "name", "alertname", "summary", "subject", "message")
_LENIENT_MESSAGE_KEYS = ("message", "description", "text", "details", "body")
_LENIENT_DEDUP_KEYS = ("dedup_key", "alert_uid", "id", "fingerprint", "incident_key")
_LENIENT_STATUS_KEYS = ("status", "state")
_LENIENT_TIME_KEYS = ("fired_at", "startsAt", "timestamp")
_LENIENT_LINK_KEYS = (
    ("link_to_upstream_details", "link", "Upstream details"),
    ("url", "link", "Link"),
    ("link", "link", "Link"),
    ("generatorURL", "generator", "Alert source"),
    ("runbook_url", "runbook", "Runbook"),
    ("image_url", "image", "Image"),
    ("imageUrl", "image", "Image"),
)


def parse(payload: Any, *, lenient: bool, now: datetime) -> list[NormalizedAlert]:
    """The alert of a generic webhook: the documented format, or (lenient) any JSON object."""
    return [_lenient(payload, now) if lenient else _strict(payload, now)]


def _strict(payload: Any, now: datetime) -> NormalizedAlert:
    body = require_object(payload, ROOT)
    title = get_str(body, "title", ROOT, required=True) or ""
    message = get_str(body, "message", ROOT) or ""
    severity_text = get_str(body, "severity", ROOT)
    severity = normalize_severity(severity_text) if severity_text is not None else "error"
    if severity is None:
        raise PayloadError("severity", _SEVERITY_HELP)
    labels = string_map(body.get("labels"), "labels")
    annotations = string_map(body.get("annotations"), "annotations", nested="json")
    dedup_key = (get_str(body, "dedup_key", ROOT) or "").strip()
    status = get_str(body, "status", ROOT)
    action = _ACTION_OF.get(status.strip().lower()) if status is not None else "trigger"
    if action is None:
        raise PayloadError("status", _STATUS_HELP)
    links = _strict_links(body)
    fired_at = parse_timestamp(body.get("fired_at"), "fired_at", epoch=True)
    return _alert(
        action,
        dedup_key or stable_hash({"title": title, "labels": labels}),
        title=title,
        message=message,
        severity=severity,
        labels=labels,
        annotations=annotations,
        links=links,
        source="webhook",
        fired_at=fired_at,
        raw=body,
        now=now,
    )


def _strict_links(body: Mapping[str, Any]) -> list[dict[str, str]]:
    links: list[dict[str, str] | None] = []
    for index, entry in enumerate(get_list(body, "links", ROOT) or []):
        path = child("links", index)
        if isinstance(entry, str):
            url, title, kind, url_path = entry, "", "link", path
        else:
            item = require_object(entry, path)
            url = get_str(item, "url", path, required=True) or ""
            title = get_str(item, "title", path) or ""
            kind = get_str(item, "kind", path) or "link"
            url_path = child(path, "url")
            if kind not in LINK_KINDS:
                raise PayloadError(child(path, "kind"), f"must be one of {', '.join(LINK_KINDS)}")
        link = make_link(kind, url, title)
        if link is None:
            raise PayloadError(url_path, "must be an absolute http(s) URL")
        links.append(link)
    return unique_links(links)


def _lenient(payload: Any, now: datetime) -> NormalizedAlert:
    body = require_object(payload, ROOT)
    found_title = first_text(body, _LENIENT_TITLE_KEYS)
    title_key, title = found_title or ("", "Webhook alert")
    found_message = first_text(body, (k for k in _LENIENT_MESSAGE_KEYS if k != title_key))
    found_dedup = first_text(body, _LENIENT_DEDUP_KEYS)
    found_status = first_text(body, _LENIENT_STATUS_KEYS)
    status = found_status[1].lower() if found_status else "firing"
    found_severity = first_text(body, ("severity", "priority", "level"))
    labels = lenient_string_map(body.get("labels"))
    fired_at = None
    for key in _LENIENT_TIME_KEYS:
        try:
            fired_at = parse_timestamp(body.get(key), key, epoch=True)
        except PayloadError:
            continue  # lenient: an unreadable time falls back to the time of receipt
        if fired_at is not None:
            break
    # Status and time are left out of the default key so that a repeat or an "ok" finds the same alert.
    unkeyed = {k: v for k, v in body.items() if k not in (*_LENIENT_STATUS_KEYS, *_LENIENT_TIME_KEYS)}
    return _alert(
        _lenient_action(status),
        found_dedup[1] if found_dedup else stable_hash(unkeyed),
        title=title,
        message=found_message[1] if found_message else "",
        severity=(normalize_severity(found_severity[1]) if found_severity else None) or "error",
        labels=labels,
        annotations=lenient_string_map(body.get("annotations")),
        links=_lenient_links(body),
        source="webhook",
        fired_at=fired_at,
        raw=body,
        now=now,
    )


def _lenient_action(status: str) -> Action:
    if status in ("ok", "resolved", "resolve"):
        return "resolve"
    if status in ("acknowledge", "acknowledged", "ack"):
        return "acknowledge"
    return "trigger"


def _lenient_links(body: Mapping[str, Any]) -> list[dict[str, str]]:
    links = [make_link(kind, body.get(key), title) for key, kind, title in _LENIENT_LINK_KEYS]
    entries = body.get("links")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, str):
            links.append(make_link("link", entry))
        elif isinstance(entry, dict):
            kind = entry.get("kind")
            title = entry.get("title", entry.get("text"))
            links.append(
                make_link(
                    kind if kind in LINK_KINDS else "link",
                    entry.get("url", entry.get("href")),
                    title if isinstance(title, str) else "",
                )
            )
    return unique_links(links)


def parse_formatted(payload: Any, *, now: datetime) -> list[NormalizedAlert]:
    """The alert of a Grafana OnCall "formatted webhook" (alert_uid, title, message, image_url, state)."""
    body = require_object(payload, ROOT)
    alert_uid = get_id(body, "alert_uid", ROOT)
    title = (get_str(body, "title", ROOT) or "").strip()
    message = (get_str(body, "message", ROOT) or "").strip()
    image_url = get_str(body, "image_url", ROOT)
    upstream = get_str(body, "link_to_upstream_details", ROOT)
    state = (get_str(body, "state", ROOT) or "alerting").strip().lower()
    severity = normalize_severity(body.get("severity")) or "error"
    # Grafana OnCall resolves on state "ok" and treats every other state as alerting.
    action: Action = "resolve" if state in ("ok", "resolved") else "trigger"
    fallback_title = message.splitlines()[0] if message else "Formatted webhook alert"
    return [
        _alert(
            action,
            alert_uid or stable_hash({"title": title}),
            title=title or fallback_title,
            message=message,
            severity=severity,
            labels={},
            annotations={},
            links=unique_links(
                [make_link("link", upstream, "Upstream details"), make_link("image", image_url, "Image")]
            ),
            source="formatted_webhook",
            fired_at=None,
            raw=body,
            now=now,
        )
    ]


def _alert(
    action: Action,
    dedup_key: str,
    *,
    title: str,
    message: str,
    severity: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    links: list[dict[str, str]],
    source: str,
    fired_at: datetime | None,
    raw: dict[str, Any],
    now: datetime,
) -> NormalizedAlert:
    """An alert with the time rules every single-alert sender shares (receipt time when the sender gave none)."""
    fired = not_after(fired_at, now)
    return NormalizedAlert(
        action=action,
        dedup_key=dedup_key,
        title=title,
        message=message,
        severity=severity,
        labels=labels,
        annotations=annotations,
        links=links,
        source=source,
        fired_at=fired if action != "trigger" else (fired or now),
        ended_at=now if action == "resolve" else None,
        raw=raw,
    )
