"""Inbound webhooks: every sender kind, token in the path or as a Bearer header, OnCall paths."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import time
from collections import Counter
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from sentinel_app import ingest
from sentinel_app.api import metrics
from sentinel_app.api.deps import engine_of
from sentinel_app.api.errors import ApiError, error_response
from sentinel_app.api.ingest_writer import IngestWriter
from sentinel_app.db import utcnow
from sentinel_app.ingest.normalized import PayloadError
from sentinel_app.models import Integration, IntegrationKind
from sentinel_app.services import alerts as alert_service
from sentinel_app.services.integrations import (
    ONCALL_PATHS,
    CachedIntegration,
    cached_by_token,
    lookup_by_token,
    signing_secret,
)

router = APIRouter(tags=["webhooks"])

SIGNATURE_HEADER = "x-sentinel-signature"
_KINDS = {k.value for k in IntegrationKind}
# Grafana OnCall's path segment → our sender kind.
_ONCALL = {path: kind.value for kind, path in ONCALL_PATHS.items()}
_LAST_RECEIVED_GRANULARITY = dt.timedelta(seconds=10)
# Parsing this much JSON on the event loop costs well under a millisecond.
_INLINE_BODY_BYTES = 64 * 1024


def _json_body(request: Request, body: bytes) -> Any:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(415, f"expected application/json, got {content_type}", field="content-type")
    limit: int = request.app.state.max_body_bytes
    if len(body) > limit:
        raise ApiError(413, f"request body over {limit} bytes", field="body")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            400, f"request body is not valid JSON: {exc}", field="body", code="malformed_json"
        ) from None


def _integration(engine: sa.Engine, token: str, found: CachedIntegration | None) -> CachedIntegration:
    found = found or lookup_by_token(engine, token)
    if found is None:
        raise ApiError(404, "unknown integration", field="token")
    if not found.integration.enabled:
        raise ApiError(403, "this integration is disabled", field="token")
    return found


def _check_signature(request: Request, integration: Integration, body: bytes) -> None:
    secret = signing_secret(integration)
    if secret is None:
        return
    given = request.headers.get(SIGNATURE_HEADER, "")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, f"missing or wrong {SIGNATURE_HEADER} header", field=SIGNATURE_HEADER)


def _prepare(
    request: Request,
    kind: str,
    token: str,
    body: bytes,
    payload: Any,
    lenient: bool,
    cached: CachedIntegration | None = None,
) -> tuple[alert_service.IngestRequest, bool]:
    """Authenticate and normalise one request: what to write, and whether to stamp last_received_at.

    `cached` is the token's integration when the caller already has it from memory.
    """
    cached = _integration(engine_of(request), token, cached)
    integration = cached.integration
    _check_signature(request, integration, body)
    now = utcnow()
    parsed = ingest.parse(kind, payload, grouping=integration.grouping, lenient=lenient, now=now)
    # One lock order for the resolves and acknowledgements of every request (a stable sort keeps
    # each key's own order), so concurrent writers rarely deadlock; firings are sorted when written.
    parsed.sort(key=lambda a: a.dedup_key)
    # Writing last_received_at on every request would serialise all senders of one integration.
    touch = (
        integration.last_received_at is None
        or now - integration.last_received_at > _LAST_RECEIVED_GRANULARITY
    )
    if touch:
        integration.last_received_at = now
    return alert_service.IngestRequest(integration, parsed, cached.routes), touch


def _writer(request: Request) -> IngestWriter:
    # Created on the event loop, so concurrent requests cannot race to make two.
    state = request.app.state
    engine = engine_of(request)
    writer: IngestWriter | None = getattr(state, "ingest_writer", None)
    if writer is None or writer.engine is not engine:
        writer = state.ingest_writer = IngestWriter.for_engine(engine)
    return writer


def _answer(kind: str, results: list[alert_service.IngestResult]) -> dict[str, Any]:
    # One metric update per outcome, not per alert: each labels() lookup takes a lock.
    for outcome, count in Counter(r.action.value for r in results).items():
        metrics.ALERTS.labels(source=kind, outcome=outcome).inc(count)
        if outcome == "occurrence":
            metrics.DEDUPLICATED.labels(source=kind).inc(count)
    return {
        "status": "ok",
        "alerts": [
            {"action": r.action.value, "alert_id": r.alert_id, "dedup_key": r.dedup_key} for r in results
        ],
    }


async def _handle(request: Request, kind: str, token: str | None, *, lenient: bool = False) -> JSONResponse:
    began = time.perf_counter()
    if kind not in _KINDS:
        raise ApiError(404, f"unknown sender kind {kind!r}", field="kind")
    metrics.RECEIVED.labels(source=kind).inc()
    body = await request.body()
    payload = _json_body(request, body)
    if token is None:
        token = _token_from(request, kind, payload)
    try:
        known = cached_by_token(engine_of(request), token) if len(body) <= _INLINE_BODY_BYTES else None
        if known is not None:
            # A small payload of a known integration is cheaper to parse here than to hand to a thread.
            work, touch = _prepare(request, kind, token, body, payload, lenient, known)
        else:
            work, touch = await run_in_threadpool(_prepare, request, kind, token, body, payload, lenient)
        results = await asyncio.wrap_future(_writer(request).submit(work, touch=touch))
    except PayloadError as exc:
        if kind == IntegrationKind.PAGERDUTY:
            return error_response(
                400,
                "invalid_payload",
                exc.message,
                exc.field,
                extra={
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": [exc.message],
                },
            )
        raise
    finally:
        metrics.LATENCY.labels(source=kind).observe(time.perf_counter() - began)
    result = _answer(kind, results)
    if kind == IntegrationKind.PAGERDUTY:
        dedup = result["alerts"][0]["dedup_key"] if result["alerts"] else None
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": dedup}, status_code=202
        )
    return JSONResponse(result, status_code=202)


def _token_from(request: Request, kind: str, payload: Any) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if kind == IntegrationKind.PAGERDUTY and isinstance(payload, dict):
        routing_key = payload.get("routing_key")
        if isinstance(routing_key, str) and routing_key:
            return routing_key
        raise ApiError(400, "'routing_key' is missing", field="routing_key")
    raise ApiError(
        401,
        "integration token missing: put it in the URL or an Authorization: Bearer header",
        field="token",
        headers={"WWW-Authenticate": "Bearer"},
    )


@router.post("/api/v1/webhooks/pagerduty/enqueue", status_code=202, summary="PagerDuty Events API v2")
@router.post("/v2/enqueue", status_code=202, include_in_schema=False)
async def pagerduty_enqueue(request: Request) -> JSONResponse:
    """PagerDuty Events API v2: the integration token is the event's `routing_key`."""
    return await _handle(request, "pagerduty", None)


