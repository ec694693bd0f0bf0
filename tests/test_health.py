"""/healthz and /readyz against a real database and a real Ray runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa

from sentinel_app import runtime as runtime_module
from sentinel_app.api import create_api
from sentinel_app.db import create_db_engine
from sentinel_app.ray_runtime import RayRuntime
from sentinel_app.runtime import Runtime
from sentinel_app.settings import Settings, get_settings


async def _runtime(engine: sa.Engine, *, start_ray: bool) -> Runtime:
    runtime = Runtime(settings=get_settings(), engine=engine, ray=RayRuntime(get_settings()))
    if start_ray:
        await runtime.ray.start()
        assert runtime.ray._task is not None
        await runtime.ray._task
    return runtime


@pytest_asyncio.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_api())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.mark.asyncio
async def test_healthz(client: httpx.AsyncClient) -> None:
    reply = await client.get("/healthz")
    assert reply.status_code == 200 and reply.json()["status"] == "ok"


@pytest.mark.asyncio
@pytest.mark.usefixtures("ray_cluster")
async def test_ready_when_database_migrated_and_ray_answers(
    engine: sa.Engine, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from actors.relay import Relay

    runtime = await _runtime(engine, start_ray=True)
    monkeypatch.setattr(runtime_module, "_current", runtime)
    starting = (await client.get("/readyz")).json()
    assert starting["status"] == "degraded" and starting["checks"]["escalation"]["state"] == "starting"
    url = engine.url.render_as_string(hide_password=False)
    runtime.relay = Relay(Settings(database_url=url, escalation_hosts=1))
    runtime.relay.ensure_hosts(dispatchers=False)
    try:
        for host in runtime.relay.hosts:
            await host.wait_ready.remote()
        reply = await client.get("/readyz")
        body = reply.json()
        assert reply.status_code == 200, body
        assert body["status"] == "ok"
        assert body["checks"]["database"]["ok"] and body["checks"]["database"]["backend"] == engine.dialect.name
        assert body["checks"]["migrations"]["ok"]
        assert body["checks"]["ray"]["ok"] and body["checks"]["ray"]["pid"] > 0
        assert body["checks"]["escalation"]["hosts"][0]["errors"] == 0
    finally:
        for host in [*runtime.relay.hosts, *runtime.relay.schedule_hosts]:
            ray.kill(host, no_restart=True)


@pytest.mark.asyncio
async def test_degraded_but_serving_while_ray_is_not_running(
    engine: sa.Engine, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "_current", await _runtime(engine, start_ray=False))
    reply = await client.get("/readyz")
    assert reply.status_code == 200
    assert reply.json()["status"] == "degraded"
    assert reply.json()["checks"]["ray"] == {"ok": False, "state": "stopped", "error": "Ray is stopped"}


@pytest.mark.asyncio
async def test_unavailable_when_the_schema_is_not_migrated(
    empty_db_url: str, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_db_engine(empty_db_url)
    monkeypatch.setattr(runtime_module, "_current", await _runtime(engine, start_ray=False))
    reply = await client.get("/readyz")
    engine.dispose()
    assert reply.status_code == 503
    checks = reply.json()["checks"]
    assert checks["database"]["ok"] and not checks["migrations"]["ok"]
    assert checks["migrations"]["current"] is None


@pytest.mark.asyncio
async def test_unavailable_when_the_database_is_unreachable(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_db_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    monkeypatch.setattr(runtime_module, "_current", await _runtime(engine, start_ray=False))
    reply = await client.get("/readyz")
    assert reply.status_code == 503
    assert reply.json()["status"] == "unavailable"
    assert "refused" in reply.json()["checks"]["database"]["error"].lower()
