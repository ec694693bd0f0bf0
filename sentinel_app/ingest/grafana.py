"""Grafana webhooks: unified alerting (payload version 1) and legacy dashboard alerting."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sentinel_app.ingest.alertmanager import Flavor, Links, parse_with
from sentinel_app.ingest.normalized import (
    ROOT,
    NormalizedAlert,
    PayloadError,
    child,
    clean_text,
    display_json,
    get_id,
    get_int,
    get_list,
    get_str,
    make_link,
    require_object,
    scalar_text,
    string_map,
    unique_links,
)
from sentinel_app.ingest.severity import severity_from_labels

_LEGACY_STATES = ("alerting", "ok", "no_data", "paused", "pending")
# Legacy states that say nothing about a problem: a paused rule or one still evaluating.
_LEGACY_SILENT = ("paused", "pending")


def parse_alerting(
    payload: Any, *, grouping: Mapping[str, Any] | None, now: datetime
) -> list[NormalizedAlert]:
    """Alerts from a Grafana Alerting (unified) webhook payload: one per alert, or one per group."""
    return parse_with(GRAFANA, payload, grouping=grouping, now=now)


def parse_any(payload: Any, *, grouping: Mapping[str, Any] | None, now: datetime) -> list[NormalizedAlert]:
    """Alerts from either Grafana payload: unified when it has `alerts`, else legacy."""
    body = require_object(payload, ROOT)
    if "alerts" in body:
        return parse_alerting(body, grouping=grouping, now=now)
    if "ruleName" in body or "ruleId" in body or "state" in body:
        return parse_legacy(body, now=now)
    raise PayloadError(
        "alerts", "is missing (Grafana Alerting sends `alerts`, legacy alerting `ruleName` and `state`)"
    )


def parse_legacy(payload: Any, *, now: datetime) -> list[NormalizedAlert]:
    """The alert of a legacy Grafana (pre-unified) notification; paused and pending rules give none."""
    body = require_object(payload, ROOT)
    state = get_str(body, "state", ROOT, required=True)
    if state not in _LEGACY_STATES:
        raise PayloadError("state", f"must be one of {', '.join(_LEGACY_STATES)}")
    rule_id = get_id(body, "ruleId", ROOT)
    rule_name = get_str(body, "ruleName", ROOT)
    if rule_id is None and not (rule_name and rule_name.strip()):
        raise PayloadError("ruleName", "is missing or blank (a legacy payload needs ruleId or ruleName)")
    org_id = get_id(body, "orgId", ROOT) or "1"  # the default organisation when an old Grafana omits it
    for key in ("dashboardId", "panelId"):
        get_int(body, key, ROOT)
    title = get_str(body, "title", ROOT)
    message = get_str(body, "message", ROOT) or ""
    rule_url = get_str(body, "ruleUrl", ROOT)
    image_url = get_str(body, "imageUrl", ROOT)
    labels = string_map(body.get("tags"), "tags")
    value_string = _eval_matches(body)
    if state in _LEGACY_SILENT:
        return []
    if rule_name and rule_name.strip():
        labels.setdefault("alertname", rule_name.strip())
    annotations = {"state": state}
    if value_string:
        annotations["value_string"] = value_string
    rule_part = f"rule:{rule_id}" if rule_id is not None else f"rule-name:{(rule_name or '').strip()}"
    resolved = state == "ok"
    return [
        NormalizedAlert(
            action="resolve" if resolved else "trigger",
            dedup_key=f"grafana:org:{org_id}:{rule_part}",
            title=_first_text(title, rule_name) or "Grafana alert",
            message=message,
            severity=severity_from_labels(labels),
            labels=labels,
            annotations=annotations,
            links=unique_links(
                [make_link("generator", rule_url, "Alert rule"), make_link("image", image_url, "Panel image")]
            ),
            source="grafana",
            fired_at=None if resolved else now,
            ended_at=now if resolved else None,
            raw=body,
        )
    ]


def _eval_matches(body: Mapping[str, Any]) -> str:
    """The evaluated series as "metric=value, ..." (checked for shape on the way)."""
    matches = get_list(body, "evalMatches", ROOT) or []
    parts = []
    for index, entry in enumerate(matches):
        path = child("evalMatches", index)
        match = require_object(entry, path)
        metric = get_str(match, "metric", path) or ""
        string_map(match.get("tags"), child(path, "tags"))
        value = match.get("value")
        text = None if isinstance(value, bool) else scalar_text(value)
        if value is not None and (text is None or isinstance(value, str)):
            raise PayloadError(child(path, "value"), "must be a number")
        parts.append(f"{metric}={text if text is not None else 'null'}")
    return ", ".join(parts)


def _first_text(*values: str | None) -> str | None:
    for value in values:
        if value and value.strip():
            return value.strip()
    return None


def grafana_silence_url(external: str, labels: Mapping[str, str]) -> str | None:
    """Grafana's page that creates a silence in its built-in Alertmanager, pre-filled with `labels`."""
    if not external or not labels:
        return None
    pairs = (clean_text(f"{k}={v}") for k, v in sorted(labels.items()))  # quote() rejects lone surrogates
    query = "&".join("matcher=" + quote(pair, safe="") for pair in pairs)
    return f"{external.rstrip('/')}/alerting/silence/new?alertmanager=grafana&{query}"


def _extras(alert: dict[str, Any], path: str) -> tuple[Links, dict[str, str]]:
    links: Links = [
        make_link("silence", get_str(alert, "silenceURL", path), "Silence"),
        make_link("dashboard", get_str(alert, "dashboardURL", path), "Dashboard"),
        make_link("panel", get_str(alert, "panelURL", path), "Panel"),
        make_link("image", get_str(alert, "imageURL", path), "Panel image"),
    ]
    annotations: dict[str, str] = {}
    value_string = get_str(alert, "valueString", path)
    if value_string and value_string.strip():
        annotations["value_string"] = value_string
    values = alert.get("values")
    if values is not None:
        annotations["values"] = display_json(require_object(values, child(path, "values")))
    return links, annotations


def _group_text(body: dict[str, Any]) -> tuple[str | None, str | None]:
    get_id(body, "orgId", ROOT)
    get_str(body, "state", ROOT)
    return _first_text(get_str(body, "title", ROOT)), _first_text(get_str(body, "message", ROOT))


GRAFANA = Flavor(
    source="grafana",
    fallback_title="Grafana alert",
    silence_url=grafana_silence_url,
    extras=_extras,
    group_text=_group_text,
)
