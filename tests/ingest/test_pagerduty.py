"""PagerDuty Events API v2 adapter: trigger, acknowledge, resolve and PagerDuty-style validation."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sentinel_app.ingest import NormalizedAlert, PayloadError, parse
from tests.ingest import NOW, assert_contract, at, load

KEY = "db-1/postgres/replication-lag"


def test_trigger() -> None:
    payload = load("pagerduty-trigger")
    details = payload["payload"]["custom_details"]
    alerts = parse("pagerduty", payload, now=NOW)
    assert alerts == [
        NormalizedAlert(
            action="trigger",
            dedup_key=KEY,
            title="Replication lag on db-1 is 312 s (threshold 60 s)",
            message="",
            severity="critical",
            labels={
                "source": "db-1.prod.example.com",
                "component": "postgres",
                "group": "prod-datastore",
                "class": "replication lag",
            },
            annotations={
                "lag seconds": "312",
                "replica": "db-2.prod.example.com",
                "primary": "db-1.prod.example.com",
                "custom_details": json.dumps(details, sort_keys=True, ensure_ascii=False),
                "client": "Example Monitoring",
            },
            links=[
                {
                    "kind": "generator",
                    "url": "https://monitoring.example.com/checks/replication-lag",
                    "title": "Example Monitoring",
                },
                {
                    "kind": "link",
                    "url": "https://runbooks.example.com/postgres/replication-lag",
                    "title": "Runbook: replication lag",
                },
                {
                    "kind": "image",
                    "url": "https://monitoring.example.com/render/replication-lag.png",
                    "title": "Replication lag, last hour",
                },
                {
                    "kind": "link",
                    "url": "https://monitoring.example.com/d/replication",
                    "title": "Replication lag, last hour",
                },
            ],
            source="pagerduty",
            fingerprint=None,
            fired_at=at("2026-11-23T08:42:58.315+00:00"),  # "+0000" offsets are read too
            ended_at=None,
            raw={**payload, "routing_key": "[redacted]"},
        )
    ]
    assert_contract(alerts[0])


def test_acknowledge() -> None:
    payload = load("pagerduty-acknowledge")
    assert parse("pagerduty", payload, now=NOW) == [
        NormalizedAlert(
            action="acknowledge",
            dedup_key=KEY,
            title=KEY,
            message="",
            severity="error",
            labels={},
            annotations={},
            links=[],
            source="pagerduty",
            fingerprint=None,
            fired_at=None,
            ended_at=None,
            raw={**payload, "routing_key": "[redacted]"},
        )
    ]


def test_resolve() -> None:
    payload = load("pagerduty-resolve")
    assert parse("pagerduty", payload, now=NOW) == [
        NormalizedAlert(
            action="resolve",
            dedup_key=KEY,
            title=KEY,
            source="pagerduty",
            ended_at=NOW,
            raw={**payload, "routing_key": "[redacted]"},
        )
    ]


def test_routing_key_never_reaches_raw() -> None:
    for name in ("pagerduty-trigger", "pagerduty-acknowledge", "pagerduty-resolve"):
        [alert] = parse("pagerduty", load(name), now=NOW)
        assert "R015ZP3B8QWC1DS2XYSQ9T7KJMHGF4EN" not in json.dumps(alert.raw)


def test_trigger_without_dedup_key_gets_a_fresh_random_one() -> None:
    payload = load("pagerduty-trigger")
    del payload["dedup_key"]
    first = parse("pagerduty", payload, now=NOW)[0].dedup_key
    second = parse("pagerduty", payload, now=NOW)[0].dedup_key
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second
    payload["dedup_key"] = "  "
    assert len(parse("pagerduty", payload, now=NOW)[0].dedup_key) == 32


def test_minimal_trigger() -> None:
    event = {
        "routing_key": "k",
        "event_action": "trigger",
        "dedup_key": "x",
        "payload": {"summary": "s", "source": "host", "severity": "Warning"},
    }
    [alert] = parse("pagerduty", event, now=NOW)
    assert (alert.severity, alert.labels, alert.annotations, alert.links, alert.fired_at) == (
        "warning",
        {"source": "host"},
        {},
        [],
        NOW,
    )


def test_long_summary_is_cut_in_the_title_and_kept_in_the_message() -> None:
    payload = load("pagerduty-trigger")
    payload["payload"]["summary"] = "x" * 1024
    [alert] = parse("pagerduty", payload, now=NOW)
    assert alert.title == "x" * 499 + "…"
    assert alert.message == "x" * 1024


def test_string_custom_details_become_the_message() -> None:
    payload = load("pagerduty-trigger")
    payload["payload"]["custom_details"] = "free text from the sender"
    [alert] = parse("pagerduty", payload, now=NOW)
    assert alert.message == "free text from the sender"
    assert alert.annotations["custom_details"] == '"free text from the sender"'


def test_non_http_links_are_dropped() -> None:
    payload = load("pagerduty-trigger")
    payload["links"] = [{"href": "javascript:alert(1)"}, {"href": "ftp://files.example.com/x"}]
    payload["images"] = []
    del payload["client_url"]
    assert parse("pagerduty", payload, now=NOW)[0].links == []


def _event(name: str = "pagerduty-trigger", **changes: Any) -> dict[str, Any]:
    payload = load(name)
    for key, value in changes.items():
        if key.startswith("payload_"):
            payload["payload"][key.removeprefix("payload_")] = value
        else:
            payload[key] = value
    return payload


def _without(name: str, *path: str) -> dict[str, Any]:
    payload = load(name)
    target = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return payload


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ("trigger", "body", "'body' must be a JSON object"),
        (_without("pagerduty-trigger", "routing_key"), "routing_key", "'routing_key' is missing or blank"),
        (_event(routing_key=""), "routing_key", "'routing_key' is missing or blank"),
        (_event(routing_key=42), "routing_key", "'routing_key' must be a string"),
        (_without("pagerduty-trigger", "event_action"), "event_action", "'event_action' is missing or blank"),
        (
            _event(event_action="escalate"),
            "event_action",
            "'event_action' must be one of trigger, acknowledge, resolve",
        ),
        (_event(dedup_key=7), "dedup_key", "'dedup_key' must be a string"),
        (_event(dedup_key="k" * 256), "dedup_key", "'dedup_key' must be at most 255 characters"),
        (
            _without("pagerduty-acknowledge", "dedup_key"),
            "dedup_key",
            "'dedup_key' is missing or blank (required for acknowledge)",
        ),
        (
            _event("pagerduty-resolve", dedup_key=" "),
            "dedup_key",
            "'dedup_key' is missing or blank (required for resolve)",
        ),
        (_without("pagerduty-trigger", "payload"), "payload", "'payload' is missing"),
        (_event(payload="down"), "payload", "'payload' must be an object"),
        (
            _without("pagerduty-trigger", "payload", "summary"),
            "payload.summary",
            "'payload.summary' is missing or blank",
        ),
        (_event(payload_summary=""), "payload.summary", "'payload.summary' is missing or blank"),
        (_event(payload_summary=["a"]), "payload.summary", "'payload.summary' must be a string"),
        (
            _event(payload_summary="s" * 1025),
            "payload.summary",
            "'payload.summary' must be at most 1024 characters",
        ),
        (
            _without("pagerduty-trigger", "payload", "source"),
            "payload.source",
            "'payload.source' is missing or blank",
        ),
        (_event(payload_source=1), "payload.source", "'payload.source' must be a string"),
        (
            _without("pagerduty-trigger", "payload", "severity"),
            "payload.severity",
            "'payload.severity' is missing or blank",
        ),
        (
            _event(payload_severity="sev1"),
            "payload.severity",
            "'payload.severity' must be one of critical, error, warning, info",
        ),
        (_event(payload_severity=1), "payload.severity", "'payload.severity' must be a string"),
        (
            _event(payload_timestamp="last tuesday"),
            "payload.timestamp",
            "'payload.timestamp' must be an ISO 8601 timestamp such as 2026-01-31T12:00:00Z",
        ),
        (_event(payload_component=1), "payload.component", "'payload.component' must be a string"),
        (_event(payload_group=[]), "payload.group", "'payload.group' must be a string"),
        (_event(payload_class={}), "payload.class", "'payload.class' must be a string"),
        (_event(links={"href": "x"}), "links", "'links' must be an array"),
        (_event(links=["https://x.example.com"]), "links[0]", "'links[0]' must be an object"),
        (_event(links=[{"text": "t"}]), "links[0].href", "'links[0].href' is missing or blank"),
        (
            _event(links=[{"href": "https://x.example.com", "text": 1}]),
            "links[0].text",
            "'links[0].text' must be a string",
        ),
        (_event(images="x"), "images", "'images' must be an array"),
        (_event(images=[{"alt": "a"}]), "images[0].src", "'images[0].src' is missing or blank"),
        (
            _event(images=[{"src": "https://x.example.com", "href": 2}]),
            "images[0].href",
            "'images[0].href' must be a string",
        ),
        (
            _event(images=[{"src": "https://x.example.com", "alt": 2}]),
            "images[0].alt",
            "'images[0].alt' must be a string",
        ),
        (_event(client=1), "client", "'client' must be a string"),
        (_event(client_url=1), "client_url", "'client_url' must be a string"),
    ],
)
def test_invalid_events_read_like_pagerduty(payload: Any, field: str, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse("pagerduty", copy.deepcopy(payload), now=NOW)
    assert (caught.value.field, caught.value.message) == (field, message)


def test_acknowledge_ignores_a_missing_payload_and_a_bad_summary() -> None:
    event = {"routing_key": "k", "event_action": "acknowledge", "dedup_key": "x", "payload": {"summary": 1}}
    assert parse("pagerduty", event, now=NOW)[0].action == "acknowledge"
