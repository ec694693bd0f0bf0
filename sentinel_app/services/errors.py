"""Errors raised by services; the API layer maps them to HTTP status codes."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: a machine-readable code, a message and the offending field."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(ServiceError):
    """Input is well-formed but not acceptable."""

    code = "validation_error"
    status = 422


class NotFound(ServiceError):
    """The object does not exist (or is not visible to the caller)."""

    code = "not_found"
    status = 404


class Conflict(ServiceError):
    """The change conflicts with the current state."""

    code = "conflict"
    status = 409
