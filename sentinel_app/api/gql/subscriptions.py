"""Live subscriptions fed by the event bus (`sentinel_app.bus`), the same stream as the web dashboard.

On PostgreSQL the bus is LISTEN/NOTIFY, so a change committed by any process reaches subscribers
connected to every process. Each event is turned into its GraphQL payload once per process: the
first subscriber to need an alert's row loads it (with its team, people, last event) in a worker
thread and every other subscriber reuses that snapshot, so fan-out to many subscribers costs one
load, not one per subscriber. Filters on team, status and severity are checked on the event itself
before anything is loaded. Fields beyond that snapshot (timeline, notifications, memberships, …)
still work but are loaded per subscriber, on the event loop: keep subscription selections small.

When the bus reports lost events (`bus.overflow`, `bus.reconnected`) the subscription ends with
an `EVENTS_LOST` error: the client should refetch and subscribe again. The credential is checked
again every few minutes; a revoked session or key ends the subscription with UNAUTHENTICATED.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from ariadne import SubscriptionType
from graphql import GraphQLError, GraphQLResolveInfo

from sentinel_app import bus
from sentinel_app.api.errors import ApiError
from sentinel_app.api.gql import access
from sentinel_app.api.gql.alerts import AlertCriteria, criteria_of
from sentinel_app.api.gql.context import GqlContext, ctx
from sentinel_app.api.gql.errors import EVENTS_LOST, UNAUTHENTICATED
from sentinel_app.api.gql.loaders import Loaders, OnCallAnswer
from sentinel_app.api.gql.scalars import optional_id
from sentinel_app.api.gql.schedules import oncall_views, visible_schedule
from sentinel_app.db import session_scope, utcnow
from sentinel_app.models import Alert, AlertEvent, Escalation, Schedule
from sentinel_app.services.schedules import ONCALL_CHANGED

ALERT_CREATED = "alert.created"
ALERT_UPDATED = "alert.updated"
SCHEDULE_CHANGED = "schedule.changed"
# A subscriber this far behind has lost track anyway; the bus then reports an overflow.
QUEUE_SIZE = 1000
RECHECK_CREDENTIAL = dt.timedelta(minutes=5)

T = TypeVar("T")
subscription = SubscriptionType()


# --- one load per event per process ----------------------------------------------------------


class SharedLoads:
    """Single-flight, bounded memo of per-event loads shared by every subscriber of this process."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._tasks: OrderedDict[Hashable, asyncio.Task[Any]] = OrderedDict()

    async def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The result of `load()` for `key`, run once in a worker thread however many ask."""
        loop = asyncio.get_running_loop()
        task = self._tasks.get(key)
        if task is None or task.get_loop() is not loop:
            # A task of its own: a subscriber that goes away must not cancel the others' load.
            task = loop.create_task(asyncio.to_thread(load))
            task.add_done_callback(lambda done: self._forget_failed(key, done))
            self._tasks[key] = task
            while len(self._tasks) > self._size:
                self._tasks.popitem(last=False)
        result: T = await asyncio.shield(task)
        return result

    def _forget_failed(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if (task.cancelled() or task.exception() is not None) and self._tasks.get(key) is task:
            del self._tasks[key]


shared_loads = SharedLoads()


@dataclass(frozen=True)
class AlertSnapshot:
    """An alert as committed, with the rows its summary fields need."""

    alert: Alert
    related: dict[str, dict[int, Any]]

    def prime(self, loaders: Loaders) -> None:
        """Seed a subscriber's fresh loaders, so the usual fields need no query."""
        for name, values in self.related.items():
            batch = getattr(loaders, name)
            for key, value in values.items():
                batch.prime(key, value)


