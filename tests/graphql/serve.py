"""Serve `create_api` on a given database in separate processes (granian, the server Reflex runs on).

`create_app` is the factory granian imports; it installs the PostgreSQL LISTEN/NOTIFY bus for the
process lifetime, as the real app's lifespan does. `serving(url, count)` starts `count` servers on
free ports and stops them (SIGTERM, then SIGKILL) on exit. Used by the cross-process subscription
test and by tests/perf/bench_graphql.py.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path

import httpx
from fastapi import FastAPI

from sentinel_app import bus
from sentinel_app.api import create_api
from sentinel_app.db import create_db_engine
from tests.support.app_process import ARTIFACTS_DIR, free_port

DATABASE_ENV = "SENTINEL_TEST_GRAPHQL_DATABASE_URL"
# Set to 1 to move everything alive after startup out of the garbage collector's reach (gc.freeze):
# full collections then stop scanning the ~10^5 long-lived objects of the app on every request burst.
GC_FREEZE_ENV = "SENTINEL_TEST_GC_FREEZE"
REPO_ROOT = Path(__file__).resolve().parents[2]


def create_app() -> FastAPI:
    """The API app on the database named by DATABASE_ENV, with the process-wide bus started."""
    url = os.environ[DATABASE_ENV]
    engine = create_db_engine(url)
    api = create_api(engine=engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        event_bus = bus.create_bus(url)
        bus.set_bus(event_bus)
        await event_bus.start()
        if os.environ.get(GC_FREEZE_ENV) == "1":
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await event_bus.stop()
            engine.dispose()

    api.router.lifespan_context = lifespan
    return api


def _granian() -> str:
    candidate = Path(sys.executable).parent / "granian"
    found = str(candidate) if candidate.exists() else shutil.which("granian")
    if not found:
        raise RuntimeError("granian is not installed in this environment")
    return found


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-5000:]}")
            with suppress(httpx.HTTPError):
                if client.get(f"{url}/healthz").status_code == 200:
                    return
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} not ready after {timeout:.0f} s:\n{log.read_text()[-5000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def serving(
    database_url: str, count: int = 1, *, timeout: float = 60.0, gc_freeze: bool = False
) -> Iterator[list[str]]:
    """Start `count` app processes on `database_url`; yields their base URLs."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    env = {
        **os.environ,
        DATABASE_ENV: database_url,
        GC_FREEZE_ENV: "1" if gc_freeze else "0",
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    started: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for index in range(count):
            port = free_port()
            log = ARTIFACTS_DIR / f"graphql-server-{index}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [
                        _granian(),
                        "--interface",
                        "asgi",
                        "--factory",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                        "tests.graphql.serve:create_app",
                    ],
                    cwd=REPO_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started.append((f"http://127.0.0.1:{port}", process, log))
        for url, process, log in started:
            _wait_ready(url, process, log, timeout)
        yield [url for url, _, _ in started]
    finally:
        for _, process, _ in started:
            _stop(process)
