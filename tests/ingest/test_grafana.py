"""Grafana adapters: unified alerting (version 1), legacy alerting, and the `grafana` kind's dispatch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sentinel_app.ingest import NormalizedAlert, PayloadError, parse
from tests.ingest import NOW, assert_contract, at, load

GRAFANA = "https://grafana.example.com"
MEMORY_LABELS = {
    "alertname": "High memory usage",
    "grafana_folder": "Infrastructure",
    "severity": "warning",
    "team": "blue",
    "zone": "us-1",
}
MEMORY_ANNOTATIONS = {
    "description": "Memory usage on the us-1 web tier has been above 90% for 5 minutes.",
    "runbook_url": "https://runbooks.example.com/memory",
    "summary": "Memory usage above 90% in zone us-1",
}


def _memory_links(payload: dict[str, Any], *, image: bool) -> list[dict[str, str]]:
    alert = payload["alerts"][0]
    links = [
        {"kind": "generator", "url": alert["generatorURL"], "title": "Alert source"},
        {"kind": "runbook", "url": "https://runbooks.example.com/memory", "title": "Runbook"},
        {"kind": "silence", "url": alert["silenceURL"], "title": "Silence"},
        {"kind": "dashboard", "url": alert["dashboardURL"], "title": "Dashboard"},
        {"kind": "panel", "url": alert["panelURL"], "title": "Panel"},
    ]
    if image:
        links.append({"kind": "image", "url": alert["imageURL"], "title": "Panel image"})
    return links


@pytest.mark.parametrize("kind", ["grafana_alerting", "grafana"])
def test_unified_firing_payload_gives_one_alert_per_fingerprint(kind: str) -> None:
    payload = load("grafana-alerting-firing")
    alerts = parse(kind, payload, now=NOW)
    cpu = payload["alerts"][1]
    assert alerts == [
        NormalizedAlert(
            action="trigger",
            dedup_key="c6eadffa33fcdf37",
            title="Memory usage above 90% in zone us-1",
            message="Memory usage on the us-1 web tier has been above 90% for 5 minutes.",
            severity="warning",
            labels=MEMORY_LABELS,
            annotations={
                **MEMORY_ANNOTATIONS,
                "value_string": "[ var='B' labels={zone=us-1} value=93.41 ], [ var='C' labels={zone=us-1} value=1 ]",
                "values": '{"B": 93.41, "C": 1}',
            },
            links=_memory_links(payload, image=True),
            source="grafana",
            fingerprint="c6eadffa33fcdf37",
            fired_at=at("2026-11-23T07:51:03.157076+00:00"),  # +02:00 converted to UTC
            ended_at=None,
            raw=payload["alerts"][0],
        ),
        NormalizedAlert(
            action="trigger",
            dedup_key="bc97ff14869b13e3",
            title="High CPU usage",  # no summary: the alert name
            message="CPU usage on the eu-1 web tier has been above 85% for 10 minutes.",
            severity="error",  # no severity label: the default
            labels={
                "alertname": "High CPU usage",
                "grafana_folder": "Infrastructure",
                "team": "blue",
                "zone": "eu-1",
            },
            annotations={
                "description": "CPU usage on the eu-1 web tier has been above 85% for 10 minutes.",
                "value_string": "[ var='B' labels={zone=eu-1} value=88.2 ], [ var='C' labels={zone=eu-1} value=1 ]",
                "values": '{"B": 88.2, "C": 1}',
            },
            # Empty dashboardURL/panelURL give no links.
            links=[
                {"kind": "generator", "url": cpu["generatorURL"], "title": "Alert source"},
                {"kind": "silence", "url": cpu["silenceURL"], "title": "Silence"},
            ],
            source="grafana",
            fingerprint="bc97ff14869b13e3",
            fired_at=at("2026-11-23T07:56:03.157076+00:00"),
            ended_at=None,
            raw=cpu,
        ),
    ]
    for alert in alerts:
        assert_contract(alert)


def test_unified_resolved_payload() -> None:
    payload = load("grafana-alerting-resolved")
    assert parse("grafana_alerting", payload, now=NOW) == [
        NormalizedAlert(
            action="resolve",
            dedup_key="c6eadffa33fcdf37",
            title="Memory usage above 90% in zone us-1",
            message="Memory usage on the us-1 web tier has been above 90% for 5 minutes.",
            severity="warning",
            labels=MEMORY_LABELS,
            annotations=MEMORY_ANNOTATIONS,  # null values and an empty valueString add nothing
            links=_memory_links(payload, image=False),
            source="grafana",
            fingerprint="c6eadffa33fcdf37",
            fired_at=at("2026-11-23T07:51:03.157076+00:00"),
            ended_at=at("2026-11-23T08:21:03.157076+00:00"),
            raw=payload["alerts"][0],
        )
    ]


def test_unified_group_mode_uses_grafanas_title_and_message() -> None:
    payload = load("grafana-alerting-firing")
    alerts = parse("grafana_alerting", payload, grouping={"mode": "group"}, now=NOW)
    memory, cpu = payload["alerts"]
    assert alerts == [
        NormalizedAlert(
            action="trigger",
            dedup_key=payload["groupKey"],
            title="[FIRING:2] blue (Infrastructure)",
            message=payload["message"].strip(),
            severity="error",  # the CPU alert has no severity label, which counts as error
            labels={"grafana_folder": "Infrastructure", "team": "blue"},
            annotations={},
            links=[
                {
                    "kind": "silence",
                    "url": f"{GRAFANA}/alerting/silence/new?alertmanager=grafana&matcher=team%3Dblue",
                    "title": "Silence",
                },
                *[link for link in _memory_links(payload, image=True) if link["kind"] != "silence"],
                {"kind": "generator", "url": cpu["generatorURL"], "title": "Alert source"},
            ],
            source="grafana",
            fingerprint=None,
            fired_at=at("2026-11-23T07:51:03.157076+00:00"),
            ended_at=None,
            raw=payload,
        )
    ]
    assert memory["fingerprint"] != cpu["fingerprint"]


def test_unified_group_mode_resolved() -> None:
    payload = load("grafana-alerting-resolved")
    [alert] = parse("grafana", payload, grouping={"mode": "group"}, now=NOW)
    assert alert.action == "resolve"
    assert alert.title == "[RESOLVED] blue (High memory usage Infrastructure warning us-1)"
    # Common annotations carry a description, which beats Grafana's rendered message.
    assert alert.message == MEMORY_ANNOTATIONS["description"]
    assert alert.ended_at == at("2026-11-23T08:21:03.157076+00:00")


def test_legacy_alerting() -> None:
    payload = load("grafana-legacy-alerting")
    assert parse("grafana", payload, now=NOW) == [
        NormalizedAlert(
            action="trigger",
            dedup_key="grafana:org:1:rule:7",
            title="[Alerting] Disk usage alert",
            message="Disk usage on db-1 is above 95%. Free space before the nightly backup runs.",
            severity="critical",
            labels={"severity": "critical", "team": "storage", "alertname": "Disk usage alert"},
            annotations={
                "state": "alerting",
                "value_string": 'disk_used_percent{mount="/var"}=97.3, disk_used_percent{mount="/"}=95',
            },
            links=[
                {"kind": "generator", "url": payload["ruleUrl"], "title": "Alert rule"},
                {"kind": "image", "url": payload["imageUrl"], "title": "Panel image"},
            ],
            source="grafana",
            fingerprint=None,
            fired_at=NOW,  # legacy payloads carry no time
            ended_at=None,
            raw=payload,
        )
    ]


def test_legacy_ok_resolves_the_same_key() -> None:
    payload = load("grafana-legacy-ok")
    assert parse("grafana", payload, now=NOW) == [
        NormalizedAlert(
            action="resolve",
            dedup_key="grafana:org:1:rule:7",
            title="[OK] Disk usage alert",
            message="Disk usage on db-1 is above 95%. Free space before the nightly backup runs.",
            severity="critical",
            labels={"severity": "critical", "team": "storage", "alertname": "Disk usage alert"},
            annotations={"state": "ok"},
            links=[{"kind": "generator", "url": payload["ruleUrl"], "title": "Alert rule"}],
            source="grafana",
            fingerprint=None,
            fired_at=None,
            ended_at=NOW,
            raw=payload,
        )
    ]


@pytest.mark.parametrize(
    ("state", "action"), [("alerting", "trigger"), ("no_data", "trigger"), ("ok", "resolve")]
)
def test_legacy_states_that_act(state: str, action: str) -> None:
    payload = load("grafana-legacy-alerting")
    payload["state"] = state
    [alert] = parse("grafana", payload, now=NOW)
    assert alert.action == action
    assert alert.annotations["state"] == state


@pytest.mark.parametrize("state", ["paused", "pending"])
def test_legacy_paused_and_pending_give_no_alerts(state: str) -> None:
    payload = load("grafana-legacy-alerting")
    payload["state"] = state
    assert parse("grafana", payload, now=NOW) == []


def test_legacy_dedup_key_falls_back_to_rule_name_and_includes_the_org() -> None:
    payload = load("grafana-legacy-alerting")
    del payload["ruleId"]
    payload["orgId"] = 3
    assert parse("grafana", payload, now=NOW)[0].dedup_key == "grafana:org:3:rule-name:Disk usage alert"
    del payload["orgId"]
    assert parse("grafana", payload, now=NOW)[0].dedup_key == "grafana:org:1:rule-name:Disk usage alert"


def test_legacy_minimal_payload() -> None:
    [alert] = parse("grafana", {"ruleId": 2, "state": "no_data"}, now=NOW)
    assert (alert.title, alert.dedup_key, alert.labels, alert.links) == (
        "Grafana alert",
        "grafana:org:1:rule:2",
        {},
        [],
    )


def test_grafana_alerting_kind_does_not_accept_legacy_payloads() -> None:
    with pytest.raises(PayloadError) as caught:
        parse("grafana_alerting", load("grafana-legacy-alerting"), now=NOW)
    assert caught.value.field == "alerts"


def _legacy(**changes: Any) -> dict[str, Any]:
    payload = load("grafana-legacy-alerting")
    for key, value in changes.items():
        if value is _DROP:
            del payload[key]
        else:
            payload[key] = value
    return payload


def _unified(index: int, **changes: Any) -> dict[str, Any]:
    payload = load("grafana-alerting-firing")
    payload["alerts"][index].update(changes)
    return payload


_DROP = object()


@pytest.mark.parametrize(
    ("kind", "payload", "field"),
    [
        ("grafana", {"status": "firing"}, "alerts"),
        ("grafana", [], "body"),
        ("grafana", _legacy(state=_DROP, ruleName="x"), "state"),
        ("grafana", _legacy(state="firing"), "state"),
        ("grafana", _legacy(state=3), "state"),
        ("grafana", _legacy(ruleId=_DROP, ruleName=_DROP), "ruleName"),
        ("grafana", _legacy(ruleId=_DROP, ruleName="  "), "ruleName"),
        ("grafana", _legacy(ruleId=1.5), "ruleId"),
        ("grafana", _legacy(ruleName=["r"]), "ruleName"),
        ("grafana", _legacy(orgId=True), "orgId"),
        ("grafana", _legacy(dashboardId="12"), "dashboardId"),
        ("grafana", _legacy(panelId=[4]), "panelId"),
        ("grafana", _legacy(title=1), "title"),
        ("grafana", _legacy(message={}), "message"),
        ("grafana", _legacy(ruleUrl=7), "ruleUrl"),
        ("grafana", _legacy(imageUrl=7), "imageUrl"),
        ("grafana", _legacy(tags=["a"]), "tags"),
        ("grafana", _legacy(tags={"a": [1]}), "tags.a"),
        ("grafana", _legacy(evalMatches={}), "evalMatches"),
        ("grafana", _legacy(evalMatches=[1]), "evalMatches[0]"),
        ("grafana", _legacy(evalMatches=[{"metric": 1}]), "evalMatches[0].metric"),
        ("grafana", _legacy(evalMatches=[{"value": "high"}]), "evalMatches[0].value"),
        ("grafana", _legacy(evalMatches=[{"tags": "x"}]), "evalMatches[0].tags"),
        ("grafana", _legacy(state="paused", tags=3), "tags"),  # paused payloads are still checked
        ("grafana_alerting", _unified(0, silenceURL=1), "alerts[0].silenceURL"),
        ("grafana_alerting", _unified(1, dashboardURL=False), "alerts[1].dashboardURL"),
        ("grafana_alerting", _unified(0, panelURL=[]), "alerts[0].panelURL"),
        ("grafana_alerting", _unified(0, imageURL={}), "alerts[0].imageURL"),
        ("grafana_alerting", _unified(1, values=[1]), "alerts[1].values"),
        ("grafana_alerting", _unified(0, valueString=2), "alerts[0].valueString"),
        ("grafana_alerting", _unified(0, status="alerting"), "alerts[0].status"),
        ("grafana_alerting", {**load("grafana-alerting-firing"), "title": 1}, "title"),
        ("grafana_alerting", {**load("grafana-alerting-firing"), "message": []}, "message"),
        ("grafana_alerting", {**load("grafana-alerting-firing"), "state": {}}, "state"),
        ("grafana_alerting", {**load("grafana-alerting-firing"), "orgId": 1.5}, "orgId"),
    ],
)
def test_invalid_payloads_name_the_field(kind: str, payload: Any, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(kind, copy.deepcopy(payload), now=NOW)
    assert caught.value.field == field
