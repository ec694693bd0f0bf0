"""GraphQL errors: every failure leaves with `extensions.code` (and `extensions.field` when known)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ariadne import unwrap_graphql_error
from graphql import GraphQLError, GraphQLSyntaxError

from sentinel_app.api.errors import ApiError
from sentinel_app.services.errors import ServiceError, ValidationFailed

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"
CONFLICT = "CONFLICT"
INTERNAL = "INTERNAL_SERVER_ERROR"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
EVENTS_LOST = "EVENTS_LOST"
RATE_LIMITED = "RATE_LIMITED"

_SNAKE = re.compile(r"_([a-z0-9])")
_BY_STATUS = {401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT, 429: RATE_LIMITED}

# Ariadne logs every error with its traceback; expected ones (bad input, denied access) are not news.
LOGGER_NAME = "sentinel_app.graphql"
log = logging.getLogger(LOGGER_NAME)


def bad_input(message: str, field: str | None = None) -> ValidationFailed:
    """A BAD_USER_INPUT error to raise from a resolver."""
    return ValidationFailed(message, field=field)


def not_found(what: str, ident: object, field: str) -> ApiError:
    """A NOT_FOUND error (also used for objects of teams the caller cannot see)."""
    return ApiError(404, f"{what} {ident} not found", field=field)


def unauthenticated(message: str = "authentication required: send Authorization: Bearer <token>") -> ApiError:
    """An UNAUTHENTICATED error."""
    return ApiError(401, message)


def camel_field(field: str | None) -> str | None:
    """A service's field path in the schema's spelling: ``layers[0].start_at`` → ``layers[0].startAt``."""
    if not field:
        return field
    return _SNAKE.sub(lambda match: match.group(1).upper(), field)


@contextmanager
def renamed_fields(names: dict[str, str]) -> Iterator[None]:
    """Report service errors on `names` (service field → argument) under the argument's name."""
    try:
        yield
    except ServiceError as exc:
        if exc.field in names:
            exc.field = names[exc.field]
        raise


def classify(error: GraphQLError) -> tuple[str, str, str | None]:
    """(code, message, field) for a GraphQL error; unexpected failures get a generic message."""
    original = unwrap_graphql_error(error)
    if isinstance(original, ApiError):
        code = _BY_STATUS.get(original.status, BAD_USER_INPUT)
        return code, original.message, camel_field(original.field)
    if isinstance(original, ServiceError):
        # By HTTP status, as REST answers: 401, 403, 404, 409, 429; the rest is the caller's input.
        code = _BY_STATUS.get(original.status, BAD_USER_INPUT)
        return code, original.message, camel_field(original.field)
    preset = (error.extensions or {}).get("code")
    if isinstance(preset, str):
        return preset, error.message, None
    if isinstance(error, GraphQLSyntaxError):
        return PARSE_FAILED, error.message, None
    if original is not None and error.path is not None:
        return INTERNAL, "internal server error", None
    # Without a path the error came from parsing, validation or coercing variables/literals.
    if original is not None or error.message.startswith(("Variable '$", "Argument '")):
        return BAD_USER_INPUT, error.message, None
    return VALIDATION_FAILED, error.message, None


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """Ariadne's error formatter: the GraphQL error shape plus `extensions.code` and `field`."""
    code, message, field = classify(error)
    formatted: dict[str, Any] = dict(error.formatted)
    formatted["message"] = message
    extensions = dict(formatted.get("extensions") or {})
    extensions["code"] = code
    if field:
        extensions["field"] = field
    retry_after = getattr(unwrap_graphql_error(error), "retry_after", None)
    if isinstance(retry_after, dt.timedelta):
        extensions["retryAfterSeconds"] = max(1, round(retry_after.total_seconds()))
    formatted["extensions"] = extensions
    if code == INTERNAL:
        log.error("unexpected error in a GraphQL resolver", exc_info=unwrap_graphql_error(error))
    return formatted


class _Silent(logging.Filter):
    """Ariadne logs every error, the caller's mistakes included; `format_error` logs unexpected ones."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


ARIADNE_LOGGER = f"{LOGGER_NAME}.ariadne"
logging.getLogger(ARIADNE_LOGGER).addFilter(_Silent())
