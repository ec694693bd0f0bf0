"""Dashboard live-update benchmark: N websocket clients on /alerts while alerts arrive at a steady rate.

Method. The production app runs as `sentinel up` on a fresh database. N simulated browser tabs
(`tests/support/reflex_client.py`: the socket.io frames a real tab sends, recorded from Chromium)
sign in with one session cookie, hydrate `/alerts` (which starts each tab's live loop) and keep
their sockets open; a real browser would spend ~100 MB and a core per tab, which this 2-core
machine cannot give 50 tabs. Then Alertmanager webhooks arrive at `--rate` alerts/s (one alert per
request, every alert new). For every (tab, alert) pair the benchmark records when the first state
delta containing the alert's title reached that tab; latency = that moment minus the moment the
webhook request was sent (so it includes ingest, commit, bus, the tab's live loop and the
websocket). The backend's memory is the RSS of the Reflex backend process (the app's own Python
process: it also hosts the Ray driver, not the Ray workers), sampled every 0.5 s.
`--browsers K` additionally opens K real Chromium pages on /alerts and reports their latency
(seen in the DOM) as a cross-check of the simulated tabs.

The client runs on the same machine and competes with the server for the cores: figures are
pessimistic for a real deployment. Prints one JSON object.
Run: `.venv/bin/python -m tests.perf.bench_dashboard [--clients 50] [--rate 20] [--seconds 20]
[--backends sqlite,postgresql] [--browsers 0]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from pages.alerts import AlertsState
from pages.state import AuthState
from sentinel_app.db import create_db_engine, utcnow
from sentinel_app.migrations import upgrade_to_head
from sentinel_app.models import Role
from sentinel_app.services import integrations, sessions, teams, users
from tests import dbsupport
from tests.support.app_process import RunningApp, run_app
from tests.support.reflex_client import ReflexTab, Update, var_key

TITLE = re.compile(r"Dashboard bench (\d+)")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _summary(values_s: list[float]) -> dict[str, Any]:
    if not values_s:
        return {"count": 0}
    ms = [v * 1000 for v in values_s]
    return {
        "count": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p90_ms": round(_percentile(ms, 0.90), 1),
        "p99_ms": round(_percentile(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
    }


def _payload(index: int) -> dict[str, Any]:
    labels = {"alertname": "DashboardBench", "instance": f"host-{index}", "severity": "warning"}
    return {
        "receiver": "sentinel",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"Dashboard bench {index}"},
                "startsAt": utcnow().isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
        "groupLabels": {"alertname": "DashboardBench"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "version": "4",
        "groupKey": f"bench-{index}",
        "truncatedAlerts": 0,
    }


# --- processes -------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def backend_pid(app: RunningApp) -> int:
    """The Reflex backend worker: the deepest `reflex run` process under `sentinel up`."""
    tree = _children()
    found, stack = app.process.pid, [app.process.pid]
    while stack:
        pid = stack.pop()
        for child in tree.get(pid, []):
            if "reflex run" in _cmdline(child):
                found = child
                stack.append(child)
    return found


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB."""
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


