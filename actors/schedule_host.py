"""ScheduleHost: a Ray actor holding one live ScheduleActor per schedule of its shard.

A ScheduleActor keeps its schedule loaded for the engine, so `who_is_on_call` is answered from
memory (no recomputation from SQL per page), is invalidated by every schedule edit (the
``oncall.changed`` events the services publish), and at each hand-off publishes
``oncall.changed`` with who came and went and writes "you are now on call" / "your shift ended"
outbox rows for the users who asked for them. Several hosts (or app processes) may do the same
hand-off: the outbox keys are unique per (schedule, user, instant), so each person hears once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from actors.clock import Clock, LoopTimers, ManualClock, SystemClock, Timers
from actors.host_bus import EventSource, install_actor_bus
from sentinel_app import bus
from sentinel_app.db import create_db_engine, session_scope
from sentinel_app.domain import schedule as engine_mod
from sentinel_app.models import PushDevice, Schedule, User
from sentinel_app.notify.base import ChannelKind, OutgoingMessage
from sentinel_app.services import outbox
from sentinel_app.services.escalation_steps import OnCallLookup, db_on_call

log = logging.getLogger(__name__)

# Loaded overrides start this long before the load instant, so slightly earlier questions work.
LOOKBACK = dt.timedelta(hours=1)
# Hand-offs further away are re-armed from a fresh load (a far timer is cheap, a stale one is not).
MAX_TIMER = dt.timedelta(hours=12)


@dataclass
class ScheduleActor:
    """The live actor of one schedule: the loaded schedule, who is on call, the next hand-off timer."""

    schedule_id: int
    team_id: int = 0
    name: str = ""
    loaded: Any = None
    loaded_from: dt.datetime | None = None
    current: tuple[int, ...] = ()
    next_handoff: dt.datetime | None = None
    timer: object | None = None


class ScheduleCore:
    """The host's logic without Ray."""

    def __init__(
        self, *, engine: sa.Engine, shard: int = 0, shard_count: int = 1, clock: Clock | None = None
    ) -> None:
        self.engine = engine
        self.shard, self.shard_count = shard, shard_count
        self.clock: Clock = clock or SystemClock()
        self.timers: Timers = self.clock if isinstance(self.clock, ManualClock) else LoopTimers(self.clock)
        self.actors: dict[int, ScheduleActor] = {}
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sched")
        self.lock = asyncio.Lock()
        self.handoffs = 0
        self._inflight: set[asyncio.Task[None]] = set()

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _mine(self, schedule_id: int) -> bool:
        return schedule_id % max(1, self.shard_count) == self.shard

    async def start(self) -> int:
        """Load every schedule of this shard and arm its hand-off timer."""
        ids = await self._run(self._schedule_ids)
        async with self.lock:
            for schedule_id in ids:
                await self._reload(schedule_id, announce=False)
        return len(ids)

    def _schedule_ids(self) -> list[int]:
        with session_scope(engine=self.engine) as session:
            ids = session.exec(select(Schedule.id)).all()
        return [i for i in ids if i is not None and self._mine(i)]

    async def invalidate(self, schedule_ids: Sequence[int]) -> None:
        """A schedule changed: reload it (or forget it when deleted)."""
        async with self.lock:
            for schedule_id in schedule_ids:
                if self._mine(schedule_id):
                    await self._reload(schedule_id, announce=True)

    async def who_is_on_call(self, schedule_ids: Sequence[int], at: dt.datetime) -> dict[int, list[int]]:
        """Who is on call at `at` in each schedule, answered from the loaded schedules."""
        found: dict[int, list[int]] = {}
        for schedule_id in schedule_ids:
            actor = self.actors.get(schedule_id)
            if actor is None or actor.loaded is None or actor.loaded_from is None or at < actor.loaded_from:
                async with self.lock:
                    await self._reload(schedule_id, announce=False)
                actor = self.actors.get(schedule_id)
            if actor is None or actor.loaded is None:
                found[schedule_id] = []
                continue
            found[schedule_id] = [o.user_id for o in engine_mod.on_call(actor.loaded, at)]
        return found

    async def _reload(self, schedule_id: int, *, announce: bool) -> None:
        now = self.clock.now()
        loaded = await self._run(self._load, schedule_id, now - LOOKBACK)
        actor = self.actors.get(schedule_id)
        if loaded is None:
            if actor is not None and actor.timer is not None:
                self.timers.cancel(actor.timer)
            self.actors.pop(schedule_id, None)
            return
        row, schedule = loaded
        if actor is None:
            actor = self.actors[schedule_id] = ScheduleActor(schedule_id)
        actor.team_id, actor.name, actor.loaded, actor.loaded_from = (
            row.team_id,
            row.name,
            schedule,
            now - LOOKBACK,
        )
        now_on_call = tuple(o.user_id for o in engine_mod.on_call(schedule, now))
        previous, actor.current = actor.current, now_on_call
        if announce and previous != now_on_call:
            log.info("schedule %s: on call changed by an edit", schedule_id)
        self._arm(actor, now)

    def _load(self, schedule_id: int, start: dt.datetime) -> tuple[Schedule, Any] | None:
        from sentinel_app.services.schedules import load_schedules

        with session_scope(engine=self.engine) as session:
            row = session.get(Schedule, schedule_id)
            if row is None:
                return None
            loaded = load_schedules(session, schedule_ids=[schedule_id], start=start)
            return row, loaded.get(schedule_id)

    def _arm(self, actor: ScheduleActor, now: dt.datetime) -> None:
        if actor.timer is not None:
            self.timers.cancel(actor.timer)
            actor.timer = None
        actor.next_handoff = engine_mod.next_handoff(actor.loaded, now)
        if actor.next_handoff is None:
            return
        when = min(actor.next_handoff, now + MAX_TIMER)
        schedule_id = actor.schedule_id
        actor.timer = self.timers.call_at(when, lambda: self._spawn(schedule_id))

    def _spawn(self, schedule_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._on_timer(schedule_id))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _on_timer(self, schedule_id: int) -> None:
        async with self.lock:
            actor = self.actors.get(schedule_id)
            if actor is None:
                return
            actor.timer = None
            now = self.clock.now()
            before = actor.current
            await self._reload(schedule_id, announce=False)
            actor = self.actors.get(schedule_id)
            if actor is None or actor.current == before:
                return
            self.handoffs += 1
            await self._run(self._record_handoff, actor, before, now)

    def _record_handoff(self, actor: ScheduleActor, before: tuple[int, ...], now: dt.datetime) -> None:
        started = [u for u in actor.current if u not in before]
        ended = [u for u in before if u not in actor.current]
        with session_scope(write=True, engine=self.engine) as session:
            _write_shift_notices(session, actor, started, ended, now)
            bus.publish(
                session,
                "oncall.changed",
                {
                    "schedule_id": actor.schedule_id,
                    "team_id": actor.team_id,
                    "reason": "handoff",
                    "user_ids": list(actor.current),
                    "started": started,
                    "ended": ended,
                },
                key=f"schedule:{actor.schedule_id}",
            )

    async def advance_to(self, instant: dt.datetime) -> None:
        """(Manual clock) fire every hand-off timer due up to `instant`, in order."""
        clock = self.clock
        assert isinstance(clock, ManualClock)
        while (callback := clock.pop_due(instant)) is not None:
            callback()
            while self._inflight:
                await asyncio.gather(*list(self._inflight), return_exceptions=True)
        clock.set(instant)

    def report(self) -> dict[str, Any]:
        """What this host holds."""
        return {
            "shard": self.shard,
            "schedules": len(self.actors),
            "handoffs": self.handoffs,
            "next_handoffs": {
                a.schedule_id: a.next_handoff.isoformat() if a.next_handoff else None
                for a in self.actors.values()
            },
        }


