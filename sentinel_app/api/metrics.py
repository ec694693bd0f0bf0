"""Prometheus metrics of this process, served at /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter(
    "sentinel_ingest_requests_total",
    "Webhook requests received, by sender kind",
    ["source"],
    registry=REGISTRY,
)
ALERTS = Counter(
    "sentinel_ingest_alerts_total",
    "Normalised alerts ingested, by sender and outcome (create, occurrence, acknowledge, resolve, ignore)",
    ["source", "outcome"],
    registry=REGISTRY,
)
DEDUPLICATED = Counter(
    "sentinel_ingest_deduplicated_total",
    "Repeat firings folded into an open alert",
    ["source"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "sentinel_api_rejected_total", "Requests refused, by reason (error code)", ["reason"], registry=REGISTRY
)
LATENCY = Histogram(
    "sentinel_ingest_request_seconds",
    "Webhook request handling time",
    ["source"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Metrics in the Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
