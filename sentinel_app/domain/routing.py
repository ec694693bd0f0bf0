"""Routing rules: Alertmanager-style label matchers choosing an escalation policy."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

OPERATORS = ("=", "!=", "=~", "!~")


class MatcherError(ValueError):
    """A matcher is malformed; `field` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def validate_matchers(
    matchers: Sequence[Mapping[str, Any]], *, field: str = "matchers"
) -> list[dict[str, str]]:
    """Check and normalise matchers of the form {"label", "op", "value"}."""
    clean: list[dict[str, str]] = []
    for index, matcher in enumerate(matchers):
        where = f"{field}[{index}]"
        if not isinstance(matcher, Mapping):
            raise MatcherError(where, "must be an object with label, op and value")
        label, op, value = matcher.get("label"), matcher.get("op", "="), matcher.get("value", "")
        if not isinstance(label, str) or not label:
            raise MatcherError(f"{where}.label", "must be a non-empty string")
        if op not in OPERATORS:
            raise MatcherError(f"{where}.op", f"must be one of {', '.join(OPERATORS)}")
        if not isinstance(value, str):
            raise MatcherError(f"{where}.value", "must be a string")
        if op in ("=~", "!~"):
            try:
                _regex(value)
            except re.error as exc:
                raise MatcherError(f"{where}.value", f"invalid regular expression: {exc}") from None
        clean.append({"label": label, "op": op, "value": value})
    return clean


def matches(matchers: Sequence[Mapping[str, str]], labels: Mapping[str, str]) -> bool:
    """Whether every matcher holds; a missing label reads as "" like in Alertmanager."""
    for matcher in matchers:
        actual = labels.get(matcher["label"], "")
        op, value = matcher["op"], matcher["value"]
        if op == "=":
            ok = actual == value
        elif op == "!=":
            ok = actual != value
        elif op == "=~":
            ok = _regex(value).fullmatch(actual) is not None
        else:
            ok = _regex(value).fullmatch(actual) is None
        if not ok:
            return False
    return True


def first_match(
    routes: Sequence[tuple[Sequence[Mapping[str, str]], Any]], labels: Mapping[str, str]
) -> Any | None:
    """The target of the first route whose matchers all hold, else None."""
    for matchers, target in routes:
        if matches(matchers, labels):
            return target
    return None