def _write_shift_notices(
    session: Session, actor: ScheduleActor, started: Sequence[int], ended: Sequence[int], now: dt.datetime
) -> int:
    """Outbox rows telling people their shift started or ended (one per device, once per hand-off)."""
    people = {u.id: u for u in session.exec(select(User).where(col(User.id).in_([*started, *ended]))).all()}
    devices: dict[int, list[PushDevice]] = {}
    for device in session.exec(
        select(PushDevice).where(col(PushDevice.user_id).in_(list(people)), col(PushDevice.active))
    ).all():
        devices.setdefault(device.user_id, []).append(device)
    stamp = int(now.timestamp())
    rows: list[dict[str, Any]] = []
    for purpose, users, wants in (
        ("oncall_start", started, "notify_on_shift_start"),
        ("oncall_end", ended, "notify_on_shift_end"),
    ):
        for user_id in users:
            user = people.get(user_id)
            if user is None or not getattr(user, wants):
                continue
            title = (
                f"You are now on call for {actor.name}"
                if purpose == "oncall_start"
                else f"Your on-call shift for {actor.name} ended"
            )
            for device in devices.get(user_id, []):
                message = OutgoingMessage(
                    channel=ChannelKind(device.platform),
                    target=device.token,
                    alert_id=None,
                    title=title,
                    severity="info",
                    collapse_id=f"sentinel-oncall-{actor.schedule_id}",
                )
                rows.append(
                    outbox.new_row(
                        key=f"oncall:s{actor.schedule_id}:u{user_id}:{purpose}:{stamp}:#{device.id}",
                        user_id=user_id,
                        channel=device.platform,
                        purpose=purpose,
                        target=device.token,
                        payload=message.to_payload(),
                        now=now,
                        push_device_id=device.id,
                    )
                )
    return outbox.insert_rows(session, rows)


