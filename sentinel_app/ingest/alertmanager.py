"""Prometheus Alertmanager webhook payloads (version 4); Grafana Alerting reuses this with its own flavor."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from sentinel_app.ingest.normalized import (
    MAX_ALERTS,
    ROOT,
    NormalizedAlert,
    PayloadError,
    child,
    clean_text,
    get_int,
    get_list,
    get_str,
    make_link,
    not_after,
    parse_timestamp,
    require_object,
    stable_hash,
    string_map,
    unique_links,
)
from sentinel_app.ingest.severity import most_urgent, severity_from_labels

Links = list[dict[str, str] | None]
# Per-alert extras a flavor reads from fields Alertmanager does not have: (links, annotations).
ExtrasReader = Callable[[dict[str, Any], str], tuple[Links, dict[str, str]]]
# Whole-payload title and message a flavor's sender already rendered, used in group mode.
GroupTextReader = Callable[[dict[str, Any]], tuple[str | None, str | None]]

_MAX_MEMBER_LINES = 50
_MAX_GROUP_LINKS = 20


@dataclass(frozen=True)
class Flavor:
    """What differs between senders of Alertmanager-shaped payloads."""

    source: str
    fallback_title: str
    silence_url: Callable[[str, Mapping[str, str]], str | None]
    extras: ExtrasReader
    group_text: GroupTextReader


@dataclass(frozen=True)
class Grouping:
    """An integration's grouping setting: one alert per fingerprint, or per group."""

    mode: Literal["fingerprint", "group"] = "fingerprint"
    group_by: tuple[str, ...] | None = None


def read_grouping(grouping: Mapping[str, Any] | None) -> Grouping:
    """The grouping setting checked: {"mode": "fingerprint"} or {"mode": "group", "group_by"?: [label, ...]}."""
    if grouping is None:
        return Grouping()
    if not isinstance(grouping, Mapping):
        raise PayloadError("grouping", "must be an object")
    given = grouping.get("mode") or "fingerprint"
    if given not in ("fingerprint", "group"):
        raise PayloadError("grouping.mode", "must be one of fingerprint, group")
    mode: Literal["fingerprint", "group"] = "group" if given == "group" else "fingerprint"
    group_by = grouping.get("group_by")
    if group_by is None:
        return Grouping(mode)
    if (
        not isinstance(group_by, list)
        or not group_by
        or not all(isinstance(name, str) and name for name in group_by)
    ):
        raise PayloadError("grouping.group_by", "must be a non-empty array of label names")
    return Grouping(mode, tuple(dict.fromkeys(group_by)))


@dataclass(frozen=True)
class _Member:
    """One entry of `alerts`, checked and normalised."""

    firing: bool
    labels: dict[str, str]
    annotations: dict[str, str]
    starts: datetime | None
    ends: datetime | None
    title: str
    message: str
    severity: str
    fingerprint: str | None
    links: list[dict[str, str]]
    raw: dict[str, Any]


def parse(payload: Any, *, grouping: Mapping[str, Any] | None, now: datetime) -> list[NormalizedAlert]:
    """Alerts from an Alertmanager webhook payload: one per alert, or one per group in group mode."""
    return parse_with(ALERTMANAGER, payload, grouping=grouping, now=now)


def parse_with(
    flavor: Flavor, payload: Any, *, grouping: Mapping[str, Any] | None, now: datetime
) -> list[NormalizedAlert]:
    """Alerts from an Alertmanager-shaped payload read with `flavor`."""
    config = read_grouping(grouping)
    body = require_object(payload, ROOT)
    entries = get_list(body, "alerts", ROOT, required=True) or []
    if len(entries) > MAX_ALERTS:
        raise PayloadError("alerts", f"must contain at most {MAX_ALERTS} alerts")
    status = _status(body, ROOT, required=False)
    external = get_str(body, "externalURL", ROOT) or ""
    receiver = get_str(body, "receiver", ROOT) or ""
    group_key = (get_str(body, "groupKey", ROOT) or "").strip()
    group_labels = string_map(body.get("groupLabels"), "groupLabels")
    common_labels = string_map(body.get("commonLabels"), "commonLabels")
    common_annotations = string_map(body.get("commonAnnotations"), "commonAnnotations", nested="json")
    truncated = get_int(body, "truncatedAlerts", ROOT, minimum=0) or 0
    title, message = flavor.group_text(body)
    members = [_member(flavor, entry, child("alerts", i), external, now) for i, entry in enumerate(entries)]
    if config.mode == "fingerprint":
        return [_single(flavor, member, now) for member in members]
    if not members:
        return []
    if config.group_by is None:
        whole = _Group(
            key=group_key or stable_hash({"receiver": receiver, "groupLabels": group_labels}),
            group_labels=group_labels,
            labels=common_labels or _common(m.labels for m in members),
            annotations=common_annotations or _common(m.annotations for m in members),
            members=members,
            firing=status == "firing" if status else any(m.firing for m in members),
            title=title,
            message=message,
            truncated=truncated,
            raw=body,
        )
        return [_grouped(flavor, whole, external, now)]
    return [_grouped(flavor, group, external, now) for group in _partition(config.group_by, members, body)]


