"""Scalars, enums and argument parsing shared by the resolvers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ariadne import EnumType, ScalarType
from graphql import GraphQLError

from sentinel_app.api.gql.errors import BAD_USER_INPUT, bad_input

MAX_PAGE = 100
DEFAULT_PAGE = 50
_MAX_ID = 2**63 - 1

datetime_scalar = ScalarType("DateTime")
json_scalar = ScalarType("JSON")


@datetime_scalar.serializer
def serialize_datetime(value: dt.datetime) -> str:
    """Aware datetimes as ISO 8601 in UTC with a Z."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@datetime_scalar.value_parser
def parse_datetime(value: Any) -> dt.datetime:
    """ISO 8601 with an offset; naive or malformed values are refused."""
    if not isinstance(value, str):
        raise GraphQLError("DateTime must be an ISO 8601 string", extensions={"code": BAD_USER_INPUT})
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise GraphQLError(
            f"{value!r} is not an ISO 8601 instant", extensions={"code": BAD_USER_INPUT}
        ) from None
    if parsed.tzinfo is None:
        raise GraphQLError(
            f"{value!r} needs a UTC offset (e.g. Z or +02:00)", extensions={"code": BAD_USER_INPUT}
        )
    return parsed.astimezone(dt.UTC)


@json_scalar.serializer
def serialize_json(value: Any) -> Any:
    """JSON values go out as they are."""
    return value


enums = [
    EnumType("AlertStatus", {"FIRING": "firing", "ACKNOWLEDGED": "acknowledged", "RESOLVED": "resolved"}),
    EnumType("Severity", {"CRITICAL": "critical", "ERROR": "error", "WARNING": "warning", "INFO": "info"}),
    EnumType("Role", {"ADMIN": "admin", "RESPONDER": "responder", "VIEWER": "viewer"}),
    EnumType("IncidentStatus", {"OPEN": "open", "RESOLVED": "resolved"}),
    EnumType("PushPlatform", {"APNS": "apns", "FCM": "fcm"}),
    EnumType("OnCallSource", {"LAYER": "layer", "OVERRIDE": "override"}),
]


def parse_id(value: object, field: str) -> int:
    """A GraphQL ID as a row id; anything else is BAD_USER_INPUT naming `field`."""
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) <= _MAX_ID:
        raise bad_input(f"{value!r} is not a valid id", field)
    return int(text)


def optional_id(value: object, field: str) -> int | None:
    """`parse_id` for an optional argument."""
    return None if value is None else parse_id(value, field)


def page_size(value: int | None, field: str = "first") -> int:
    """A page size between 1 and MAX_PAGE (DEFAULT_PAGE when not given)."""
    if value is None:
        return DEFAULT_PAGE
    if not 1 <= value <= MAX_PAGE:
        raise bad_input(f"{field} must be between 1 and {MAX_PAGE}", field)
    return value


def text_arg(value: str | None, field: str, *, max_length: int = 5_000, required: bool = False) -> str:
    """A free-text argument, trimmed and bounded."""
    text = (value or "").strip()
    if required and not text:
        raise bad_input(f"{field} must not be empty", field)
    if len(text) > max_length:
        raise bad_input(f"{field} is longer than {max_length} characters", field)
    return text
