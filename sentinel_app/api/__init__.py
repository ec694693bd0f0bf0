"""HTTP API: REST under /api/v1, webhooks, health checks and metrics."""

from sentinel_app.api.app import create_api

__all__ = ["create_api"]
