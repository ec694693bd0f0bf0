"""A minimal Reflex websocket client: what a browser tab says over socket.io, without a browser.

Reflex's frontend opens socket.io (Engine.IO v4, websocket transport) at `/_event/` with its tab
token in the query string, sends the hydrate event in the CONNECT packet's auth payload (with
client-storage values such as cookies under `payload.vars`), then emits `"event"` messages
`{"name": "<state full name>.<handler>", "payload": {...}, "router_data": {...}}` and receives
`"event"` messages carrying `{"delta": {state: {var_rx_state_: value}}, "events": [...]}`.
This is Reflex-internal protocol (checked against 0.10.1 by recording a real browser's frames);
the tests that use it also drive real browsers, so a protocol change shows up as a clear failure.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import socketio

NAMESPACE = "/_event"
ROOT_STATE = "reflex___state____state"


def var_key(state_full_name: str, var: str) -> str:
    """The wire name of a state var, as hydrate's `vars` and deltas spell it."""
    return f"{state_full_name}.{var}_rx_state_"


@dataclass
class Update:
    """One message from the server, with its arrival time (time.monotonic())."""

    at: float
    data: dict[str, Any]

    @property
    def raw(self) -> str:
        """The message as JSON text (for substring checks)."""
        return json.dumps(self.data)

    @property
    def delta(self) -> dict[str, dict[str, Any]]:
        """Changed vars by state."""
        value: dict[str, dict[str, Any]] = self.data.get("delta") or {}
        return value

    @property
    def events(self) -> list[dict[str, Any]]:
        """Frontend events the server asked for (toasts, redirects, ...)."""
        value: list[dict[str, Any]] = self.data.get("events") or []
        return value


@dataclass
class ReflexTab:
    """One simulated browser tab on a page of a running Reflex app."""

    base_url: str
    path: str
    storage: dict[str, str] = field(default_factory=dict)
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    updates: list[Update] = field(default_factory=list)
    on_update: Callable[[Update], None] | None = None

    def __post_init__(self) -> None:
        self._sio = socketio.AsyncClient(reconnection=False)
        self._changed = asyncio.Event()
        self._sio.on("event", self._received, namespace=NAMESPACE)

    def _router_data(self) -> dict[str, Any]:
        path = self.path if self.path.endswith("/") else self.path + "/"
        return {"pathname": path, "asPath": path}

    async def _received(self, data: Any) -> None:
        update = Update(time.monotonic(), data if isinstance(data, dict) else json.loads(data))
        self.updates.append(update)
        if self.on_update is not None:
            self.on_update(update)
        self._changed.set()

    async def connect(self, *, timeout: float = 20.0) -> None:
        """Open the socket and hydrate the page (runs its on_load handlers)."""
        hydrate = {
            "name": f"{ROOT_STATE}.hydrate_and_load",
            "payload": {"vars": self.storage} if self.storage else {},
            "router_data": self._router_data(),
        }
        await self._sio.connect(
            f"{self.base_url}?token={self.token}",
            namespaces=[NAMESPACE],
            socketio_path="_event",
            transports=["websocket"],
            auth={"event": hydrate},
            wait_timeout=timeout,
        )
        await self.wait_for(
            lambda u: u.delta.get(ROOT_STATE, {}).get("is_hydrated_rx_state_") is True, timeout
        )

    async def call(self, handler: str, **payload: Any) -> None:
        """Send an event: `handler` is "<state full name>.<method>"."""
        await self._sio.emit(
            "event",
            {"name": handler, "payload": payload, "router_data": self._router_data()},
            namespace=NAMESPACE,
        )

    async def wait_for(
        self, check: Callable[[Update], bool], timeout: float = 10.0, *, since: int = 0
    ) -> Update:
        """The first update (from index `since`) that passes `check`; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for update in self.updates[seen:]:
                if check(update):
                    return update
            seen = len(self.updates)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching update within {timeout} s ({len(self.updates)} received)")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    async def close(self) -> None:
        """Disconnect."""
        await self._sio.disconnect()
