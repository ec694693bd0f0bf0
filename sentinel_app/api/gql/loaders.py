"""Per-operation batch loaders: related rows of a whole page in one query per kind, never one per row.

Execution is synchronous (one worker thread per operation, one database session), so the loaders
batch by *hints* rather than by event-loop ticks: a resolver that produces a page of alerts hints
every related key of the page (`hint_alerts`), and the first field that asks for any of them loads
all hinted keys of that kind in one statement. Unhinted keys are loaded on demand, together with
whatever else is pending. The number of statements therefore depends on the selected fields,
never on the page size (tests/graphql/test_performance.py counts them).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app.domain import schedule as engine
from sentinel_app.models import (
    Alert,
    AlertEvent,
    Escalation,
    EscalationPolicy,
    EscalationStep,
    Incident,
    Integration,
    Notification,
    PushDevice,
    RotationLayer,
    Schedule,
    Team,
    TeamMembership,
    User,
)
from sentinel_app.models.base import require_id
from sentinel_app.services import escalation_policies
from sentinel_app.services import schedules as schedule_service

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class Db(Protocol):
    """Runs a function with a database session (the operation's, or a short-lived one)."""

    def __call__(self, fn: Callable[[Session], T]) -> T:
        """Call `fn(session)` and return its result."""
        ...


class Batch(Generic[K, V]):
    """Values by key, fetched in one query for all keys asked for or hinted so far."""

    def __init__(
        self,
        db: Db,
        fetch: Callable[[Session, list[K]], Mapping[K, V]],
        missing: Callable[[], V],
        after: Callable[[Iterable[V]], None] | None = None,
    ) -> None:
        self._db, self._fetch, self._missing, self._after = db, fetch, missing, after
        self._cache: dict[K, V] = {}
        self._pending: set[K] = set()

    def hint(self, keys: Iterable[K | None]) -> None:
        """Remember keys that will probably be asked for, to fetch them with the first miss."""
        self._pending.update(k for k in keys if k is not None and k not in self._cache)

    def prime(self, key: K, value: V) -> None:
        """Store a value fetched elsewhere."""
        self._cache[key] = value
        self._pending.discard(key)

    def get(self, key: K) -> V:
        """The value of `key` (the `missing` default when there is none)."""
        if key not in self._cache:
            self._pending.add(key)
            batch = sorted(self._pending, key=repr)
            self._pending.clear()
            found = self._db(lambda session: self._fetch(session, batch))
            for k in batch:
                self._cache[k] = found[k] if k in found else self._missing()
            if self._after is not None:
                # Rows of this batch refer to others: hint them so those load in one query too.
                self._after(found.values())
        return self._cache[key]

    def get_many(self, keys: Iterable[K]) -> list[V]:
        """Values of several keys (one query for all misses)."""
        wanted = list(keys)
        self.hint(wanted)
        return [self.get(k) for k in wanted]

    def clear(self) -> None:
        """Forget everything (after a mutation changed rows)."""
        self._cache.clear()
        self._pending.clear()


def _none() -> None:
    return None


def _by_id(model: Any) -> Callable[[Session, list[int]], dict[int, Any]]:
    def fetch(session: Session, ids: list[int]) -> dict[int, Any]:
        return {require_id(row): row for row in session.exec(select(model).where(col(model.id).in_(ids)))}

    return fetch


def _grouped(model: Any, key: str, *order: Any) -> Callable[[Session, list[int]], dict[int, list[Any]]]:
    def fetch(session: Session, ids: list[int]) -> dict[int, list[Any]]:
        column = getattr(model, key)
        found: dict[int, list[Any]] = defaultdict(list)
        for row in session.exec(select(model).where(col(column).in_(ids)).order_by(*order)):
            found[getattr(row, key)].append(row)
        return found

    return fetch


def _last_events(session: Session, alert_ids: list[int]) -> dict[int, AlertEvent]:
    # The newest entry per alert by (created_at, id), like the timeline's order, in one statement.
    rank = (
        sa.func.row_number()
        .over(
            partition_by=col(AlertEvent.alert_id),
            order_by=(col(AlertEvent.created_at).desc(), col(AlertEvent.id).desc()),
        )
        .label("rank")
    )
    ranked = select(col(AlertEvent.id), rank).where(col(AlertEvent.alert_id).in_(alert_ids)).subquery()
    rows = session.exec(
        select(AlertEvent).join(ranked, ranked.c.id == AlertEvent.id).where(ranked.c.rank == 1)
    )
    return {row.alert_id: row for row in rows}


def _escalations(session: Session, alert_ids: list[int]) -> dict[int, Escalation]:
    rows = session.exec(select(Escalation).where(col(Escalation.alert_id).in_(alert_ids)))
    return {row.alert_id: row for row in rows}


def _layers(session: Session, schedule_ids: list[int]) -> dict[int, list[tuple[RotationLayer, list[int]]]]:
    rows = session.exec(
        select(RotationLayer)
        .where(col(RotationLayer.schedule_id).in_(schedule_ids))
        .order_by(col(RotationLayer.priority).desc(), col(RotationLayer.id))
    ).all()
    participants = schedule_service.participants_of(session, layer_ids=[require_id(r) for r in rows])
    found: dict[int, list[tuple[RotationLayer, list[int]]]] = defaultdict(list)
    for row in rows:
        found[row.schedule_id].append((row, participants[require_id(row)]))
    return found


def json_ints(values: object) -> list[int]:
    """The integers of a JSON list (targets are stored as JSON)."""
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


OnCallAnswer = tuple[list[engine.OnCall], dt.datetime | None]


class Loaders:
    """Every loader of one operation (or of one subscription event)."""

    def __init__(self, db: Db, now: dt.datetime) -> None:
        self.now = now
        self.users: Batch[int, User | None] = Batch(db, _by_id(User), _none)
        self.teams: Batch[int, Team | None] = Batch(db, _by_id(Team), _none)
        self.integrations: Batch[int, Integration | None] = Batch(db, _by_id(Integration), _none)
        self.policies: Batch[int, EscalationPolicy | None] = Batch(db, _by_id(EscalationPolicy), _none)
        self.incidents: Batch[int, Incident | None] = Batch(db, _by_id(Incident), _none)
        self.schedules: Batch[int, Schedule | None] = Batch(db, _by_id(Schedule), _none)
        self.last_events: Batch[int, AlertEvent | None] = Batch(
            db, _last_events, _none, after=lambda rows: self.users.hint(e.actor_user_id for e in rows if e)
        )
        self.escalations: Batch[int, Escalation | None] = Batch(db, _escalations, _none)
        self.timelines: Batch[int, list[AlertEvent]] = Batch(
            db,
            _grouped(AlertEvent, "alert_id", col(AlertEvent.created_at), col(AlertEvent.id)),
            list,
            after=lambda groups: self.users.hint(e.actor_user_id for g in groups for e in g),
        )
        self.notifications: Batch[int, list[Notification]] = Batch(
            db,
            _grouped(Notification, "alert_id", col(Notification.created_at), col(Notification.id)),
            list,
            after=lambda groups: self.users.hint(n.user_id for g in groups for n in g),
        )
        self.team_members: Batch[int, list[TeamMembership]] = Batch(
            db,
            _grouped(TeamMembership, "team_id", col(TeamMembership.id)),
            list,
            after=lambda groups: self.users.hint(m.user_id for g in groups for m in g),
        )
        self.user_memberships: Batch[int, list[TeamMembership]] = Batch(
            db,
            _grouped(TeamMembership, "user_id", col(TeamMembership.id)),
            list,
            after=lambda groups: self.teams.hint(m.team_id for g in groups for m in g),
        )
        self.policy_steps: Batch[int, list[EscalationStep]] = Batch(
            db,
            lambda session, ids: escalation_policies.steps_of(session, policy_ids=ids),
            list,
            after=lambda groups: self.hint_steps(s for g in groups for s in g),
        )
        self.incident_alerts: Batch[int, list[Alert]] = Batch(
            db,
            _grouped(Alert, "incident_id", col(Alert.fired_at).desc(), col(Alert.id).desc()),
            list,
            after=lambda groups: self.hint_alerts([a for g in groups for a in g]),
        )
        self.user_devices: Batch[int, list[PushDevice]] = Batch(
            db, _grouped(PushDevice, "user_id", col(PushDevice.id)), list
        )
        self.schedule_layers: Batch[int, list[tuple[RotationLayer, list[int]]]] = Batch(
            db,
            _layers,
            list,
            after=lambda groups: self.users.hint(u for g in groups for _, people in g for u in people),
        )
        self.oncall_now: Batch[int, OnCallAnswer] = Batch(
            db,
            self._oncall_now,
            lambda: ([], None),
            after=lambda answers: self.users.hint(a.user_id for found, _ in answers for a in found),
        )

    def _oncall_now(self, session: Session, schedule_ids: list[int]) -> dict[int, OnCallAnswer]:
        loaded = schedule_service.load_schedules(session, schedule_ids=schedule_ids, start=self.now)
        return {
            schedule_id: (engine.on_call(model, self.now), engine.next_handoff(model, self.now))
            for schedule_id, model in loaded.items()
        }

    def all(self) -> list[Batch[Any, Any]]:
        """Every loader."""
        return [value for value in vars(self).values() if isinstance(value, Batch)]

    def clear(self) -> None:
        """Forget every cached row (a mutation may have changed them)."""
        for loader in self.all():
            loader.clear()

    def hint_alerts(self, alerts: Sequence[Alert]) -> None:
        """Hint every row a page of alerts refers to."""
        ids = [require_id(a) for a in alerts]
        self.users.hint(
            uid for a in alerts for uid in (a.assigned_to_id, a.acknowledged_by_id, a.resolved_by_id)
        )
        self.teams.hint(a.team_id for a in alerts)
        self.integrations.hint(a.integration_id for a in alerts)
        self.policies.hint(a.escalation_policy_id for a in alerts)
        self.incidents.hint(a.incident_id for a in alerts)
        for loader in (self.last_events, self.escalations, self.timelines, self.notifications):
            loader.hint(ids)

    def hint_steps(self, steps: Iterable[EscalationStep]) -> None:
        """Hint the users, schedules and teams escalation steps target."""
        for step in steps:
            targets = step.targets or {}
            self.users.hint(json_ints(targets.get("user_ids")))
            self.schedules.hint(json_ints(targets.get("schedule_ids")))
            self.teams.hint(json_ints(targets.get("team_ids")))

    def hint_schedules(self, schedules: Sequence[Schedule]) -> None:
        """Hint what a list of schedules refers to."""
        ids = [require_id(s) for s in schedules]
        self.teams.hint(s.team_id for s in schedules)
        self.schedule_layers.hint(ids)
        self.oncall_now.hint(ids)
