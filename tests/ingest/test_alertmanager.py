"""Alertmanager adapter: captured 0.25 payloads, group mode, links and validation paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sentinel_app.ingest import NormalizedAlert, PayloadError, parse, validate_grouping
from sentinel_app.ingest.alertmanager import Grouping
from sentinel_app.ingest.normalized import stable_hash
from tests.ingest import NOW, assert_contract, at, load

AM_SILENCE = (
    "http://vm:9093/#/silences/new?filter="
    "%7Balertname%3D%22DiskFull%22%2C%20instance%3D%22db-1%22%2C%20severity%3D%22critical%22%7D"
)
DISK_LABELS = {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"}
DISK_LINKS = [
    {"kind": "generator", "url": "http://prom.example/graph", "title": "Alert source"},
    {"kind": "silence", "url": AM_SILENCE, "title": "Silence"},
]
ERROR_RATE_GENERATOR = (
    "http://prometheus.example.com:9090/graph?g0.expr=job%3Aerror_ratio%3Arate5m+%3E+0.05&g0.tab=1"
)


def test_firing_alert_from_alertmanager_0_25() -> None:
    payload = load("alertmanager-0.25-firing")
    alerts = parse("alertmanager", payload, now=NOW)
    assert alerts == [
        NormalizedAlert(
            action="trigger",
            dedup_key="9556f853bb27ef8b",
            title="Disk full on db-1",
            message="",
            severity="critical",
            labels=DISK_LABELS,
            annotations={"summary": "Disk full on db-1"},
            links=DISK_LINKS,
            source="alertmanager",
            fingerprint="9556f853bb27ef8b",
            # Nanoseconds are cut to microseconds; the zero endsAt means "not set".
            fired_at=at("2026-11-23T00:35:32.211027+00:00"),
            ended_at=None,
            raw=payload["alerts"][0],
        )
    ]
    assert_contract(alerts[0])


def test_resolved_alert_from_alertmanager_0_25() -> None:
    payload = load("alertmanager-0.25-resolved")
    alerts = parse("alertmanager", payload, now=NOW)
    assert alerts == [
        NormalizedAlert(
            action="resolve",
            dedup_key="9556f853bb27ef8b",
            title="Disk full on db-1",
            message="",
            severity="critical",
            labels=DISK_LABELS,
            annotations={"summary": "Disk full on db-1"},
            links=DISK_LINKS,
            source="alertmanager",
            fingerprint="9556f853bb27ef8b",
            fired_at=at("2026-11-23T00:35:32.211027+00:00"),
            ended_at=at("2026-11-23T00:35:33+00:00"),
            raw=payload["alerts"][0],
        )
    ]


def test_firing_and_resolved_share_the_dedup_key() -> None:
    firing = parse("alertmanager", load("alertmanager-0.25-firing"), now=NOW)
    resolved = parse("alertmanager", load("alertmanager-0.25-resolved"), now=NOW)
    assert firing[0].dedup_key == resolved[0].dedup_key


def test_group_mode_gives_one_alert_per_payload_keyed_by_group_key() -> None:
    payload = load("alertmanager-0.25-firing")
    alerts = parse("alertmanager", payload, grouping={"mode": "group"}, now=NOW)
    assert alerts == [
        NormalizedAlert(
            action="trigger",
            dedup_key='{}:{alertname="DiskFull"}',
            title="[FIRING:1] Disk full on db-1",
            message="- [firing] Disk full on db-1",
            severity="critical",
            labels=DISK_LABELS,
            annotations={"summary": "Disk full on db-1"},
            links=[
                {
                    "kind": "silence",
                    "url": "http://vm:9093/#/silences/new?filter=%7Balertname%3D%22DiskFull%22%7D",
                    "title": "Silence",
                },
                {"kind": "generator", "url": "http://prom.example/graph", "title": "Alert source"},
            ],
            source="alertmanager",
            fingerprint=None,
            fired_at=at("2026-11-23T00:35:32.211027+00:00"),
            ended_at=None,
            raw=payload,
        )
    ]
    resolved = parse("alertmanager", load("alertmanager-0.25-resolved"), grouping={"mode": "group"}, now=NOW)
    assert resolved[0].action == "resolve"
    assert resolved[0].dedup_key == alerts[0].dedup_key
    assert resolved[0].title == "[RESOLVED] Disk full on db-1"
    assert resolved[0].ended_at == at("2026-11-23T00:35:33+00:00")


def test_group_mode_with_three_alerts() -> None:
    payload = load("alertmanager-group-firing")
    alerts = parse("alertmanager", payload, grouping={"mode": "group"}, now=NOW)
    assert alerts == [
        NormalizedAlert(
            action="trigger",
            dedup_key='{}/{team="payments"}:{alertname="HighErrorRate", service="checkout"}',
            # Alertmanager's default title: group label values, then the other common labels.
            title="[FIRING:2] HighErrorRate checkout (api payments)",
            message=(
                "- [firing] High 5xx rate on api-1:8080\n"
                "- [firing] High 5xx rate on api-2:8080\n"
                "- [resolved] High 5xx rate on api-3:8080"
            ),
            severity="critical",  # the most urgent firing member
            labels={"alertname": "HighErrorRate", "job": "api", "service": "checkout", "team": "payments"},
            annotations={"runbook_url": "https://runbooks.example.com/high-error-rate"},
            links=[
                {
                    "kind": "runbook",
                    "url": "https://runbooks.example.com/high-error-rate",
                    "title": "Runbook",
                },
                {
                    "kind": "silence",
                    "url": "http://alertmanager.example.com:9093/#/silences/new?filter="
                    "%7Balertname%3D%22HighErrorRate%22%2C%20service%3D%22checkout%22%7D",
                    "title": "Silence",
                },
                {"kind": "generator", "url": ERROR_RATE_GENERATOR, "title": "Alert source"},
            ],
            source="alertmanager",
            fingerprint=None,
            fired_at=at("2026-11-23T09:40:00+00:00"),
            ended_at=None,
            raw=payload,
        )
    ]


def test_fingerprint_mode_gives_one_alert_per_member() -> None:
    payload = load("alertmanager-group-firing")
    alerts = parse("alertmanager", payload, grouping={"mode": "fingerprint"}, now=NOW)
    assert [(a.action, a.dedup_key, a.severity) for a in alerts] == [
        ("trigger", "1f0c7a5de4b3a201", "warning"),
        ("trigger", "8c2e91b07f5d3a44", "critical"),
        ("resolve", "d41e6b0a9c8f7702", "warning"),
    ]
    first = alerts[0]
    assert first.title == "High 5xx rate on api-1:8080"
    assert first.message == "5xx responses are 7.2% of all requests over the last 5 minutes."
    # A firing alert's endsAt is Prometheus' expiry estimate, not a resolution time.
    assert first.ended_at is None
    assert first.fired_at == at("2026-11-23T10:02:15.123+00:00")
    assert [link["kind"] for link in first.links] == ["generator", "runbook", "silence"]
    assert alerts[2].ended_at == at("2026-11-23T10:00:00+00:00")
    for alert in alerts:
        assert_contract(alert)


def test_group_by_labels_partitions_the_payload() -> None:
    payload = load("alertmanager-group-firing")
    alerts = parse("alertmanager", payload, grouping={"mode": "group", "group_by": ["severity"]}, now=NOW)
    assert [(a.dedup_key, a.action, a.title) for a in alerts] == [
        ('group:{severity="warning"}', "trigger", "[FIRING:1] warning (HighErrorRate api checkout payments)"),
        ('group:{severity="critical"}', "trigger", "[FIRING:1] High 5xx rate on api-2:8080"),
    ]
    warning = alerts[0]
    assert warning.labels == {
        "alertname": "HighErrorRate",
        "job": "api",
        "service": "checkout",
        "severity": "warning",
        "team": "payments",
    }
    assert [m["fingerprint"] for m in warning.raw["alerts"]] == ["1f0c7a5de4b3a201", "d41e6b0a9c8f7702"]
    # A partition whose members all resolved resolves on its own.
    payload["alerts"][1]["status"] = "resolved"
    critical = parse("alertmanager", payload, grouping={"mode": "group", "group_by": ["severity"]}, now=NOW)[
        1
    ]
    assert critical.action == "resolve"
    assert critical.title == "[RESOLVED] High 5xx rate on api-2:8080"


def test_group_status_follows_the_payload_status() -> None:
    payload = load("alertmanager-group-firing")
    payload["status"] = "resolved"
    for alert in payload["alerts"]:
        alert["status"] = "resolved"
    [alert] = parse("alertmanager", payload, grouping={"mode": "group"}, now=NOW)
    assert alert.action == "resolve"
    assert alert.title == "[RESOLVED] HighErrorRate checkout (api payments)"
    assert alert.severity == "critical"
    assert alert.ended_at == at("2026-11-23T10:10:15.123+00:00")


def test_group_without_group_key_hashes_receiver_and_group_labels() -> None:
    payload = load("alertmanager-0.25-firing")
    del payload["groupKey"]
    [alert] = parse("alertmanager", payload, grouping={"mode": "group"}, now=NOW)
    assert alert.dedup_key == stable_hash({"receiver": "hook", "groupLabels": {"alertname": "DiskFull"}})


def test_truncated_alerts_are_reported_in_group_mode() -> None:
    payload = load("alertmanager-group-firing")
    payload["truncatedAlerts"] = 7
    [alert] = parse("alertmanager", payload, grouping={"mode": "group"}, now=NOW)
    assert alert.annotations["truncated_alerts"] == "7"
    assert alert.message.endswith("- … and 7 more")


def test_missing_fingerprint_falls_back_to_a_stable_label_hash() -> None:
    payload = load("alertmanager-0.25-firing")
    del payload["alerts"][0]["fingerprint"]
    [alert] = parse("alertmanager", payload, now=NOW)
    assert alert.fingerprint is None
    assert alert.dedup_key == stable_hash(DISK_LABELS)
    reordered = load("alertmanager-0.25-firing")
    del reordered["alerts"][0]["fingerprint"]
    reordered["alerts"][0]["labels"] = dict(reversed(DISK_LABELS.items()))
    assert parse("alertmanager", reordered, now=NOW)[0].dedup_key == alert.dedup_key


@pytest.mark.parametrize(
    ("labels", "annotations", "title", "message", "severity"),
    [
        ({"alertname": "A"}, {"summary": "S", "description": "D"}, "S", "D", "error"),
        ({"alertname": "A", "severity": "page"}, {"message": "M"}, "A", "M", "critical"),
        ({"priority": "P3"}, {}, "Alertmanager alert", "", "warning"),
        ({"severity": "bogus", "priority": "low"}, {"summary": "  "}, "Alertmanager alert", "", "info"),
    ],
)
def test_title_message_and_severity_fallbacks(
    labels: dict[str, str], annotations: dict[str, str], title: str, message: str, severity: str
) -> None:
    payload = load("alertmanager-0.25-firing")
    payload["alerts"][0].update(labels=labels, annotations=annotations)
    [alert] = parse("alertmanager", payload, now=NOW)
    assert (alert.title, alert.message, alert.severity) == (title, message, severity)


def test_annotation_links_and_matcher_escaping() -> None:
    payload = load("alertmanager-0.25-firing")
    payload["alerts"][0]["labels"] = {"alertname": "X", "path": 'C:\\tmp "a"'}
    payload["alerts"][0]["annotations"] = {
        "runbook": "https://wiki.example.com/x",
        "__dashboardUrl__": "https://grafana.example.com/d/x",
        "panel_url": "javascript:alert(1)",  # never rendered as a link
    }
    [alert] = parse("alertmanager", payload, now=NOW)
    assert [(link["kind"], link["url"]) for link in alert.links] == [
        ("generator", "http://prom.example/graph"),
        ("runbook", "https://wiki.example.com/x"),
        ("dashboard", "https://grafana.example.com/d/x"),
        (
            "silence",
            "http://vm:9093/#/silences/new?filter="
            "%7Balertname%3D%22X%22%2C%20path%3D%22C%3A%5C%5Ctmp%20%5C%22a%5C%22%22%7D",
        ),
    ]


def test_no_silence_link_without_external_url() -> None:
    payload = load("alertmanager-0.25-firing")
    payload["externalURL"] = ""
    [alert] = parse("alertmanager", payload, now=NOW)
    assert [link["kind"] for link in alert.links] == ["generator"]


def test_future_start_is_clamped_to_now_and_missing_start_is_now() -> None:
    payload = load("alertmanager-0.25-firing")
    payload["alerts"][0]["startsAt"] = "2030-01-01T00:00:00Z"
    assert parse("alertmanager", payload, now=NOW)[0].fired_at == NOW
    del payload["alerts"][0]["startsAt"]
    assert parse("alertmanager", payload, now=NOW)[0].fired_at == NOW


def test_empty_alert_list_gives_no_alerts() -> None:
    payload = load("alertmanager-0.25-firing")
    payload["alerts"] = []
    assert parse("alertmanager", payload, now=NOW) == []
    assert parse("alertmanager", payload, grouping={"mode": "group"}, now=NOW) == []


def test_non_string_label_values_become_strings() -> None:
    payload = load("alertmanager-0.25-firing")
    payload["alerts"][0]["labels"] = {
        "alertname": "X",
        "shard": 3,
        "primary": True,
        "ratio": 0.5,
        "gone": None,
    }
    assert parse("alertmanager", payload, now=NOW)[0].labels == {
        "alertname": "X",
        "shard": "3",
        "primary": "true",
        "ratio": "0.5",
    }


def _without(path: list[str | int]) -> Any:
    payload = load("alertmanager-0.25-firing")
    target = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return payload


def _with(path: list[str | int], value: Any) -> Any:
    payload = load("alertmanager-0.25-firing")
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ("firing", "body"),
        (None, "body"),
        (_without(["alerts"]), "alerts"),
        (_with(["alerts"], {"0": {}}), "alerts"),
        (_with(["alerts"], ["x"]), "alerts[0]"),
        (_without(["alerts", 0, "status"]), "alerts[0].status"),
        (_with(["alerts", 0, "status"], "pending"), "alerts[0].status"),
        (_with(["alerts", 0, "status"], 1), "alerts[0].status"),
        (_with(["alerts", 0, "labels"], ["a"]), "alerts[0].labels"),
        (_with(["alerts", 0, "labels"], {"team": {"name": "x"}}), "alerts[0].labels.team"),
        (_with(["alerts", 0, "annotations"], "text"), "alerts[0].annotations"),
        (_with(["alerts", 0, "startsAt"], "yesterday"), "alerts[0].startsAt"),
        (_with(["alerts", 0, "startsAt"], 1700000000), "alerts[0].startsAt"),
        (_with(["alerts", 0, "endsAt"], "2026-13-01T00:00:00Z"), "alerts[0].endsAt"),
        (_with(["alerts", 0, "generatorURL"], 5), "alerts[0].generatorURL"),
        (_with(["alerts", 0, "fingerprint"], ["f"]), "alerts[0].fingerprint"),
        (_with(["status"], "unknown"), "status"),
        (_with(["groupLabels"], "alertname"), "groupLabels"),
        (_with(["commonLabels"], [1]), "commonLabels"),
        (_with(["commonAnnotations"], 3), "commonAnnotations"),
        (_with(["externalURL"], False), "externalURL"),
        (_with(["groupKey"], {}), "groupKey"),
        (_with(["truncatedAlerts"], "0"), "truncatedAlerts"),
        (_with(["truncatedAlerts"], -1), "truncatedAlerts"),
        (_with(["alerts"], [load("alertmanager-0.25-firing")["alerts"][0]] * 1001), "alerts"),
    ],
)
def test_invalid_payloads_name_the_field(payload: Any, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse("alertmanager", copy.deepcopy(payload), now=NOW)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_one_thousand_alerts_are_accepted() -> None:
    payload = _with(["alerts"], [load("alertmanager-0.25-firing")["alerts"][0]] * 1000)
    assert len(parse("alertmanager", payload, now=NOW)) == 1000


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        (None, Grouping("fingerprint")),
        ({}, Grouping("fingerprint")),
        ({"mode": "fingerprint"}, Grouping("fingerprint")),
        ({"mode": "group"}, Grouping("group")),
        ({"mode": "group", "group_by": ["a", "b", "a"]}, Grouping("group", ("a", "b"))),
    ],
)
def test_grouping_settings(grouping: dict[str, Any] | None, expected: Grouping) -> None:
    assert validate_grouping(grouping) == expected


@pytest.mark.parametrize(
    ("grouping", "field"),
    [
        ({"mode": "cluster"}, "grouping.mode"),
        ({"mode": "group", "group_by": "alertname"}, "grouping.group_by"),
        ({"mode": "group", "group_by": []}, "grouping.group_by"),
        ({"mode": "group", "group_by": ["", "x"]}, "grouping.group_by"),
        (["group"], "grouping"),
    ],
)
def test_invalid_grouping_settings(grouping: Any, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse("alertmanager", load("alertmanager-0.25-firing"), grouping=grouping, now=NOW)
    assert caught.value.field == field
