"""The supervisor: one named, detached actor per app version that proves Ray can run our code."""

from __future__ import annotations

import os
import time
from typing import Any

import ray

from actors.naming import versioned
from sentinel_app import __version__


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Supervisor:
    """Answers health pings; later issues hang host management off it."""

    def __init__(self) -> None:
        self.started_at = time.time()

    def ping(self) -> dict[str, Any]:
        """Version, process id and uptime of this actor."""
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started_at, 3),
        }


def get_supervisor() -> Any:
    """The supervisor of this app version, created on first use."""
    return Supervisor.options(  # type: ignore[attr-defined]
        name=versioned("supervisor"), lifetime="detached", get_if_exists=True
    ).remote()
