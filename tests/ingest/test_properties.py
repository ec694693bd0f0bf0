"""Property tests: whatever JSON arrives, `parse` returns contract-abiding alerts or raises PayloadError.

Random JSON values test the outer checks; random mutations of the real fixtures (a field removed,
retyped or replaced, an entry added) reach the checks deep inside each sender's format; and an
exhaustive sweep retypes or removes every single value of every fixture, where chance is thin.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel_app.ingest import KINDS, NormalizedAlert, PayloadError, parse
from tests.ingest import NOW, assert_contract, load

SETTINGS = settings(
    deadline=None,
    max_examples=200,
    derandomize=True,  # the same examples on every run and in CI
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FIXTURES: list[tuple[str, str, bool]] = [
    ("alertmanager", "alertmanager-0.25-firing", False),
    ("alertmanager", "alertmanager-0.25-resolved", False),
    ("alertmanager", "alertmanager-group-firing", False),
    ("grafana_alerting", "grafana-alerting-firing", False),
    ("grafana_alerting", "grafana-alerting-resolved", False),
    ("grafana", "grafana-alerting-firing", False),
    ("grafana", "grafana-legacy-alerting", False),
    ("grafana", "grafana-legacy-ok", False),
    ("pagerduty", "pagerduty-trigger", False),
    ("pagerduty", "pagerduty-acknowledge", False),
    ("pagerduty", "pagerduty-resolve", False),
    ("webhook", "webhook-firing", False),
    ("webhook", "webhook-resolved", False),
    ("webhook", "webhook-lenient", True),
    ("webhook", "webhook-firing", True),
    ("formatted_webhook", "formatted-webhook-alerting", False),
    ("formatted_webhook", "formatted-webhook-ok", False),
]
PAYLOADS = {name: load(name) for _, name, _ in FIXTURES}


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


# Every field name the adapters read, so random objects often look like a real payload.
FIELD_NAMES = sorted(
    {key for payload in PAYLOADS.values() for key in _keys(payload)}
    | {"summary", "description", "runbook_url", "dashboard_url", "priority", "subject", "incident_key"}
    | {"fired_at", "id", "alert_uid", "level", "url", "kind", "href", "src", "text", "group_by", "mode"}
)
INTERESTING_TEXT = [
    "",
    " ",
    "firing",
    "resolved",
    "ok",
    "alerting",
    "no_data",
    "paused",
    "trigger",
    "acknowledge",
    "resolve",
    "critical",
    "P1",
    "bogus",
    "0001-01-01T00:00:00Z",
    "2026-11-23T00:35:32.211027527Z",
    "2015-07-17T08:42:58.315+0000",
    "9999-12-31T23:59:59-01:00",
    "2026-02-30T00:00:00Z",
    "https://x.example.com/a",
    "javascript:alert(1)",
    "http://[::1",
    "nul\x00byte",
    "lone \ud800 surrogate",
    "x" * 1100,
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(INTERESTING_TEXT)
)
KEYS = st.sampled_from(FIELD_NAMES) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)
GROUPINGS = st.sampled_from(
    [
        None,
        {"mode": "fingerprint"},
        {"mode": "group"},
        {"mode": "group", "group_by": ["alertname"]},
        {"mode": "group", "group_by": ["severity", "instance"]},
    ]
)


def _outcome(
    kind: str, payload: Any, *, grouping: Any = None, lenient: bool = False
) -> list[NormalizedAlert] | None:
    """The alerts (each checked against the contract), or None after a well-formed PayloadError."""
    try:
        alerts = parse(kind, payload, grouping=grouping, lenient=lenient, now=NOW)
    except PayloadError as error:
        assert isinstance(error.field, str) and error.field
        assert isinstance(error.message, str) and error.message
        if kind == "pagerduty":
            assert error.message.startswith(f"'{error.field}' ")
        return None
    assert isinstance(alerts, list)
    for alert in alerts:
        assert_contract(alert)
    return alerts


@SETTINGS
@given(kind=st.sampled_from(KINDS), payload=JSON, grouping=GROUPINGS | JSON, lenient=st.booleans())
def test_random_json_gives_alerts_or_payload_error(
    kind: str, payload: Any, grouping: Any, lenient: bool
) -> None:
    _outcome(kind, payload, grouping=grouping, lenient=lenient)


@SETTINGS
@given(kind=st.sampled_from(KINDS), payload=st.dictionaries(KEYS, JSON, max_size=8), lenient=st.booleans())
def test_random_objects_with_known_field_names(kind: str, payload: dict[str, Any], lenient: bool) -> None:
    _outcome(kind, payload, lenient=lenient)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


# Values of every JSON type, and texts adapters treat specially: a retyped field hits a type check.
RETYPED_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    float("nan"),
    [],
    {},
    [{}],
    {"": ""},
    *INTERESTING_TEXT,
]
RETYPED = st.sampled_from(RETYPED_VALUES)


@st.composite
def _mutated(draw: st.DrawFn, payload: Any) -> Any:
    payload = copy.deepcopy(payload)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(_paths(payload))))
        operation = draw(st.sampled_from(["retype", "retype", "replace", "delete", "insert", "duplicate"]))
        target = _get(payload, path)
        if operation in ("retype", "replace") or (operation == "delete" and not path):
            # Copies: sampled_from hands out the same list/dict objects again, which could nest in themselves.
            value = copy.deepcopy(draw(RETYPED if operation == "retype" else JSON))
            if not path:
                payload = value
            else:
                _get(payload, path[:-1])[path[-1]] = value
        elif operation == "delete":
            del _get(payload, path[:-1])[path[-1]]
        elif operation == "insert" and isinstance(target, dict):
            target[draw(KEYS)] = copy.deepcopy(draw(RETYPED | JSON))
        elif operation == "insert" and isinstance(target, list):
            target.append(copy.deepcopy(draw(RETYPED | JSON)))
        elif operation == "duplicate" and isinstance(target, list) and target:
            target.extend(copy.deepcopy(target))
    return payload


@pytest.mark.parametrize(("kind", "name", "lenient"), FIXTURES)
@settings(SETTINGS, max_examples=120)
@given(data=st.data(), grouping=GROUPINGS)
def test_mutated_fixtures_give_alerts_or_payload_error(
    kind: str, name: str, lenient: bool, data: st.DataObject, grouping: Any
) -> None:
    payload = data.draw(_mutated(PAYLOADS[name]), label="payload")
    before = json.dumps(payload)  # text, so NaN compares equal to itself
    alerts = _outcome(kind, payload, grouping=grouping, lenient=lenient)
    assert json.dumps(payload) == before  # the payload is never modified
    if alerts is not None and kind != "pagerduty":
        # Pure and deterministic: the same payload gives the same alerts (PagerDuty may draw a random key).
        assert parse(kind, payload, grouping=grouping, lenient=lenient, now=NOW) == alerts


@pytest.mark.parametrize(("kind", "name", "lenient"), FIXTURES)
@pytest.mark.parametrize("grouping", [None, {"mode": "group"}])
def test_unmutated_fixtures_all_parse(kind: str, name: str, lenient: bool, grouping: Any) -> None:
    alerts = _outcome(kind, copy.deepcopy(PAYLOADS[name]), grouping=grouping, lenient=lenient)
    assert alerts


def _single_mutations(payload: Any) -> Iterator[Any]:
    """The payload with exactly one value retyped or removed, for every value and every retyping."""
    for path in _paths(payload):
        for value in RETYPED_VALUES:
            mutated = copy.deepcopy(payload)
            if not path:
                yield copy.deepcopy(value)
                continue
            _get(mutated, path[:-1])[path[-1]] = copy.deepcopy(value)
            yield mutated
        if path:
            mutated = copy.deepcopy(payload)
            del _get(mutated, path[:-1])[path[-1]]
            yield mutated


@pytest.mark.parametrize(("kind", "name", "lenient"), FIXTURES)
def test_every_single_value_retyped_or_removed(kind: str, name: str, lenient: bool) -> None:
    # Exhaustive where the random search is thin: each field alone, set to each type and special text.
    for payload in _single_mutations(PAYLOADS[name]):
        for grouping in (None, {"mode": "group"}):
            _outcome(kind, payload, grouping=grouping, lenient=lenient)
