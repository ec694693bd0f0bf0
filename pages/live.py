"""The bridge from the event bus to page states: one background loop per browser tab.

How a page goes live:

1. Its state subclasses `LivePage` and implements three hooks:
   - `live_scope()` (under the state lock): which teams it shows (None: all, empty: none) and
     whether it wants alert snapshots; plain data only.
   - `live_fetch(session, scope, batch)` (a static method run in a worker thread, no state
     access): load whatever else the page needs for this batch (counts, on-call, a detail);
     `live_wants_fetch(scope, batch)` says whether there is anything to load at all.
   - `live_apply(batch, fetched)` (under the state lock): merge the changes into its vars.
   `live_min_interval` (seconds) throttles how often a page applies batches (events in between
   are merged, not lost).
2. It registers itself (`live.register("alerts", AlertsState)`) and lists
   `LiveState.attach("alerts")` last in its `on_load` events.

`attach` remembers the page and, when this tab has no loop in this process yet, starts
`LiveState.run`: it subscribes to the bus (`alert.created`, `alert.updated`, `oncall.changed`),
waits for events, coalesces what arrived within `COALESCE_S`, loads snapshots of the changed
alerts once for *all* tabs (a per-event single-flight cache: 50 tabs seeing one change cost one
query), and hands the page a `LiveBatch`. Nothing polls the database: without events a loop
only wakes every `PING_S` to see whether its tab is still connected, and ends after
`GONE_AFTER_S` without a connection. A tab that reconnects later runs its `on_load` again
(Reflex rehydrates on every connect), which starts a fresh loop. `bus.overflow` and
`bus.reconnected` (events may have been lost) and a loop's start (the page loaded before it
subscribed) make the batch a `resync`: the page reloads from the database.

Critical alerts that are created in a team the page shows raise a toast in every live tab.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import reflex as rx
from sqlmodel import Session

from pages.queries import AlertSnap, load_snaps
from pages.state import AuthState, in_db, login_redirect, principal_for_session
from sentinel_app import bus
from sentinel_app.db import utcnow

log = logging.getLogger(__name__)

ALERT_KINDS = frozenset({"alert.created", "alert.updated"})
KINDS = {*ALERT_KINDS, "oncall.changed"}
# Wait this long after the first event of a burst for more, so a storm is one update, not many.
COALESCE_S = 0.05
PING_S = 10.0
GONE_AFTER_S = 90.0
# A session revoked elsewhere (sign-out in another tab, account disabled) stops a tab's updates
# within this long (checked only when events arrive, so idle tabs cost nothing).
SESSION_RECHECK_S = 60.0
MAX_EVENTS_PER_BATCH = 5000
_CACHE_EVENTS = 20_000


@dataclass(frozen=True)
class LiveScope:
    """What a page shows, read under the state lock at the start of each batch."""

    teams: frozenset[int] | None
    wants_alerts: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    # Teams whose new critical alerts raise a toast here ("page": the page's own teams; a page
    # about one alert passes every team the person can see, so no critical alert goes unnoticed).
    toast_teams: frozenset[int] | Literal["page"] | None = "page"
    # Whether the page shows what a signed-in session may see (False: e.g. a kiosk wall key,
    # which the page re-checks itself).
    session_bound: bool = True

    def sees(self, team_id: object) -> bool:
        """Whether events of `team_id` concern this page."""
        return self.teams is None or (isinstance(team_id, int) and team_id in self.teams)

    def toasts_for(self, team_id: object) -> bool:
        """Whether a new critical alert of `team_id` raises a toast on this page."""
        if self.toast_teams == "page":
            return self.sees(team_id)
        return self.toast_teams is None or (isinstance(team_id, int) and team_id in self.toast_teams)


@dataclass
class LiveBatch:
    """The changes since the page's last update, already filtered to its teams."""

    resync: bool = False
    created: list[int] = field(default_factory=list)
    changed: set[int] = field(default_factory=set)
    # Snapshots of the changed alerts (only when the scope wants them; missing: deleted).
    alerts: dict[int, AlertSnap] = field(default_factory=dict)
    oncall: bool = False
    critical: list[str] = field(default_factory=list)

    def merge(self, other: LiveBatch) -> None:
        """Fold a later batch into this one."""
        self.resync = self.resync or other.resync
        self.created.extend(other.created)
        self.changed |= other.changed
        self.alerts.update(other.alerts)
        self.oncall = self.oncall or other.oncall
        self.critical.extend(other.critical)


