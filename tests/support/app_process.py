"""Run the real production app (`sentinel up`) as a subprocess for end-to-end tests.

The app gets a free port, a temporary `SENTINEL_DATA_DIR` (so the embedded SQLite database)
and its own Reflex web/state directories. It is started in a new session, and every process
it spawns inherits a unique `SENTINEL_TEST_APP_ID` in its environment: `sentinel up` runs
Reflex in a session of its own and Ray moves some helpers into other process groups, so
stopping the app kills the process group first and then every process carrying that id.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
MARKER_ENV = "SENTINEL_TEST_APP_ID"

# A cold start builds the frontend (bun install + vite) and starts Ray before the app is
# ready: ~20 s here, more on a slow machine with empty caches. Below pytest-timeout (300 s)
# so a hung start fails with the app log rather than a bare timeout.
DEFAULT_START_TIMEOUT = float(os.environ.get("SENTINEL_TEST_APP_TIMEOUT", "240"))


class AppStartError(RuntimeError):
    """The app exited or did not become healthy in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _venv_bin(name: str) -> str:
    """An executable of this interpreter's environment (the project venv)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise AppStartError(f"{name!r} is not installed; run `make install`")
    return found


def app_command(host: str, port: int) -> list[str]:
    """The command that runs the product the way `make run` does."""
    return [_venv_bin("sentinel"), "up", "--host", host, "--port", str(port), "--no-restart"]


@dataclass
class RunningApp:
    """A started app: its base URL, process and log file."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    marker: str

    def log_tail(self, max_chars: int = 20_000) -> str:
        """The end of the app's combined stdout/stderr."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "<no log>"
        return text[-max_chars:]


def _wait_ready(app: RunningApp, timeout: float) -> None:
    """Wait until /healthz and / answer and /readyz (when present) reports "ok"."""
    deadline = time.monotonic() + timeout
    last = "no attempt yet"
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            code = app.process.poll()
            if code is not None:
                raise AppStartError(f"app exited with code {code} before it was ready\n{_log_block(app)}")
            try:
                last = _readiness_problem(client, app.base_url)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if last == "":
                return
            time.sleep(0.5)
    raise AppStartError(f"app not ready after {timeout:.0f} s (last: {last})\n{_log_block(app)}")


def _readiness_problem(client: httpx.Client, base_url: str) -> str:
    """Why the app is not ready yet, or "" when it is."""
    health = client.get(f"{base_url}/healthz")
    if health.status_code != 200:
        return f"GET /healthz -> {health.status_code}"
    page = client.get(f"{base_url}/")
    if page.status_code != 200:
        return f"GET / -> {page.status_code}"
    ready = client.get(f"{base_url}/readyz")
    if ready.status_code == 404:  # no readiness endpoint: serving is enough
        return ""
    try:
        status = ready.json().get("status")
    except (ValueError, AttributeError):
        status = None
    if ready.status_code == 200 and status == "ok":
        return ""
    return f"GET /readyz -> {ready.status_code} {ready.text[:500]}"


def _log_block(app: RunningApp) -> str:
    return f"--- app log ({app.log_path}) ---\n{app.log_tail()}\n--- end of app log ---"


def _pids_with_marker(marker: str) -> list[int]:
    """Every process whose environment carries `MARKER_ENV=marker` (Linux /proc)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def stop_app(
    process: subprocess.Popen[bytes], marker: str, grace: float = 10.0, *, hard: bool = False
) -> bool:
    """Stop the app and everything it spawned; True if it shut down within `grace`.

    SIGTERM to the process group first (`sentinel up` forwards it to the server), then
    SIGKILL for whatever still carries the marker, wherever its process group is. `hard`
    skips the SIGTERM: every process dies at once, as in a crash.
    """
    graceful = not hard
    if process.poll() is None and not hard:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            graceful = False
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        leftovers = _pids_with_marker(marker)
        if not leftovers:
            break
        for pid in leftovers:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    if process.poll() is None:
        process.wait(timeout=10)
    return graceful


def app_env(
    data_dir: Path, host: str, port: int, marker: str, extra: Mapping[str, str] | None
) -> dict[str, str]:
    """The environment of the app under test: this one minus SENTINEL_*, plus test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env.update(
        {
            "SENTINEL_DATA_DIR": str(data_dir),
            "SENTINEL_HOST": host,
            "SENTINEL_PORT": str(port),
            "SENTINEL_PUBLIC_URL": f"http://{host}:{port}",
            "SENTINEL_RAY_NUM_CPUS": "1",
            "REFLEX_TELEMETRY_ENABLED": "false",
            "REFLEX_CHECK_LATEST_VERSION": "false",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONUNBUFFERED": "1",
            MARKER_ENV: marker,
        }
    )
    env.update(extra or {})
    return env


@contextmanager
def run_app(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
    log_name: str = "e2e-app.log",
) -> Iterator[RunningApp]:
    """Start the production app, wait until it is ready, stop it (and its children) on exit.

    Settings from the developer's shell (`SENTINEL_*`) are not passed on. The log goes to
    `test-artifacts/<log_name>` so CI keeps it; it is included in the error when startup fails.
    """
    port = port or free_port(host)
    data_dir.mkdir(parents=True, exist_ok=True)
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    log_path = ARTIFACTS_DIR / log_name
    marker = uuid.uuid4().hex

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            app_command(host, port),
            cwd=REPO_ROOT,
            env=app_env(data_dir, host, port, marker, extra_env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    app = RunningApp(
        base_url=f"http://{host}:{port}", process=process, log_path=log_path, data_dir=data_dir, marker=marker
    )
    try:
        _wait_ready(app, timeout)
        yield app
    finally:
        graceful = stop_app(process, marker)
        with log_path.open("a") as log:
            log.write(
                f"\n[test harness] app stopped ({'gracefully' if graceful else 'killed after grace period'})\n"
            )


def app_db_engine(data_dir: Path) -> sa.Engine:
    """An engine on a running app's SQLite file for test seeding and reads.

    Every transaction takes the write lock up front (as the app's own writers do): a deferred
    transaction that reads and then writes while the app's actors commit would fail at once
    with "database is locked" instead of waiting its turn.
    """
    from sentinel_app.db import WRITE_OPTION, create_db_engine

    return create_db_engine(f"sqlite:///{data_dir / 'sentinel.db'}", execution_options={WRITE_OPTION: True})
