"""The process-wide runtime: settings, database engine and Ray, started by the app lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sentinel_app import bus
from sentinel_app.db import get_engine
from sentinel_app.ray_runtime import RayRuntime
from sentinel_app.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What one app process holds for its lifetime."""

    settings: Settings
    engine: sa.Engine
    ray: RayRuntime
    relay: Any = None


_current: Runtime | None = None


def get_runtime() -> Runtime:
    """The running process's runtime (created lazily, e.g. for tests that skip the lifespan)."""
    global _current
    if _current is None:
        settings = get_settings()
        _current = Runtime(settings=settings, engine=get_engine(), ray=RayRuntime(settings))
    return _current


@contextlib.asynccontextmanager
async def lifespan() -> AsyncIterator[Runtime]:
    """Start the event bus and (in the background) Ray for the app's lifetime; stop both cleanly."""
    runtime = get_runtime()
    logging.basicConfig(
        level=runtime.settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Readiness checks read the schema revision on every probe; that is not news.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for channel, enabled in runtime.settings.channels.items():
        if not enabled:
            log.info("notification channel %s disabled: no credentials configured", channel)
    event_bus = bus.get_bus()
    await event_bus.start()
    await runtime.ray.start()
    # Everything imported so far lives as long as the process: keep it out of the collector's
    # way, whose full passes otherwise stall a request now and then (measured: 150 to 190 ms).
    gc.freeze()
    housekeeping = asyncio.create_task(_housekeeping(runtime))
    relay = asyncio.create_task(_escalation_relay(runtime))
    try:
        yield runtime
    finally:
        relay.cancel()
        housekeeping.cancel()
        await runtime.ray.stop()
        await event_bus.stop()
        runtime.engine.dispose()


RELAY_RESTART_S = 5.0


async def _escalation_relay(runtime: Runtime) -> None:
    """Once Ray is up, create the escalation/schedule hosts and forward bus events to them."""
    while runtime.ray.state == "starting":
        await asyncio.sleep(0.2)
    if runtime.ray.state != "running":
        return  # /readyz reports Ray as degraded; escalation catches up when the app restarts with Ray
    from actors.relay import Relay

    while True:
        relay = Relay(runtime.settings)
        runtime.relay = relay
        try:
            await relay.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # Ray restarting: hosts rebuild themselves from the database meanwhile
            log.exception("escalation relay stopped; restarting in %.0f s", RELAY_RESTART_S)
        await asyncio.sleep(RELAY_RESTART_S)


HOUSEKEEPING_PERIOD_S = 15.0


async def _housekeeping(runtime: Runtime) -> None:
    """Periodic database chores of this process (lifting expired silences)."""
    from sentinel_app.db import session_scope, utcnow
    from sentinel_app.services.alerts import expire_silences

    def _once() -> list[int]:
        with session_scope(write=True, engine=runtime.engine) as session:
            return expire_silences(session, now=utcnow())

    while True:
        await asyncio.sleep(HOUSEKEEPING_PERIOD_S)
        try:
            lifted = await asyncio.to_thread(_once)
        except Exception:  # a failed round is retried next period; the database may be restarting
            log.exception("housekeeping round failed")
            continue
        if lifted:
            log.info("lifted %d expired silences", len(lifted))
