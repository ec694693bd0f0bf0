"""Connecting to Ray: a local runtime by default, or an existing cluster via SENTINEL_RAY_ADDRESS."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from sentinel_app.settings import ConfigError, Settings

log = logging.getLogger(__name__)

# A local runtime for one app process needs little shared memory.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


def ray_endpoint(address: str) -> tuple[str, int]:
    """Host and port of a Ray address (``ray://h:10001``, ``h:6379``)."""
    parsed = urlparse(address if "://" in address else f"gcs://{address}")
    if not parsed.hostname or not parsed.port:
        raise ConfigError("SENTINEL_RAY_ADDRESS", f"expected host:port or ray://host:port, got {address!r}")
    return parsed.hostname, parsed.port


def check_ray_address(address: str, *, timeout: float = 3.0) -> None:
    """Fail fast, naming the setting, when a configured Ray cluster cannot be reached."""
    if not address:
        return
    if address == "auto":
        return
    host, port = ray_endpoint(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            "SENTINEL_RAY_ADDRESS", f"cannot reach Ray at {host}:{port} ({exc.strerror or exc})"
        ) from None


@dataclass
class RayRuntime:
    """The process's Ray connection; starts in the background so the web tier serves at once."""

    settings: Settings
    state: str = "stopped"
    error: str = ""
    started_at: float = 0.0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def _init_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "namespace": self.settings.ray_namespace,
            "include_dashboard": False,
            "log_to_driver": False,
            "ignore_reinit_error": True,
            "configure_logging": False,
        }
        if self.settings.ray_address:
            kwargs["address"] = self.settings.ray_address
        else:
            kwargs["address"] = "local"
            kwargs["num_cpus"] = self.settings.ray_num_cpus or os.cpu_count() or 1
            kwargs["object_store_memory"] = LOCAL_OBJECT_STORE_BYTES
        return kwargs

    def _connect(self) -> None:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not ray.is_initialized():
            ray.init(**self._init_kwargs())

    async def start(self) -> None:
        """Begin connecting in a worker thread; `state` tells how far it got."""
        self.state = "starting"
        self._task = asyncio.create_task(self._start())

    async def _start(self) -> None:
        began = time.monotonic()
        try:
            await asyncio.to_thread(self._connect)
            from actors.supervisor import get_supervisor

            await asyncio.wait_for(get_supervisor().ping.remote(), timeout=60)
        except Exception as exc:  # reported through /readyz, never crashes the web tier
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("Ray unavailable: %s", self.error)
            return
        self.state, self.started_at = "running", time.monotonic()
        log.info(
            "Ray ready in %.1f s (%s)", time.monotonic() - began, self.settings.ray_address or "local runtime"
        )

    async def ping(self, *, timeout: float = 2.0) -> dict[str, Any]:
        """Round-trip a call to the supervisor actor."""
        from actors.supervisor import get_supervisor

        began = time.monotonic()
        reply: dict[str, Any] = await asyncio.wait_for(get_supervisor().ping.remote(), timeout=timeout)
        reply["latency_ms"] = round((time.monotonic() - began) * 1000, 2)
        return reply

    async def stop(self) -> None:
        """Disconnect (and stop a local runtime)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        import ray

        if ray.is_initialized():
            await asyncio.to_thread(ray.shutdown)
        self.state = "stopped"