def _status(obj: Mapping[str, Any], path: str, *, required: bool) -> str | None:
    value = get_str(obj, "status", path, required=required)
    if value is None:
        return None
    if value not in ("firing", "resolved"):
        raise PayloadError(child(path, "status"), "must be one of firing, resolved")
    return value


def _member(flavor: Flavor, entry: Any, path: str, external: str, now: datetime) -> _Member:
    alert = require_object(entry, path)
    firing = _status(alert, path, required=True) == "firing"
    labels = string_map(alert.get("labels"), child(path, "labels"))
    annotations = string_map(alert.get("annotations"), child(path, "annotations"), nested="json")
    starts = parse_timestamp(alert.get("startsAt"), child(path, "startsAt"))
    ends = parse_timestamp(alert.get("endsAt"), child(path, "endsAt"))
    generator = get_str(alert, "generatorURL", path)
    fingerprint = (get_str(alert, "fingerprint", path) or "").strip() or None
    extra_links, extra_annotations = flavor.extras(alert, path)
    # The sender's own annotations win over values we derive from its other fields.
    annotations = {**extra_annotations, **annotations}
    links = unique_links(
        [make_link("generator", generator, "Alert source"), *annotation_links(annotations), *extra_links]
    )
    if not any(link["kind"] == "silence" for link in links):
        links += unique_links([make_link("silence", flavor.silence_url(external, labels), "Silence")])
    return _Member(
        firing=firing,
        labels=labels,
        annotations=annotations,
        starts=not_after(starts, now),
        ends=not_after(ends, now),
        title=_first(annotations.get("summary"), labels.get("alertname")) or flavor.fallback_title,
        message=_first(annotations.get("description"), annotations.get("message")) or "",
        severity=severity_from_labels(labels),
        fingerprint=fingerprint,
        links=links,
        raw=alert,
    )


def _single(flavor: Flavor, member: _Member, now: datetime) -> NormalizedAlert:
    fired_at = member.starts or (now if member.firing else None)
    ended_at = None if member.firing else _no_earlier(member.ends or now, fired_at)
    return NormalizedAlert(
        action="trigger" if member.firing else "resolve",
        dedup_key=member.fingerprint or stable_hash(member.labels),
        title=member.title,
        message=member.message,
        severity=member.severity,
        labels=member.labels,
        annotations=member.annotations,
        links=member.links,
        source=flavor.source,
        fingerprint=member.fingerprint,
        fired_at=fired_at,
        ended_at=ended_at,
        raw=member.raw,
    )


@dataclass(frozen=True)
class _Group:
    key: str
    group_labels: dict[str, str]
    labels: dict[str, str]
    annotations: dict[str, str]
    members: Sequence[_Member]
    firing: bool
    title: str | None
    message: str | None
    truncated: int
    raw: dict[str, Any]


def _partition(group_by: tuple[str, ...], members: list[_Member], body: dict[str, Any]) -> list[_Group]:
    parts: dict[tuple[str, ...], list[_Member]] = {}
    for member in members:
        parts.setdefault(tuple(member.labels.get(name, "") for name in group_by), []).append(member)
    groups = []
    for values, part in parts.items():
        group_labels = {name: value for name, value in zip(group_by, values, strict=True) if value}
        groups.append(
            _Group(
                key="group:" + matchers(dict(zip(group_by, values, strict=True))),
                group_labels=group_labels,
                labels=_common(m.labels for m in part),
                annotations=_common(m.annotations for m in part),
                members=part,
                firing=any(m.firing for m in part),
                title=None,
                message=None,
                truncated=0,
                raw={**body, "alerts": [m.raw for m in part]},
            )
        )
    return groups