def load_alert_snapshot(engine: sa.Engine, alert_id: int, now: dt.datetime) -> AlertSnapshot | None:
    """Load an alert and its team, people, integration, policy, incident, escalation and last event."""
    with session_scope(engine=engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return None
        loaders = Loaders(lambda fn: fn(session), now)
        loaders.hint_alerts([alert])
        last: AlertEvent | None = loaders.last_events.get(alert_id)
        escalation: Escalation | None = loaders.escalations.get(alert_id)
        people = {alert.assigned_to_id, alert.acknowledged_by_id, alert.resolved_by_id}
        if last is not None:
            people.add(last.actor_user_id)
        related: dict[str, dict[int, Any]] = {
            "teams": {alert.team_id: loaders.teams.get(alert.team_id)},
            "users": {uid: loaders.users.get(uid) for uid in people if uid is not None},
            "last_events": {alert_id: last},
            "escalations": {alert_id: escalation},
        }
        for name, key in (
            ("integrations", alert.integration_id),
            ("policies", alert.escalation_policy_id),
            ("incidents", alert.incident_id),
        ):
            if key is not None:
                related[name] = {key: getattr(loaders, name).get(key)}
    return AlertSnapshot(alert, related)


# --- the stream ------------------------------------------------------------------------------


class EventStream:
    """Bus events of `kinds`, mapped to payloads (None: skip); closing it ends the bus subscription."""

    def __init__(self, kinds: set[str], map_event: Callable[[bus.Event], Awaitable[Any | None]]) -> None:
        self._kinds, self._map = kinds, map_event
        self._manager: AbstractAsyncContextManager[bus.Subscription] | None = None
        self._events: bus.Subscription | None = None

    async def open(self) -> EventStream:
        """Subscribe now, so nothing committed after the subscription was accepted is missed."""
        self._manager = bus.get_bus().subscribe(self._kinds, maxsize=QUEUE_SIZE)
        self._events = await self._manager.__aenter__()
        return self

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Any:
        if self._events is None:
            raise StopAsyncIteration
        while True:
            event = await anext(self._events)
            if event.kind in (bus.OVERFLOW, bus.RECONNECTED):
                raise GraphQLError(
                    "live events were lost; refetch and subscribe again",
                    extensions={"code": EVENTS_LOST, "reason": event.kind},
                )
            payload = await self._map(event)
            if payload is not None:
                return payload

    async def aclose(self) -> None:
        """End the bus subscription (idempotent)."""
        manager, self._manager, self._events = self._manager, None, None
        if manager is not None:
            await manager.__aexit__(None, None, None)


async def _fresh_credential(context: GqlContext) -> None:
    """Re-check the credential now and then: a revoked session or key ends live updates too."""
    now = utcnow()
    if now - context.checked_at < RECHECK_CREDENTIAL:
        return
    try:
        credential = await asyncio.to_thread(
            access.authenticate, context.connection, context.engine, context.authorization, now=now
        )
    except ApiError as exc:
        raise GraphQLError(exc.message, extensions={"code": UNAUTHENTICATED}) from None
    context.credential, context.checked_at = credential, now


def _alert_stream(context: GqlContext, kinds: set[str], criteria: AlertCriteria) -> EventStream:
    async def to_payload(event: bus.Event) -> Alert | None:
        alert_id, team_id = event.data.get("id"), event.data.get("team_id")
        if (
            not isinstance(alert_id, int)
            or not isinstance(team_id, int)
            or not criteria.passes_event(event.data)
        ):
            return None
        if not context.principal.can("read", team_id):
            return None
        await _fresh_credential(context)
        now = utcnow()
        snapshot = await shared_loads.get(
            ("alert", id(context.engine), event.id),
            lambda: load_alert_snapshot(context.engine, alert_id, now),
        )
        if snapshot is None or not criteria.matches(snapshot.alert):
            return None
        context.refresh(now)
        snapshot.prime(context.loaders)
        return snapshot.alert

    return EventStream(kinds, to_payload)


async def _alert_source(info: GraphQLResolveInfo, kinds: set[str], raw: dict[str, Any] | None) -> EventStream:
    context = ctx(info)
    criteria = criteria_of(context.principal, raw)
    return await _alert_stream(context, kinds, criteria).open()


async def alert_created_source(
    _: Any, info: GraphQLResolveInfo, filter: dict[str, Any] | None = None
) -> EventStream:
    """New alerts."""
    return await _alert_source(info, {ALERT_CREATED}, filter)


async def alert_updated_source(
    _: Any, info: GraphQLResolveInfo, filter: dict[str, Any] | None = None
) -> EventStream:
    """Changed alerts."""
    return await _alert_source(info, {ALERT_UPDATED}, filter)


@subscription.field("alertCreated")
@subscription.field("alertUpdated")
def resolve_alert_event(alert: Alert, _: GraphQLResolveInfo, **__: Any) -> Alert:
    """The alert of the event."""
    return alert


@dataclass(frozen=True)
class OnCallSnapshot:
    """A schedule and who is on call in it right after a change."""

    schedule: Schedule
    answer: OnCallAnswer
    at: dt.datetime


def load_oncall(engine: sa.Engine, schedule_id: int, at: dt.datetime) -> OnCallSnapshot | None:
    """The schedule and its on-call answer at `at`."""
    with session_scope(engine=engine) as session:
        schedule = session.get(Schedule, schedule_id)
        if schedule is None:
            return None
        loaders = Loaders(lambda fn: fn(session), at)
        return OnCallSnapshot(schedule, loaders.oncall_now.get(schedule_id), at)


async def oncall_changed_source(
    _: Any, info: GraphQLResolveInfo, schedule_id: str | None = None
) -> EventStream:
    """On-call changes of one schedule, or of every visible one."""
    context = ctx(info)
    wanted = optional_id(schedule_id, "scheduleId")
    if wanted is not None:
        await asyncio.to_thread(visible_schedule, context, wanted, "read")

    async def to_payload(event: bus.Event) -> dict[str, Any] | None:
        changed, team_id = event.data.get("schedule_id"), event.data.get("team_id")
        if not isinstance(changed, int) or (wanted is not None and changed != wanted):
            return None
        if not isinstance(team_id, int) or not context.principal.can("read", team_id):
            return None
        await _fresh_credential(context)
        now = utcnow()
        snapshot = await shared_loads.get(
            ("oncall", id(context.engine), event.id), lambda: load_oncall(context.engine, changed, now)
        )
        if snapshot is None:
            return None
        context.refresh(snapshot.at)
        context.loaders.schedules.prime(changed, snapshot.schedule)
        answers, until = snapshot.answer
        return {
            "schedule": snapshot.schedule,
            "oncall": oncall_views(changed, answers, until),
            "at": snapshot.at,
        }

    return await EventStream({ONCALL_CHANGED, SCHEDULE_CHANGED}, to_payload).open()


@subscription.field("oncallChanged")
def resolve_oncall_changed(payload: dict[str, Any], _: GraphQLResolveInfo, **__: Any) -> dict[str, Any]:
    """The change."""
    return payload


# graphql-core accepts a coroutine resolving to an async iterable as a source; it lets the checks
# above fail the subscription at once (an `error` message) instead of after the first event.
for _name, _source in (
    ("alertCreated", alert_created_source),
    ("alertUpdated", alert_updated_source),
    ("oncallChanged", oncall_changed_source),
):
    subscription.set_source(_name, cast(Any, _source))

bindables: Sequence[Any] = (subscription,)
