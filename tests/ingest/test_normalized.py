"""The shared contract: NormalizedAlert invariants, PayloadError, timestamps, severity, dispatch."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sentinel_app.ingest import KINDS, NormalizedAlert, PayloadError, normalize_severity, parse
from sentinel_app.ingest.normalized import child, make_link, parse_timestamp
from sentinel_app.ingest.severity import most_urgent
from tests.ingest import NOW, assert_contract, load


def test_payload_error_carries_field_and_message_and_survives_pickling() -> None:
    error = PayloadError("alerts[0].status", "must be one of firing, resolved")
    assert (error.field, error.message) == ("alerts[0].status", "must be one of firing, resolved")
    assert str(error) == "alerts[0].status: must be one of firing, resolved"
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.message, str(copy)) == (error.field, error.message, str(error))


def test_alert_enforces_column_sizes_and_utc() -> None:
    alert = NormalizedAlert(
        action="trigger",
        dedup_key="d" * 256,
        title="  ",
        source="s" * 100,
        fingerprint="f" * 129,
        fired_at=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
    )
    assert alert.title == "Untitled alert"
    assert alert.dedup_key.startswith("sha256:") and len(alert.dedup_key) == 71
    assert alert.fingerprint is not None and alert.fingerprint.startswith("sha256:")
    assert len(alert.source) == 64
    assert alert.fired_at == datetime(2026, 1, 1, 10, tzinfo=UTC) and alert.fired_at.tzinfo is UTC
    assert_contract(alert)


def test_alert_makes_text_safe_for_postgresql() -> None:
    alert = NormalizedAlert(
        action="trigger",
        dedup_key="k\x00ey",
        title="bad\x00 \ud800title",
        message="m\x00",
        labels={"l\x00": "v\udfff"},
        annotations={"a": "b\x00"},
        source="webhook",
        raw={"n\x00": [float("nan"), float("inf"), "\ud800", {"k": "\x00"}]},
    )
    assert (alert.dedup_key, alert.title, alert.message) == ("key", "bad \ufffdtitle", "m")
    assert alert.labels == {"l": "v\ufffd"} and alert.annotations == {"a": "b"}
    assert alert.raw == {"n": ["nan", "inf", "\ufffd", {"k": ""}]}
    assert_contract(alert)


@pytest.mark.parametrize(
    "changes",
    [
        {"action": "escalate"},
        {"severity": "urgent"},
        {"dedup_key": ""},
        {"fired_at": datetime(2026, 1, 1)},
        {"ended_at": datetime(2026, 1, 1)},
    ],
)
def test_alert_rejects_programming_errors(changes: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"action": "trigger", "dedup_key": "k", "title": "t", **changes}
    with pytest.raises(ValueError):
        NormalizedAlert(**fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T00:35:32.211027527Z", datetime(2026, 11, 23, 0, 35, 32, 211027, tzinfo=UTC)),
        ("2026-11-23T02:35:32+02:00", datetime(2026, 11, 23, 0, 35, 32, tzinfo=UTC)),
        ("2015-07-17T08:42:58.315+0000", datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)),
        ("2026-11-23T00:35:32-0530", datetime(2026, 11, 23, 6, 5, 32, tzinfo=UTC)),
        ("2026-11-23T00:35:32+01", datetime(2026, 11, 22, 23, 35, 32, tzinfo=UTC)),
        ("2026-11-23 00:35:32", datetime(2026, 11, 23, 0, 35, 32, tzinfo=UTC)),  # no offset: UTC
        ("2026-11-23t00:35z", datetime(2026, 11, 23, 0, 35, tzinfo=UTC)),
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),  # Go's zero time
        (None, None),
    ],
)
def test_timestamps(text: str | None, expected: datetime | None) -> None:
    assert parse_timestamp(text, "t") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "now",
        "2026-11-23T25:00:00Z",
        "2026-11-23T00:00:60Z",
        "2026-02-29T00:00:00Z",
        "2026-11-23T00:00:00+24:00",
        "2026-11-23T00:00:00+05:60",
        "9999-12-31T23:59:59-01:00",  # beyond the last representable instant once in UTC
        "2026-11-23T00:00:00Z trailing",
        "\uff12\uff10\uff12\uff16-11-23",  # full-width digits
        "2026-11-23T00:00:00.Z",
    ],
)
def test_bad_timestamps_name_the_field(text: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_timestamp(text, "alerts[3].startsAt")
    assert caught.value.field == "alerts[3].startsAt"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("critical", "critical"),
        ("CRIT", "critical"),
        ("page", "critical"),
        ("P1", "critical"),
        ("fatal", "critical"),
        ("Emergency", "critical"),
        ("SEV1", "critical"),
        ("sev-1", "critical"),
        ("high", "critical"),
        ("error", "error"),
        ("err", "error"),
        ("major", "error"),
        ("p2", "error"),
        ("sev2", "error"),
        ("warning", "warning"),
        ("warn", "warning"),
        ("minor", "warning"),
        ("P3", "warning"),
        ("sev_3", "warning"),
        ("medium", "warning"),
        ("info", "info"),
        ("informational", "info"),
        ("low", "info"),
        ("none", "info"),
        ("ok", "info"),
        ("p4", "info"),
        ("P5", "info"),
        ("sev4", "info"),
        ("debug", "info"),
        (" Warning ", "warning"),
        ("urgent", None),
        ("", None),
        (1, None),
        (None, None),
        (True, None),
    ],
)
def test_severity_aliases(value: Any, expected: str | None) -> None:
    assert normalize_severity(value) == expected


def test_most_urgent() -> None:
    assert most_urgent(["info", "critical", "warning"]) == "critical"
    assert most_urgent([]) == "error"


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://grafana.example.com/d/x", True),
        ("HTTP://host:9093/#/silences", True),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("/relative/path", False),
        ("https://", False),
        ("http://[::1", False),  # urlsplit raises on this
        ("https://x.example.com/" + "a" * 5000, False),
        (42, False),
    ],
)
def test_links_only_keep_absolute_http_urls(url: Any, kept: bool) -> None:
    assert (make_link("link", url, "t") is not None) == kept


@pytest.mark.parametrize("kind", ["zabbix", "", None, 3, "Alertmanager"])
def test_unknown_kind(kind: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(kind, {"title": "t"}, now=NOW)
    assert caught.value.field == "kind"


def test_every_kind_is_known() -> None:
    assert KINDS == (
        "alertmanager",
        "grafana_alerting",
        "grafana",
        "pagerduty",
        "webhook",
        "formatted_webhook",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_deep_nesting_is_refused_before_anything_recurses(kind: str) -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(PayloadError) as caught:
        parse(kind, {"title": "t", "labels": {"x": deep}}, lenient=True, now=NOW)
    assert caught.value.field == "body"


def test_naive_now_is_taken_as_utc() -> None:
    [alert] = parse("webhook", {"title": "t"}, now=datetime(2026, 11, 23, 12))
    assert alert.fired_at == NOW


def test_adapters_do_not_modify_the_payload() -> None:
    for kind, name in [
        ("alertmanager", "alertmanager-group-firing"),
        ("grafana", "grafana-alerting-firing"),
        ("grafana", "grafana-legacy-alerting"),
        ("pagerduty", "pagerduty-trigger"),
        ("webhook", "webhook-firing"),
        ("formatted_webhook", "formatted-webhook-alerting"),
    ]:
        payload = load(name)
        for grouping in (None, {"mode": "group"}):
            parse(kind, payload, grouping=grouping, now=NOW)
        assert payload == load(name)


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ("", "alerts", "alerts"),
        ("alerts", 0, "alerts[0]"),
        ("alerts[0]", "status", "alerts[0].status"),
        ("payload", "severity", "payload.severity"),
        ("tags", "tag name", 'tags["tag name"]'),
        ("labels", "", 'labels[""]'),
        ("labels", 'a"b', 'labels["a\\"b"]'),
        ("", "x-y", '["x-y"]'),
    ],
)
def test_field_paths(path: str, key: str | int, expected: str) -> None:
    assert child(path, key) == expected


def test_odd_label_names_are_quoted_in_the_field_path() -> None:
    payload = load("grafana-legacy-alerting")
    payload["tags"] = {"tag name": {"nested": True}}
    with pytest.raises(PayloadError) as caught:
        parse("grafana", payload, now=NOW)
    assert caught.value.field == 'tags["tag name"]'
