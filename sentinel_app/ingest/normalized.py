"""The normalised alert every adapter produces, the payload error, and the field checks they share."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

Action = Literal["trigger", "acknowledge", "resolve"]
ACTIONS: frozenset[str] = frozenset(get_args(Action))
SEVERITIES: tuple[str, ...] = ("critical", "error", "warning", "info")
LINK_KINDS: tuple[str, ...] = ("generator", "dashboard", "panel", "silence", "runbook", "image", "link")

# Column sizes of the alerts table; NormalizedAlert enforces them so no adapter can overflow one.
MAX_TITLE = 500
MAX_DEDUP_KEY = 255
MAX_FINGERPRINT = 128
MAX_SOURCE = 64
MAX_URL = 4096
MAX_LINK_TITLE = 200
MAX_ALERTS = 1000
# Real payloads are a few levels deep; the bound keeps hashing and JSON encoding away from recursion limits.
MAX_DEPTH = 64

ROOT = ""  # the path of the whole body; reported as "body"


class PayloadError(ValueError):
    """The payload cannot be turned into alerts; `field` is the path of the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[PayloadError], tuple[str, str]]:
        # Keeps the two-argument constructor working across pickling (Ray ships exceptions between workers).
        return (PayloadError, (self.field, self.message))


@dataclass(frozen=True)
class NormalizedAlert:
    """One sender signal about one alert, in Sentinel's terms; sizes and encodings already fit the database."""

    action: Action
    dedup_key: str
    title: str
    message: str = ""
    severity: str = "error"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)
    source: str = ""
    fingerprint: str | None = None
    fired_at: datetime | None = None
    ended_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Violations here are programming errors in an adapter, not bad payloads.
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(sorted(ACTIONS))}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        if not self.dedup_key:
            raise ValueError("dedup_key must not be empty")
        for name in ("fired_at", "ended_at"):
            when = getattr(self, name)
            if when is not None:
                if when.tzinfo is None or when.utcoffset() is None:
                    raise ValueError(f"{name} must be timezone-aware")
                object.__setattr__(self, name, when.astimezone(UTC))
        title = " ".join(clean_text(self.title).split())
        fingerprint = self.fingerprint
        object.__setattr__(self, "title", clip(title, MAX_TITLE) or "Untitled alert")
        object.__setattr__(self, "dedup_key", bounded_key(clean_text(self.dedup_key), MAX_DEDUP_KEY))
        object.__setattr__(self, "message", clean_text(self.message))
        object.__setattr__(self, "source", clip(clean_text(self.source), MAX_SOURCE))
        object.__setattr__(
            self,
            "fingerprint",
            bounded_key(clean_text(fingerprint), MAX_FINGERPRINT) if fingerprint else None,
        )
        object.__setattr__(self, "labels", _clean_map(self.labels))
        object.__setattr__(self, "annotations", _clean_map(self.annotations))
        object.__setattr__(self, "links", [_clean_map(link) for link in self.links])
        object.__setattr__(self, "raw", clean_json(self.raw))


# --- text ---------------------------------------------------------------------------------------

_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Drop NUL and lone surrogates, which PostgreSQL text and JSONB reject."""
    if text.isascii() and "\x00" not in text:
        return text  # the common case, checked in C without the regex engine
    return _UNSAFE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_key(key: str, limit: int) -> str:
    """`key` itself when short enough, else a stable digest of it (keys must not collide when cut)."""
    if len(key) <= limit:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def stable_hash(value: Any) -> str:
    """A sha256 hex digest of `value` as canonical JSON (same data, same digest, whatever the key order)."""
    return hashlib.sha256(canonical_json(value).encode("ascii")).hexdigest()


def canonical_json(value: Any) -> str:
    """Sorted, compact, ASCII-only JSON; non-JSON values fall back to their str()."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def display_json(value: Any) -> str:
    """Readable JSON for an annotation (sorted keys, non-ASCII kept)."""
    return json.dumps(clean_json(value), sort_keys=True, ensure_ascii=False, default=str)


