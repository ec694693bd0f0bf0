"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from sentinel_app import __version__
from sentinel_app.migrations import current_revision, head_revision
from sentinel_app.runtime import Runtime, get_runtime

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process is serving requests."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
async def readyz() -> JSONResponse:
    """Readiness: database reachable, migrations at head, Ray reachable.

    503 when the database or schema is not usable; 200 with status "degraded" when only Ray
    is down, because ingestion and acknowledgement still work without it.
    """
    report = await readiness(get_runtime())
    return JSONResponse(report, status_code=503 if report["status"] == "unavailable" else 200)


async def readiness(runtime: Runtime) -> dict[str, Any]:
    """Run every readiness check and summarise them."""
    database, ray = await asyncio.gather(
        asyncio.to_thread(_check_database, runtime.engine), _check_ray(runtime)
    )
    escalation = (
        await _check_escalation(runtime) if ray["ok"] else {"ok": False, "error": "Ray is not running"}
    )
    checks = {"database": database[0], "migrations": database[1], "ray": ray, "escalation": escalation}
    if not (checks["database"]["ok"] and checks["migrations"]["ok"]):
        status = "unavailable"
    elif not (ray["ok"] and escalation["ok"]):
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "version": __version__, "checks": checks}


def _check_database(engine: sa.Engine) -> tuple[dict[str, Any], dict[str, Any]]:
    began = time.monotonic()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        current = current_revision(engine)
    except Exception as exc:  # any driver error means "not reachable"
        error = str(getattr(exc, "orig", exc)).splitlines()[0]
        return {"ok": False, "error": error}, {"ok": False, "error": "database unreachable"}
    db = {
        "ok": True,
        "backend": engine.dialect.name,
        "latency_ms": round((time.monotonic() - began) * 1000, 2),
    }
    head = head_revision()
    return db, {"ok": current == head, "current": current, "head": head}


async def _check_ray(runtime: Runtime) -> dict[str, Any]:
    ray = runtime.ray
    if ray.state != "running":
        return {"ok": False, "state": ray.state, "error": ray.error or f"Ray is {ray.state}"}
    try:
        reply = await ray.ping()
    except Exception as exc:  # timeouts and dead actors alike
        return {"ok": False, "state": ray.state, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "state": ray.state, "address": runtime.settings.ray_address or "local", **reply}


async def _check_escalation(runtime: Runtime) -> dict[str, Any]:
    """Every escalation host answers; while they start, escalation runs late but nothing is lost."""
    relay = runtime.relay
    if relay is None or not relay.hosts:
        return {"ok": False, "state": "starting", "error": "escalation hosts are starting"}
    try:
        reports = await asyncio.wait_for(asyncio.gather(*(h.ping.remote() for h in relay.hosts)), 2.0)
    except Exception as exc:  # a host restarting (it rebuilds itself from the database)
        return {"ok": False, "state": "degraded", "error": f"{type(exc).__name__}: {exc}"}
    return {
        "ok": True,
        "hosts": [
            {k: r[k] for k in ("shard", "actors", "timers", "steps", "errors", "rehydrated")} for r in reports
        ],
        "relay_failures": relay.failures,
    }