# --- the Ray actor ------------------------------------------------------------------------------


class _ScheduleHost(EventSource):
    """A Ray actor holding the ScheduleActors of one shard."""

    def __init__(self, config: dict[str, Any]) -> None:
        url = config["database_url"]
        self.collector = install_actor_bus(url)
        self.engine = create_db_engine(url)
        manual = config.get("manual_clock")
        clock: Clock = ManualClock(dt.datetime.fromisoformat(manual)) if manual else SystemClock()
        self.core = ScheduleCore(
            engine=self.engine,
            shard=int(config["shard"]),
            shard_count=int(config["shard_count"]),
            clock=clock,
        )
        self._started = asyncio.get_event_loop().create_task(self.core.start())

    async def who_is_on_call(self, schedule_ids: list[int], at: str) -> dict[int, list[int]]:
        """Who is on call at `at` (ISO instant) in each schedule."""
        await self._started
        return await self.core.who_is_on_call(schedule_ids, dt.datetime.fromisoformat(at))

    async def invalidate(self, schedule_ids: list[int]) -> bool:
        """Reload these schedules after an edit."""
        await self._started
        await self.core.invalidate(schedule_ids)
        return True

    async def ping(self) -> dict[str, Any]:
        """What this host holds."""
        await self._started
        return self.core.report()

    async def advance_to(self, instant: str) -> dict[str, Any]:
        """(Manual clock only) fast-forward, firing hand-offs on the way."""
        await self._started
        await self.core.advance_to(dt.datetime.fromisoformat(instant))
        return self.core.report()


def _ray_remote(cls: type) -> Any:
    import ray

    return ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(cls)


ScheduleHost = _ray_remote(_ScheduleHost)


def schedule_host_name(database_url: str, shard: int, shard_count: int) -> str:
    """The versioned, per-installation name of one schedule host."""
    from actors.escalation_host import install_name
    from actors.naming import versioned

    return versioned(f"schedule-host-{install_name(database_url)}-{shard}of{shard_count}")


def get_schedule_host(config: dict[str, Any]) -> Any:
    """The named, detached schedule host of `config["shard"]`, created on first use."""
    name = schedule_host_name(config["database_url"], int(config["shard"]), int(config["shard_count"]))
    return ScheduleHost.options(name=name, lifetime="detached", get_if_exists=True).remote(config)


def on_call_via_hosts(config: Mapping[str, Any], engine: sa.Engine) -> OnCallLookup:
    """An on-call lookup that asks the schedule hosts, falling back to the database if they fail.

    Called from an escalation host's worker thread, so blocking on the reply is fine there.
    """
    import ray

    count = int(config.get("schedule_shards", 1))
    url = str(config["database_url"])

    def lookup(schedule_ids: Sequence[int], at: dt.datetime) -> dict[int, list[int]]:
        try:
            found: dict[int, list[int]] = {}
            by_shard: dict[int, list[int]] = {}
            for schedule_id in schedule_ids:
                by_shard.setdefault(schedule_id % count, []).append(schedule_id)
            for shard, ids in by_shard.items():
                host = ray.get_actor(schedule_host_name(url, shard, count))
                found.update(ray.get(host.who_is_on_call.remote(ids, at.isoformat()), timeout=5))
            return {int(k): list(v) for k, v in found.items()}
        except Exception as exc:  # no schedule host (yet): the database answers the same question
            log.info("schedule hosts unavailable (%s); computing on-call from the database", exc)
            with Session(engine) as session:
                return {k: list(v) for k, v in db_on_call(session)(schedule_ids, at).items()}

    return lookup