def clean_json(value: Any) -> Any:
    """A copy of a JSON value that PostgreSQL JSONB accepts (no NUL, surrogates, NaN or infinities)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def _clean_map(mapping: Mapping[str, str]) -> dict[str, str]:
    return {clean_text(str(k)): clean_text(str(v)) for k, v in mapping.items()}


def check_depth(payload: Any) -> None:
    """PayloadError when the body nests deeper than MAX_DEPTH (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise PayloadError("body", f"must not nest more than {MAX_DEPTH} levels deep")
        # Only containers can nest: leaving scalars off the stack makes this several times faster.
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))


# --- field access -------------------------------------------------------------------------------


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def child(path: str, key: str | int) -> str:
    """The path of `key` inside `path`: alerts[0].status, labels["tag name"] (odd keys quoted as JSON)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not _IDENTIFIER.fullmatch(key):
        return f"{path}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


def where(path: str) -> str:
    """A path as reported: the root is called "body"."""
    return path or "body"


def require_object(value: Any, path: str) -> dict[str, Any]:
    """`value` when it is a JSON object."""
    if not isinstance(value, dict):
        raise PayloadError(where(path), "must be a JSON object" if not path else "must be an object")
    return value


def get_object(
    obj: Mapping[str, Any], key: str, path: str, *, required: bool = False
) -> dict[str, Any] | None:
    """`obj[key]` as an object; null and absent are None (or an error when required)."""
    value = obj.get(key)
    if value is None:
        if required:
            raise PayloadError(child(path, key), "is missing")
        return None
    return require_object(value, child(path, key))


def get_list(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[Any] | None:
    """`obj[key]` as an array; null and absent are None (or an error when required)."""
    value = obj.get(key)
    if value is None:
        if required:
            raise PayloadError(child(path, key), "is missing")
        return None
    if not isinstance(value, list):
        raise PayloadError(child(path, key), "must be an array")
    return value


def get_str(
    obj: Mapping[str, Any], key: str, path: str, *, required: bool = False, max_length: int | None = None
) -> str | None:
    """`obj[key]` as a string; null and absent are None; required means present and not blank."""
    value = obj.get(key)
    if value is None:
        if required:
            raise PayloadError(child(path, key), "is missing or blank")
        return None
    if not isinstance(value, str):
        raise PayloadError(child(path, key), "must be a string")
    if required and not value.strip():
        raise PayloadError(child(path, key), "is missing or blank")
    if max_length is not None and len(value) > max_length:
        raise PayloadError(child(path, key), f"must be at most {max_length} characters")
    return value


def get_int(obj: Mapping[str, Any], key: str, path: str, *, minimum: int | None = None) -> int | None:
    """`obj[key]` as an integer (booleans are not integers); null and absent are None."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(child(path, key), "must be an integer")
    if minimum is not None and value < minimum:
        raise PayloadError(child(path, key), f"must be at least {minimum}")
    return value


def get_id(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """An identifier that senders send either as a string or as an integer."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise PayloadError(child(path, key), "must be a string or an integer")


def scalar_text(value: Any) -> str | None:
    """A JSON scalar as text (booleans as true/false); None for null, objects and arrays."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than int→str allows; json.loads never produces one
            return None
    if isinstance(value, float):
        return repr(value)
    return None


Nested = Literal["reject", "json"]


def string_map(value: Any, path: str, *, nested: Nested = "reject") -> dict[str, str]:
    """A JSON object as str→str: scalars become text, nulls are dropped, objects/arrays rejected or JSON-encoded."""
    if value is None:
        return {}
    mapping = require_object(value, path)
    result: dict[str, str] = {}
    for key, item in mapping.items():
        if item is None:
            continue
        text = scalar_text(item)
        if text is None:
            if nested == "reject":
                raise PayloadError(child(path, str(key)), "must be a string, number or boolean")
            text = display_json(item)
        result[str(key)] = text
    return result


def lenient_string_map(value: Any) -> dict[str, str]:
    """Like string_map with nested values JSON-encoded, and {} for anything that is not an object."""
    return string_map(value, ROOT, nested="json") if isinstance(value, dict) else {}


def first_text(obj: Mapping[str, Any], keys: Iterable[str]) -> tuple[str, str] | None:
    """The first of `keys` holding a non-blank scalar, with that key."""
    for key in keys:
        value = obj.get(key)
        text = None if isinstance(value, bool) else scalar_text(value)
        if text is not None and text.strip():
            return key, text.strip()
    return None


# --- time ---------------------------------------------------------------------------------------

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,12}))?)?)?"
    r"\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
