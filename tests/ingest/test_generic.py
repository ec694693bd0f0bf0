"""Generic webhook (strict and lenient) and Grafana OnCall formatted webhook adapters."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sentinel_app.ingest import NormalizedAlert, PayloadError, parse
from sentinel_app.ingest.normalized import stable_hash
from tests.ingest import NOW, assert_contract, at, load


def test_strict_firing() -> None:
    payload = load("webhook-firing")
    alerts = parse("webhook", payload, now=NOW)
    assert alerts == [
        NormalizedAlert(
            action="trigger",
            dedup_key="checkout-latency-p99",
            title="Checkout latency p99 above 2 s",
            message="p99 latency of POST /checkout has been 2.8 s for 10 minutes.",
            severity="error",  # "P2"
            labels={"service": "checkout", "env": "prod", "replicas": "3", "canary": "false"},
            annotations={"owner": "payments", "thresholds": '{"critical": 2, "warning": 1.5}'},
            links=[
                {"kind": "link", "url": "https://dashboards.example.com/d/checkout", "title": ""},
                {
                    "kind": "runbook",
                    "url": "https://runbooks.example.com/checkout-latency",
                    "title": "Runbook",
                },
            ],
            source="webhook",
            fingerprint=None,
            fired_at=at("2026-11-23T09:15:00+00:00"),
            ended_at=None,
            raw=payload,
        )
    ]
    assert_contract(alerts[0])


def test_strict_resolved() -> None:
    payload = load("webhook-resolved")
    assert parse("webhook", payload, now=NOW) == [
        NormalizedAlert(
            action="resolve",
            dedup_key="checkout-latency-p99",
            title="Checkout latency p99 above 2 s",
            message="",
            severity="error",
            labels={},
            annotations={},
            links=[],
            source="webhook",
            fingerprint=None,
            fired_at=None,
            ended_at=NOW,
            raw=payload,
        )
    ]


def test_strict_minimal_and_default_dedup_key() -> None:
    [alert] = parse("webhook", {"title": "Disk full", "labels": {"host": "db-1"}}, now=NOW)
    assert alert.action == "trigger"
    assert alert.fired_at == NOW
    assert alert.dedup_key == stable_hash({"title": "Disk full", "labels": {"host": "db-1"}})
    # Same title and labels, in any order, with status resolved: the same alert.
    [resolved] = parse(
        "webhook",
        {"status": "ok", "labels": {"host": "db-1"}, "title": "Disk full", "dedup_key": ""},
        now=NOW,
    )
    assert (resolved.action, resolved.dedup_key) == ("resolve", alert.dedup_key)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("firing", "trigger"),
        ("Trigger", "trigger"),
        ("triggered", "trigger"),
        ("resolved", "resolve"),
        ("resolve", "resolve"),
        ("OK", "resolve"),
        ("acknowledge", "acknowledge"),
        ("acknowledged", "acknowledge"),
    ],
)
def test_strict_status_spellings(status: str, action: str) -> None:
    assert parse("webhook", {"title": "t", "status": status}, now=NOW)[0].action == action


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("CRITICAL", "critical"), ("sev-1", "critical"), ("warn", "warning"), ("low", "info"), (None, "error")],
)
def test_strict_severity_aliases(severity: str | None, expected: str) -> None:
    assert parse("webhook", {"title": "t", "severity": severity}, now=NOW)[0].severity == expected


def test_strict_fired_at_accepts_unix_seconds_and_milliseconds() -> None:
    seconds = parse("webhook", {"title": "t", "fired_at": 1795424400}, now=NOW)[0].fired_at
    millis = parse("webhook", {"title": "t", "fired_at": 1795424400123}, now=NOW)[0].fired_at
    assert seconds == at("2026-11-23T09:00:00+00:00")
    assert millis == at("2026-11-23T09:00:00.123+00:00")


def test_title_is_collapsed_and_cut_to_500_characters() -> None:
    [alert] = parse("webhook", {"title": "a\n  b " + "c" * 600}, now=NOW)
    assert alert.title.startswith("a b ccc")
    assert len(alert.title) == 500 and alert.title.endswith("…")


def test_long_dedup_keys_are_hashed_stably() -> None:
    key = "k" * 300
    [alert] = parse("webhook", {"title": "t", "dedup_key": key}, now=NOW)
    assert alert.dedup_key.startswith("sha256:") and len(alert.dedup_key) == 71
    assert parse("webhook", {"title": "t", "dedup_key": key}, now=NOW)[0].dedup_key == alert.dedup_key


def _strict(**changes: Any) -> dict[str, Any]:
    payload = load("webhook-firing")
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([{"title": "t"}], "body"),
        ("down", "body"),
        (3.5, "body"),
        ({}, "title"),
        (_strict(title=""), "title"),
        (_strict(title="   "), "title"),
        (_strict(title=5), "title"),
        (_strict(message=["m"]), "message"),
        (_strict(severity="urgent"), "severity"),
        (_strict(severity=1), "severity"),
        (_strict(labels="a=b"), "labels"),
        (_strict(labels={"a": {"b": "c"}}), "labels.a"),
        (_strict(labels={"a": ["b"]}), "labels.a"),
        (_strict(annotations=[]), "annotations"),
        (_strict(dedup_key=12), "dedup_key"),
        (_strict(status="exploded"), "status"),
        (_strict(status=True), "status"),
        (_strict(links="https://x.example.com"), "links"),
        (_strict(links=[3]), "links[0]"),
        (_strict(links=["not a url"]), "links[0]"),
        (_strict(links=["https://ok.example.com", "javascript:alert(1)"]), "links[1]"),
        (_strict(links=[{"title": "t"}]), "links[0].url"),
        (_strict(links=[{"url": "ftp://x.example.com"}]), "links[0].url"),
        (_strict(links=[{"url": "https://x.example.com", "kind": "video"}]), "links[0].kind"),
        (_strict(links=[{"url": "https://x.example.com", "title": 1}]), "links[0].title"),
        (_strict(fired_at="soon"), "fired_at"),
        (_strict(fired_at="2026-02-30T00:00:00Z"), "fired_at"),
        (_strict(fired_at=True), "fired_at"),
        (_strict(fired_at=-5), "fired_at"),
        (_strict(fired_at=float("inf")), "fired_at"),
        (_strict(fired_at=[2026]), "fired_at"),
    ],
)
def test_strict_invalid_payloads_name_the_field(payload: Any, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse("webhook", copy.deepcopy(payload), now=NOW)
    assert caught.value.field == field


def test_lenient_reads_whatever_it_can() -> None:
    payload = load("webhook-lenient")
    assert parse("webhook", payload, lenient=True, now=NOW) == [
        NormalizedAlert(
            action="trigger",
            dedup_key="48213",
            title="Backup job nightly-pg failed",
            message="pg_dump exited with status 1 after 00:12:31.",
            severity="critical",  # priority "high"
            labels={"job": "nightly-pg", "attempt": "2", "targets": '["db-1", "db-2"]'},
            annotations={},
            links=[{"kind": "link", "url": "https://ci.example.com/jobs/nightly-pg/48213", "title": "Link"}],
            source="webhook",
            fingerprint=None,
            fired_at=at("2026-11-23T09:00:00+00:00"),
            ended_at=None,
            raw=payload,
        )
    ]


def test_lenient_reads_the_strict_format_too() -> None:
    [alert] = parse("webhook", load("webhook-firing"), lenient=True, now=NOW)
    assert (alert.title, alert.dedup_key, alert.severity) == (
        "Checkout latency p99 above 2 s",
        "checkout-latency-p99",
        "error",
    )


@pytest.mark.parametrize(
    ("payload", "title", "message"),
    [
        ({}, "Webhook alert", ""),
        ({"title": "  ", "name": "N", "message": "M"}, "N", "M"),
        ({"alertname": 42}, "42", ""),
        ({"subject": "S", "description": "D"}, "S", "D"),
        ({"message": "only a message"}, "only a message", ""),
        ({"title": ["not", "text"], "summary": "sum", "text": "body"}, "sum", "body"),
    ],
)
def test_lenient_title_and_message(payload: dict[str, Any], title: str, message: str) -> None:
    [alert] = parse("webhook", payload, lenient=True, now=NOW)
    assert (alert.title, alert.message) == (title, message)


@pytest.mark.parametrize(
    ("payload", "action"),
    [
        ({"status": "ok"}, "resolve"),
        ({"state": "Resolved"}, "resolve"),
        ({"status": "resolve"}, "resolve"),
        ({"state": "acknowledged"}, "acknowledge"),
        ({"state": "alerting"}, "trigger"),
        ({"status": "anything else"}, "trigger"),
        ({"status": 5}, "trigger"),
    ],
)
def test_lenient_status(payload: dict[str, Any], action: str) -> None:
    assert parse("webhook", payload, lenient=True, now=NOW)[0].action == action


def test_lenient_dedup_key_sources_and_stable_fallback() -> None:
    assert parse("webhook", {"alert_uid": "u", "id": 1}, lenient=True, now=NOW)[0].dedup_key == "u"
    assert parse("webhook", {"incident_key": "i"}, lenient=True, now=NOW)[0].dedup_key == "i"
    firing = parse(
        "webhook", {"host": "a", "check": "ping", "state": "alerting", "timestamp": 1}, lenient=True, now=NOW
    )
    ok = parse(
        "webhook", {"check": "ping", "host": "a", "state": "ok", "timestamp": 99}, lenient=True, now=NOW
    )
    assert firing[0].dedup_key == ok[0].dedup_key == stable_hash({"host": "a", "check": "ping"})
    other = parse("webhook", {"host": "b", "check": "ping"}, lenient=True, now=NOW)
    assert other[0].dedup_key != firing[0].dedup_key


def test_lenient_ignores_malformed_optional_fields() -> None:
    payload = {
        "title": "t",
        "labels": ["not", "an", "object"],
        "annotations": "nope",
        "links": [3, "javascript:x", {"href": "https://a.example.com", "text": "A", "kind": "bogus"}],
        "fired_at": "not a time",
        "startsAt": "2026-11-23T11:00:00Z",
        "severity": "unheard-of",
        "image_url": "https://img.example.com/i.png",
    }
    [alert] = parse("webhook", payload, lenient=True, now=NOW)
    assert alert.labels == {} and alert.annotations == {}
    assert alert.severity == "error"
    assert alert.fired_at == at("2026-11-23T11:00:00+00:00")
    assert alert.links == [
        {"kind": "image", "url": "https://img.example.com/i.png", "title": "Image"},
        {"kind": "link", "url": "https://a.example.com", "title": "A"},
    ]


@pytest.mark.parametrize("payload", [[], "text", 1, None, True])
def test_lenient_still_needs_an_object(payload: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        parse("webhook", payload, lenient=True, now=NOW)
    assert caught.value.field == "body"


def test_formatted_webhook_alerting() -> None:
    payload = load("formatted-webhook-alerting")
    assert parse("formatted_webhook", payload, now=NOW) == [
        NormalizedAlert(
            action="trigger",
            dedup_key="08d6891a-835c-e661-39fa-96b6a9e26552",
            title="The whole system is down",
            message="All regions return 503 since 10:02 UTC.",
            severity="error",
            labels={},
            annotations={},
            links=[
                {
                    "kind": "link",
                    "url": "https://status.example.com/incidents/2026-11-23",
                    "title": "Upstream details",
                },
                {"kind": "image", "url": "https://status.example.com/img/outage-map.png", "title": "Image"},
            ],
            source="formatted_webhook",
            fingerprint=None,
            fired_at=NOW,
            ended_at=None,
            raw=payload,
        )
    ]


def test_formatted_webhook_ok() -> None:
    payload = load("formatted-webhook-ok")
    assert parse("formatted_webhook", payload, now=NOW) == [
        NormalizedAlert(
            action="resolve",
            dedup_key="08d6891a-835c-e661-39fa-96b6a9e26552",
            title="The whole system is down",
            message="Everything is back up.",
            severity="error",
            labels={},
            annotations={},
            links=[
                {
                    "kind": "link",
                    "url": "https://status.example.com/incidents/2026-11-23",
                    "title": "Upstream details",
                }
            ],
            source="formatted_webhook",
            fingerprint=None,
            fired_at=None,
            ended_at=NOW,
            raw=payload,
        )
    ]


def test_formatted_webhook_fallbacks() -> None:
    [alert] = parse("formatted_webhook", {"message": "first line\nsecond", "alert_uid": 17}, now=NOW)
    assert (alert.title, alert.dedup_key, alert.action) == ("first line", "17", "trigger")
    [bare] = parse("formatted_webhook", {"title": "T", "state": "whatever"}, now=NOW)
    assert (bare.title, bare.dedup_key, bare.action) == ("T", stable_hash({"title": "T"}), "trigger")
    assert parse("formatted_webhook", {}, now=NOW)[0].title == "Formatted webhook alert"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ({"alert_uid": 1.5}, "alert_uid"),
        ({"alert_uid": {"id": 1}}, "alert_uid"),
        ({"title": 1}, "title"),
        ({"message": []}, "message"),
        ({"image_url": 1}, "image_url"),
        ({"state": False}, "state"),
        ({"link_to_upstream_details": {}}, "link_to_upstream_details"),
    ],
)
def test_formatted_webhook_invalid_payloads_name_the_field(payload: Any, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse("formatted_webhook", payload, now=NOW)
    assert caught.value.field == field