class Sampler(threading.Thread):
    """Samples a process's RSS in the background."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.samples: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append(rss_mb(self.pid))
            except OSError:
                return
            self.stop.wait(0.5)


# --- seeding ---------------------------------------------------------------------------------------


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'sentinel.db'}"
        return
    url = dbsupport.create_pg_database()
    try:
        yield url
    finally:
        dbsupport.drop_pg_database(url)


def _seed(url: str) -> tuple[str, str]:
    """A team, a responder with a session token, and an Alertmanager integration."""
    upgrade_to_head(url)
    engine = create_db_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        team = teams.create_team(session, name="Bench")
        person = users.create_user(session, email="bench@example.com", name="Bench", password="x" * 12)
        assert team.id is not None and person.id is not None
        teams.set_membership(session, team_id=team.id, user_id=person.id, role=Role.RESPONDER)
        _, token = integrations.create_integration(
            session, team_id=team.id, name="bench", kind="alertmanager"
        )
        _, session_token = sessions.open_session(
            session, user=person, client="bench", user_agent="bench", now=utcnow()
        )
        session.commit()
    engine.dispose()
    return token, session_token


# --- the run ---------------------------------------------------------------------------------------


async def _measure(
    app: RunningApp, hook: str, session_token: str, args: argparse.Namespace
) -> dict[str, Any]:
    storage = {var_key(AuthState.get_full_name(), "session_token"): session_token}
    arrivals: dict[int, dict[int, float]] = {}

    rows_var = var_key(AlertsState.get_full_name(), "rows")
    state_name = AlertsState.get_full_name()

    def tracker(tab_index: int) -> Any:
        seen = arrivals.setdefault(tab_index, {})

        def on_update(update: Update) -> None:
            for row in update.delta.get(state_name, {}).get(rows_var.rsplit(".", 1)[1], []):
                match = TITLE.fullmatch(row.get("title", ""))
                if match:
                    seen.setdefault(int(match.group(1)), update.at)

        return on_update

    tabs = [ReflexTab(app.base_url, "/alerts", storage=storage) for _ in range(args.clients)]
    for index, tab in enumerate(tabs):
        tab.on_update = tracker(index)
    pid = backend_pid(app)
    rss_idle = rss_mb(pid)
    connect_started = time.monotonic()
    for chunk in range(0, len(tabs), 10):  # a page load storm is not what this measures
        await asyncio.gather(*(t.connect(timeout=60) for t in tabs[chunk : chunk + 10]))
    connect_s = time.monotonic() - connect_started
    await asyncio.sleep(2.0)  # every tab's live loop subscribes after its page load
    rss_connected = rss_mb(pid)

    sampler = Sampler(pid)
    sampler.start()
    backend_cpu, client_cpu, wall = cpu_s(pid), time.process_time(), time.monotonic()
    sent: dict[int, float] = {}
    request_s: list[float] = []
    total = int(args.rate * args.seconds)
    start = time.monotonic() + 0.5
    async with httpx.AsyncClient(timeout=30) as client:

        async def send(index: int) -> None:
            await asyncio.sleep(max(0.0, start + index / args.rate - time.monotonic()))
            body = _payload(index)
            sent[index] = time.monotonic()
            reply = await client.post(hook, json=body)
            request_s.append(time.monotonic() - sent[index])
            reply.raise_for_status()

        await asyncio.gather(*(send(i) for i in range(total)))
    await asyncio.sleep(args.drain)
    sampler.stop.set()
    elapsed = time.monotonic() - wall
    backend_cpu, client_cpu = cpu_s(pid) - backend_cpu, time.process_time() - client_cpu
    latencies: list[float] = []
    missing = 0
    for index in range(len(tabs)):
        seen = arrivals.get(index, {})
        for alert, at in sent.items():
            if alert in seen:
                latencies.append(seen[alert] - at)
            else:
                missing += 1
    for tab in tabs:
        await tab.close()
    return {
        "clients": len(tabs),
        "alerts": total,
        "rate_per_s": args.rate,
        "connect_all_s": round(connect_s, 2),
        "delivery_latency": _summary(latencies),
        "deliveries_missing": missing,
        "webhook_request": _summary(request_s),
        "cpu_cores_used": {
            "backend": round(backend_cpu / elapsed, 2),
            "benchmark_clients": round(client_cpu / elapsed, 2),
            "machine_load_1m_at_end": os.getloadavg()[0],
        },
        "backend_rss_mb": {
            "idle": rss_idle,
            "with_clients": rss_connected,
            "peak_during_run": max(sampler.samples, default=float("nan")),
            "end": sampler.samples[-1] if sampler.samples else float("nan"),
        },
    }


def _browsers(app: RunningApp, hook: str, session_token: str, count: int, alerts: int) -> dict[str, Any]:
    """Cross-check with real Chromium pages: when each new alert becomes visible in the DOM."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    latencies: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = []
        for _ in range(count):
            context = browser.new_context(base_url=app.base_url)
            context.add_cookies([{"name": "sentinel_session", "value": session_token, "url": app.base_url}])
            page = context.new_page()
            page.goto("/alerts")
            page.wait_for_selector("#alerts-count")
            pages.append(page)
        time.sleep(2)
        for n in range(alerts):
            index = 10_000_000 + n
            started = time.monotonic()
            httpx.post(hook, json=_payload(index), timeout=30).raise_for_status()
            for page in pages:
                page.locator(".alert-title", has_text=f"Dashboard bench {index}").wait_for(timeout=30_000)
                latencies.append(time.monotonic() - started)
            time.sleep(0.3)
        browser.close()
    # Pages are checked one after another, so later pages' figures include the earlier checks.
    return {"pages": count, "alerts": alerts, "visible_in_dom": _summary(latencies)}


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start the app on a fresh database of `backend` and measure it."""
    with tempfile.TemporaryDirectory() as tmp_dir, _database(backend, Path(tmp_dir)) as url:
        token, session_token = _seed(url)
        env = {
            "SENTINEL_DATABASE_URL": url,
            "SENTINEL_LOG_LEVEL": "WARNING",
            "REFLEX_WEB_WORKDIR": str(Path(tmp_dir) / "web"),
            "REFLEX_STATES_WORKDIR": str(Path(tmp_dir) / "states"),
        }
        with run_app(Path(tmp_dir) / "data", extra_env=env, log_name=f"bench-dashboard-{backend}.log") as app:
            hook = f"{app.base_url}/api/v1/webhooks/alertmanager/{token}"
            result = asyncio.run(_measure(app, hook, session_token, args))
            if args.browsers:
                result["browser_cross_check"] = _browsers(app, hook, session_token, args.browsers, 10)
    return result


def main() -> None:
    """Parse arguments, run every backend, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--drain", type=float, default=3.0, help="seconds to wait for late deliveries")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--browsers", type=int, default=0, help="also measure K real Chromium pages")
    args = parser.parse_args()
    results = {b: run(b, args) for b in args.backends.split(",")}
    print(
        json.dumps(
            {
                "benchmark": "dashboard_live_updates",
                "method": "simulated tabs over Reflex's socket.io protocol (tests/support/reflex_client.py)",
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