_EPOCH_MAX = 253402300799  # 9999-12-31T23:59:59Z
_EPOCH_MS_FROM = 100_000_000_000  # larger numbers are milliseconds (seconds would be beyond year 5000)
_TS_HELP = "must be an ISO 8601 timestamp such as 2026-01-31T12:00:00Z"


def parse_timestamp(value: Any, path: str, *, epoch: bool = False) -> datetime | None:
    """An ISO 8601 timestamp (offset or Z; none means UTC) as aware UTC; Go's zero time and null are None.

    With `epoch`, numbers are accepted as Unix seconds (or milliseconds when that large).
    """
    if value is None:
        return None
    if epoch and isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(value, path)
    if not isinstance(value, str):
        raise PayloadError(path, _TS_HELP)
    match = _ISO.fullmatch(value.strip())
    if match is None:
        raise PayloadError(path, _TS_HELP)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        local = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro
        )
    except ValueError:
        raise PayloadError(path, _TS_HELP) from None
    if local.year == 1:
        # Alertmanager and Grafana send Go's zero time ("0001-01-01T00:00:00Z") for "not set".
        return None
    offset = _offset(zone, path)
    try:
        return (local - offset).replace(tzinfo=UTC)
    except OverflowError:
        raise PayloadError(path, _TS_HELP) from None


def _offset(zone: str | None, path: str) -> timedelta:
    if zone is None or zone in ("Z", "z", "UTC"):
        return timedelta(0)
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise PayloadError(path, _TS_HELP)
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if zone[0] == "-" else offset


def _from_epoch(value: float, path: str) -> datetime:
    seconds = float(value)
    if not math.isfinite(seconds):
        raise PayloadError(path, _TS_HELP)
    if seconds >= _EPOCH_MS_FROM:
        seconds /= 1000
    if not 0 <= seconds <= _EPOCH_MAX:
        raise PayloadError(path, "must be a Unix time between 1970 and 9999")
    return datetime.fromtimestamp(seconds, UTC)


def as_utc(when: datetime) -> datetime:
    """`when` in UTC; a naive value is taken to be UTC already."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def not_after(when: datetime | None, now: datetime) -> datetime | None:
    """`when`, or `now` when the sender's clock put it in the future (keeps timelines ordered)."""
    return None if when is None else min(when, now)


# --- links --------------------------------------------------------------------------------------


def make_link(kind: str, url: Any, title: str = "") -> dict[str, str] | None:
    """A link for the UI, or None unless `url` is an absolute http(s) URL (other schemes could run script)."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > MAX_URL:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return {"kind": kind, "url": url, "title": clip(" ".join(title.split()), MAX_LINK_TITLE)}


def unique_links(links: Iterable[dict[str, str] | None]) -> list[dict[str, str]]:
    """The links without Nones and without repeating a (kind, url) pair, first one kept."""
    seen: set[tuple[str, str]] = set()
    result: list[dict[str, str]] = []
    for link in links:
        if link is None or (link["kind"], link["url"]) in seen:
            continue
        seen.add((link["kind"], link["url"]))
        result.append(link)
    return result