class LivePage(rx.State):
    """Base of page states that follow the bus (see the module docstring)."""

    live_min_interval: ClassVar[float] = 0.0

    def live_scope(self) -> LiveScope | None:
        """The teams this page shows now (None: nothing to follow, e.g. not signed in)."""
        return None

    @staticmethod
    def live_wants_fetch(scope: LiveScope, batch: LiveBatch) -> bool:
        """Whether `live_fetch` has anything to read for this batch (saves a thread hop per tab)."""
        return True

    @staticmethod
    def live_fetch(session: Session, scope: LiveScope, batch: LiveBatch) -> Any:
        """Extra reads for a batch, in a worker thread."""
        return None

    def live_apply(self, batch: LiveBatch, fetched: Any) -> None:
        """Merge a batch into the page's vars."""


_pages: dict[str, type[LivePage]] = {}


def register(key: str, page: type[LivePage]) -> None:
    """Make a page state reachable from `LiveState.attach(key)`."""
    _pages[key] = page


# --- shared snapshot loading -------------------------------------------------------------------

_loads: OrderedDict[str, asyncio.Future[dict[int, AlertSnap]]] = OrderedDict()


async def snapshots_for(events: Iterable[bus.Event]) -> dict[int, AlertSnap]:
    """Current snapshots of the alerts these events are about; one query serves every tab.

    Each event id maps to the future of the load that covered it: the first tab to process an
    event starts the load, the others await the same result.
    """
    wanted: dict[str, int] = {
        e.id: int(e.data["id"]) for e in events if e.kind in ALERT_KINDS and isinstance(e.data.get("id"), int)
    }
    missing = {eid: aid for eid, aid in wanted.items() if eid not in _loads}
    if missing:
        future: asyncio.Future[dict[int, AlertSnap]] = asyncio.get_running_loop().create_future()
        for eid in missing:
            _loads[eid] = future
        while len(_loads) > _CACHE_EVENTS:
            _loads.popitem(last=False)
        ids = set(missing.values())

        def load(session: Session) -> dict[int, AlertSnap]:
            return load_snaps(session, ids)

        try:
            future.set_result(await in_db(load))
        except Exception as exc:
            future.set_exception(exc)
            for eid in missing:
                _loads.pop(eid, None)
            raise
    found: dict[int, AlertSnap] = {}
    for eid, aid in wanted.items():
        pending = _loads.get(eid)
        if pending is None:  # evicted meanwhile (a huge storm): load on our own
            found.update(await in_db(lambda s, aid=aid: load_snaps(s, [aid])))  # type: ignore[misc]
            continue
        snaps = await asyncio.shield(pending)
        if aid in snaps:
            found[aid] = snaps[aid]
    return found


# --- the per-tab loop --------------------------------------------------------------------------

_running: dict[str, int] = {}
_generations = itertools.count(1)


def _connected(token: str) -> bool:
    """Whether this tab's websocket is connected to this process (True when that is unknowable)."""
    module = sys.modules.get("sentinel_app.sentinel_app")
    app = getattr(module, "app", None)
    namespace = getattr(app, "event_namespace", None)
    if namespace is None:
        return True
    return token in namespace.token_to_sid


def running_loops() -> int:
    """How many tabs have a live loop in this process (for tests and /metrics)."""
    return len(_running)


def to_batch(events: list[bus.Event], scope: LiveScope, *, resync: bool) -> LiveBatch:
    """The page's view of a burst of events (without snapshots yet)."""
    batch = LiveBatch(resync=resync)
    for event in events:
        if event.kind.startswith("bus."):
            batch.resync = True
            continue
        data = event.data
        if (
            event.kind == "alert.created"
            and data.get("severity") == "critical"
            and scope.toasts_for(data.get("team_id"))
        ):
            batch.critical.append(str(data.get("title") or f"alert {data.get('id')}"))
        if not scope.sees(data.get("team_id")):
            continue
        if event.kind == "oncall.changed":
            batch.oncall = True
            continue
        alert_id = data.get("id")
        if not isinstance(alert_id, int):
            continue
        batch.changed.add(alert_id)
        if event.kind == "alert.created":
            batch.created.append(alert_id)
    return batch


async def _next_burst(events: AsyncIterator[bus.Event], sub: bus.Subscription) -> list[bus.Event] | None:
    """The next event plus whatever follows within COALESCE_S; None after PING_S of silence."""
    try:
        first = await asyncio.wait_for(anext(events), timeout=PING_S)
    except TimeoutError:
        return None
    burst = [first, *sub.take_ready(MAX_EVENTS_PER_BATCH)]
    await asyncio.sleep(COALESCE_S)
    burst.extend(sub.take_ready(MAX_EVENTS_PER_BATCH))
    return burst


