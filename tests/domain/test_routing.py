"""Routing matchers behave like Alertmanager's."""

from __future__ import annotations

import pytest

from sentinel_app.domain.routing import MatcherError, first_match, matches, validate_matchers

LABELS = {"alertname": "DiskFull", "severity": "critical", "team": "db"}


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        ({"label": "severity", "op": "=", "value": "critical"}, True),
        ({"label": "severity", "op": "!=", "value": "critical"}, False),
        ({"label": "alertname", "op": "=~", "value": "Disk.*"}, True),
        ({"label": "alertname", "op": "=~", "value": "Disk"}, False),  # anchored like Alertmanager
        ({"label": "alertname", "op": "!~", "value": "CPU.*"}, True),
        ({"label": "missing", "op": "=", "value": ""}, True),
        ({"label": "missing", "op": "!=", "value": ""}, False),
    ],
)
def test_single_matchers(matcher: dict[str, str], expected: bool) -> None:
    assert matches([matcher], LABELS) is expected


def test_first_matching_route_wins_in_order() -> None:
    routes = [
        ([{"label": "team", "op": "=", "value": "web"}], "web-policy"),
        ([{"label": "severity", "op": "=", "value": "critical"}], "critical-policy"),
        ([], "catch-all"),
    ]
    assert first_match(routes, LABELS) == "critical-policy"
    assert first_match(routes, {"team": "other"}) == "catch-all"
    assert first_match(routes[:1], LABELS) is None


@pytest.mark.parametrize(
    ("matchers", "field"),
    [
        ([{"op": "=", "value": "x"}], "matchers[0].label"),
        ([{"label": "a", "op": "~", "value": "x"}], "matchers[0].op"),
        ([{"label": "a", "op": "=~", "value": "("}], "matchers[0].value"),
        ([{"label": "a", "op": "=", "value": 3}], "matchers[0].value"),
        (["severity=critical"], "matchers[0]"),
    ],
)
def test_invalid_matchers_name_the_field(matchers: list[object], field: str) -> None:
    with pytest.raises(MatcherError) as info:
        validate_matchers(matchers)  # type: ignore[arg-type]
    assert info.value.field == field
