"""Helpers shared by the ingestion adapter tests: fixtures on disk, a fixed clock, the output contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel_app.ingest import LINK_KINDS, SEVERITIES, NormalizedAlert

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ingest"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def load(name: str) -> Any:
    """A fixture payload, freshly parsed (tests may mutate it)."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def at(text: str) -> datetime:
    """An aware UTC datetime from ISO text, for expected values."""
    return datetime.fromisoformat(text).astimezone(UTC)


def assert_contract(alert: NormalizedAlert) -> None:
    """What the services layer relies on for every alert, whatever the sender."""
    assert isinstance(alert, NormalizedAlert)
    assert alert.action in ("trigger", "acknowledge", "resolve")
    assert isinstance(alert.dedup_key, str) and 0 < len(alert.dedup_key) <= 255
    assert isinstance(alert.title, str) and 0 < len(alert.title) <= 500 and alert.title.strip()
    assert isinstance(alert.message, str)
    assert alert.severity in SEVERITIES
    for mapping in (alert.labels, alert.annotations):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
    for link in alert.links:
        assert set(link) == {"kind", "url", "title"}
        assert link["kind"] in LINK_KINDS
        assert link["url"].startswith(("http://", "https://"))
    assert 0 < len(alert.source) <= 64
    assert alert.fingerprint is None or 0 < len(alert.fingerprint) <= 128
    for when in (alert.fired_at, alert.ended_at):
        assert when is None or (isinstance(when, datetime) and when.utcoffset() is not None)
        assert when is None or when.tzinfo is UTC
    assert isinstance(alert.raw, dict)
    # raw must be storable as JSONB: strict JSON (no NaN), no NUL, no lone surrogates.
    encoded = json.dumps(alert.raw, allow_nan=False, ensure_ascii=False)
    assert "\x00" not in encoded
    encoded.encode("utf-8")
    for text in (alert.title, alert.message, *alert.labels.values(), *alert.annotations.values()):
        text.encode("utf-8")
        assert "\x00" not in text