@router.post("/api/v1/webhooks/{kind}/{token}", status_code=202, summary="Receive alerts (token in the path)")
async def webhook_with_token(kind: str, token: str, request: Request) -> JSONResponse:
    """Receive a sender's payload; `kind` selects the format (alertmanager, grafana_alerting, …)."""
    return await _handle(request, kind, token)


@router.post("/api/v1/webhooks/{kind}", status_code=202, summary="Receive alerts (token as Bearer header)")
async def webhook_with_header(kind: str, request: Request) -> JSONResponse:
    """Receive a sender's payload with the integration token in `Authorization: Bearer`."""
    return await _handle(request, kind, None)


@router.post("/integrations/v1/{oncall_kind}/{token}/", status_code=202, include_in_schema=False)
@router.post("/integrations/v1/{oncall_kind}/{token}", status_code=202, include_in_schema=False)
async def grafana_oncall_path(oncall_kind: str, token: str, request: Request) -> JSONResponse:
    """Grafana OnCall's integration URLs, so migrating senders only change the host name."""
    kind = _ONCALL.get(oncall_kind)
    if kind is None:
        raise ApiError(404, f"unknown Grafana OnCall integration type {oncall_kind!r}", field="kind")
    return await _handle(request, kind, token, lenient=kind == "webhook")
