"""The FastAPI application that Reflex mounts in front of its own routes."""

from __future__ import annotations

from fastapi import FastAPI

from sentinel_app import __version__
from sentinel_app.api import health


def create_api() -> FastAPI:
    """Build the API app: health at the root, REST under /api/v1."""
    api = FastAPI(
        title="Fangorn Sentinel",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    api.include_router(health.router)
    return api
