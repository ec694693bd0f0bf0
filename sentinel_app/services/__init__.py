"""Typed database operations, one module per domain; each takes a session and keyword arguments."""
