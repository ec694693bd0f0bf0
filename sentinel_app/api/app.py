"""The FastAPI application that Reflex mounts in front of its own routes."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from fastapi import FastAPI

from sentinel_app import __version__
from sentinel_app.api import (
    alerts,
    channels,
    directory,
    errors,
    escalation_policies,
    graphql_app,
    health,
    inbound,
    integrations,
    keys,
    metrics,
    outgoing_webhooks,
    people,
    schedules,
    webhooks,
)
from sentinel_app.api.limits import BodyLimit
from sentinel_app.settings import get_settings


def _runtime_engine() -> sa.Engine:
    from sentinel_app.runtime import get_runtime

    return get_runtime().engine


def create_api(*, engine: sa.Engine | None = None, max_body_bytes: int | None = None) -> FastAPI:
    """Build the API app: health and metrics at the root, REST under /api/v1, webhooks."""
    api = FastAPI(
        title="Fangorn Sentinel",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        description="REST API of Fangorn Sentinel. Authenticate with `Authorization: Bearer <API key>`; "
        "webhooks authenticate with their integration token.",
    )
    factory: Callable[[], sa.Engine] = (lambda: engine) if engine is not None else _runtime_engine
    api.state.engine_factory = factory
    api.state.max_body_bytes = max_body_bytes or get_settings().max_body_bytes
    errors.install(api)
    for router in (
        health.router,
        metrics.router,
        webhooks.router,
        inbound.router,
        alerts.router,
        directory.router,
        integrations.router,
        keys.router,
        schedules.router,
        escalation_policies.router,
        people.router,
        outgoing_webhooks.router,
        channels.router,
    ):
        api.include_router(router)
    graphql_app.mount(api)
    api.add_middleware(BodyLimit, limit=api.state.max_body_bytes)
    return api