def _grouped(flavor: Flavor, group: _Group, external: str, now: datetime) -> NormalizedAlert:
    firing = [m for m in group.members if m.firing]
    head = f"[FIRING:{len(firing)}]" if group.firing else "[RESOLVED]"
    summary = group.annotations.get("summary", "").strip()
    title = group.title or (
        f"{head} {summary or _describe(group.group_labels, group.labels) or flavor.fallback_title}"
    )
    message = _first(group.annotations.get("description"), group.annotations.get("message"), group.message)
    starts = [m.starts for m in group.members if m.starts is not None]
    ends = [m.ends for m in group.members if m.ends is not None]
    fired_at = min(starts, default=now)
    annotations = dict(group.annotations)
    if group.truncated:
        annotations["truncated_alerts"] = str(group.truncated)
    silence = make_link(
        "silence", flavor.silence_url(external, group.group_labels or group.labels), "Silence"
    )
    member_links = (link for m in group.members for link in m.links if link["kind"] != "silence")
    links = unique_links([*annotation_links(group.annotations), silence, *member_links])
    return NormalizedAlert(
        action="trigger" if group.firing else "resolve",
        dedup_key=group.key,
        title=title,
        message=message or _member_lines(group.members, group.truncated),
        severity=most_urgent(m.severity for m in (firing or group.members)),
        labels=group.labels,
        annotations=annotations,
        links=links[:_MAX_GROUP_LINKS],
        source=flavor.source,
        fired_at=fired_at,
        ended_at=None if group.firing else _no_earlier(max(ends, default=now), fired_at),
        raw=group.raw,
    )


def annotation_links(annotations: Mapping[str, str]) -> Links:
    """Runbook, dashboard and panel links that alert rules conventionally put in annotations."""
    return [
        make_link("runbook", _first(annotations.get("runbook_url"), annotations.get("runbook")), "Runbook"),
        make_link(
            "dashboard",
            _first(annotations.get("dashboard_url"), annotations.get("__dashboardUrl__")),
            "Dashboard",
        ),
        make_link("panel", _first(annotations.get("panel_url"), annotations.get("__panelUrl__")), "Panel"),
    ]


def matchers(labels: Mapping[str, str]) -> str:
    """Labels as an Alertmanager matcher set: {a="1", b="2"} (values escaped as PromQL strings)."""
    pairs = (f'{name}="{_escape(value)}"' for name, value in labels.items())
    return "{" + ", ".join(pairs) + "}"


def alertmanager_silence_url(external: str, labels: Mapping[str, str]) -> str | None:
    """The Alertmanager UI page that creates a silence pre-filled with `labels`."""
    if not external or not labels:
        return None
    # Cleaned first: quote() cannot encode the lone surrogates a JSON body may carry.
    filter_ = clean_text(matchers(dict(sorted(labels.items()))))
    return f"{external.rstrip('/')}/#/silences/new?filter={quote(filter_, safe='')}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _describe(group_labels: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """Alertmanager's default title text: group label values, then the other common ones in parentheses."""
    text = " ".join(value for _, value in sorted(group_labels.items()))
    rest = [value for name, value in sorted(labels.items()) if name not in group_labels]
    if rest:
        text += f" ({' '.join(rest)})"
    return text.strip()


def _member_lines(members: Sequence[_Member], truncated: int) -> str:
    lines = [f"- [{'firing' if m.firing else 'resolved'}] {m.title}" for m in members[:_MAX_MEMBER_LINES]]
    hidden = len(members) - len(lines) + truncated
    if hidden:
        lines.append(f"- … and {hidden} more")
    return "\n".join(lines)


def _common(maps: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The key/value pairs every mapping shares."""
    iterator = iter(maps)
    first = next(iterator, None)
    if first is None:
        return {}
    common = dict(first)
    for mapping in iterator:
        common = {k: v for k, v in common.items() if mapping.get(k) == v}
    return common


def _first(*values: str | None) -> str | None:
    for value in values:
        if value and value.strip():
            return value.strip()
    return None


def _no_earlier(when: datetime, floor: datetime | None) -> datetime:
    return when if floor is None or when >= floor else floor


def _no_extras(alert: dict[str, Any], path: str) -> tuple[Links, dict[str, str]]:
    return [], {}


def _no_group_text(body: dict[str, Any]) -> tuple[str | None, str | None]:
    return None, None


ALERTMANAGER = Flavor(
    source="alertmanager",
    fallback_title="Alertmanager alert",
    silence_url=alertmanager_silence_url,
    extras=_no_extras,
    group_text=_no_group_text,
)