class LiveState(rx.State):
    """Per-tab state of the live loop: which page is shown."""

    _page: str = ""
    # Bumped by every `attach`: the loop resyncs a page it has not seen loaded yet, so nothing
    # committed between the page's own load and this attach is missed.
    _attached: int = 0

    @rx.event
    def attach(self, page: str) -> Any:
        """`on_load`: follow the bus for `page`; starts this tab's loop unless it runs already."""
        self._page = page
        self._attached += 1
        token = self.router.session.client_token
        if page and token and token not in _running:
            return LiveState.run
        return None

    @rx.event
    def detach(self) -> None:
        """`on_load` of pages that show nothing live (sign-in): stop applying bus events here."""
        self.detach_now()

    def detach_now(self) -> None:
        """Stop applying bus events to this tab's page (its loop idles until the next `attach`)."""
        self._page = ""

    async def _session_alive(self) -> bool:
        """Whether this tab's session is still valid (True when the database cannot tell now)."""
        async with self:
            token = (await self.get_state(AuthState)).session_token
        try:
            return await asyncio.to_thread(principal_for_session, token, utcnow()) is not None
        except Exception:
            log.warning("could not re-check a tab's session", exc_info=True)
            return True

    @rx.event(background=True)
    async def run(self) -> AsyncIterator[Any]:
        """The live loop of this tab (see the module docstring)."""
        token = self.router.session.client_token
        if not token or token in _running:
            return
        generation = next(_generations)
        _running[token] = generation
        resync = True  # the page loaded before we subscribed: anything may have happened since
        last_apply = 0.0
        gone_since: float | None = None
        session_checked = time.monotonic()
        attached = -1
        try:
            async with bus.subscribe(KINDS, maxsize=MAX_EVENTS_PER_BATCH) as sub:
                events = aiter(sub)
                while _running.get(token) == generation:
                    burst = [] if resync else await _next_burst(events, sub)
                    if burst is None:
                        if _connected(token):
                            gone_since = None
                        elif gone_since is None:
                            gone_since = time.monotonic()
                        elif time.monotonic() - gone_since > GONE_AFTER_S:
                            return
                        continue
                    async with self:
                        key = self._page
                        page_cls = _pages.get(key)
                        page = await self.get_state(page_cls) if page_cls is not None else None
                        scope = page.live_scope() if page is not None else None
                        if self._attached != attached:
                            attached, resync = self._attached, True
                    if page_cls is None or scope is None:
                        resync = False
                        continue
                    if scope.session_bound and time.monotonic() - session_checked > SESSION_RECHECK_S:
                        session_checked = time.monotonic()
                        if not await self._session_alive():
                            async with self:
                                self._page = ""
                            yield login_redirect(path_of(key))
                            continue
                    batch = to_batch(burst, scope, resync=resync)
                    resync = False
                    if not (batch.resync or batch.changed or batch.oncall):
                        for title in batch.critical[:3]:
                            yield _toast(title)
                        continue
                    wait = page_cls.live_min_interval - (time.monotonic() - last_apply)
                    if wait > 0 and not batch.resync:
                        # Throttled page: sleep out the interval, then take everything that came meanwhile.
                        await asyncio.sleep(wait)
                        more = sub.take_ready(MAX_EVENTS_PER_BATCH)
                        burst.extend(more)
                        batch.merge(to_batch(more, scope, resync=False))
                    try:
                        if scope.wants_alerts and batch.changed and not batch.resync:
                            batch.alerts = await snapshots_for(_alert_events(burst, batch.changed))
                        fetched = (
                            await in_db(lambda s, p=page_cls, c=scope, b=batch: p.live_fetch(s, c, b))  # type: ignore[misc]
                            if page_cls.live_wants_fetch(scope, batch)
                            else None
                        )
                    except Exception:  # the database restarting: reload everything once it answers
                        log.warning("live update failed; the page resyncs shortly", exc_info=True)
                        await asyncio.sleep(1.0)
                        resync = True
                        continue
                    async with self:
                        if self._page != key:
                            continue
                        page = await self.get_state(page_cls)
                        page.live_apply(batch, fetched)
                    last_apply = time.monotonic()
                    for title in batch.critical[:3]:
                        yield _toast(title)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live loop of a tab failed; it restarts on the next page load")
        finally:
            if _running.get(token) == generation:
                del _running[token]


def path_of(page: str) -> str:
    """Where to come back to after signing in again (the overview for pages without a fixed path)."""
    return {"alerts": "/alerts", "wall": "/wall"}.get(page, "/")


def _toast(title: str) -> Any:
    return rx.toast.error(f"Critical alert: {title}", duration=10000, close_button=True)


def _alert_events(burst: list[bus.Event], ids: set[int]) -> list[bus.Event]:
    return [e for e in burst if e.kind in ALERT_KINDS and e.data.get("id") in ids]
