"""Alerts: ingest with database-enforced deduplication, lifecycle transitions, notes, timeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from sentinel_app import bulk, bus
from sentinel_app.domain import alert_lifecycle as lifecycle
from sentinel_app.domain.alert_lifecycle import IngestAction, Transition
from sentinel_app.domain.routing import first_match
from sentinel_app.ingest.normalized import NormalizedAlert
from sentinel_app.models import Alert, AlertEvent, AlertEventKind, AlertStatus, Integration, IntegrationRoute
from sentinel_app.models.alerts import OPEN_WITH_INTEGRATION, OPEN_WITHOUT_INTEGRATION
from sentinel_app.services import alert_events, escalations, outbox
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import Conflict, NotFound
from sentinel_app.services.integrations import routes_of
from sentinel_app.settings import get_settings


@dataclass(frozen=True)
class IngestResult:
    """What one normalised alert did: created, occurrence, acknowledged, resolved or ignored."""

    action: IngestAction
    alert_id: int | None
    dedup_key: str


def _route(
    integration: Integration, routes: Sequence[IntegrationRoute], labels: dict[str, str]
) -> tuple[int, int | None]:
    target = first_match([(r.matchers, r) for r in routes], labels)
    if target is None:
        return integration.team_id, integration.default_escalation_policy_id
    return (
        target.team_id or integration.team_id,
        target.escalation_policy_id or integration.default_escalation_policy_id,
    )


def _event(
    session: Session,
    alert_id: int,
    kind: AlertEventKind,
    actor: Actor,
    *,
    note: str = "",
    payload: dict[str, Any] | None = None,
    at: dt.datetime,
) -> None:
    session.add(
        AlertEvent(
            alert_id=alert_id,
            kind=kind,
            actor_user_id=actor.user_id,
            actor=actor.label,
            channel=actor.channel,
            note=note,
            payload=payload or {},
            created_at=at,
        )
    )


def upsert_firing(
    session: Session,
    *,
    team_id: int,
    integration_id: int | None,
    escalation_policy_id: int | None,
    alert: NormalizedAlert,
    actor: Actor,
    now: dt.datetime,
) -> IngestResult:
    """Open a new alert or count an occurrence of the open one, atomically (INSERT … ON CONFLICT)."""
    [result] = _upsert_firing_many(
        session, [(team_id, integration_id, escalation_policy_id, alert, actor)], now
    )
    return result


# (team id, integration id, escalation policy id, alert, who sent it)
_Firing = tuple[int, int | None, int | None, NormalizedAlert, Actor]


def _upsert_firing_many(session: Session, items: Sequence[_Firing], now: dt.datetime) -> list[IngestResult]:
    """Upsert many firings in few statements; repeats of a key within the batch go in later rounds."""
    snapshots, existing = escalations.usable_snapshots(
        session, policy_ids=[item[2] for item in items if item[2] is not None]
    )
    if any(item[2] is not None and item[2] not in existing for item in items):
        # A policy deleted moments ago (routes are cached briefly): keep the alert, drop the reference.
        items = [(t, i, p if p in existing else None, a, who) for t, i, p, a, who in items]
    results: list[IngestResult | None] = [None] * len(items)
    events: list[dict[str, Any]] = []
    published: list[tuple[str, dict[str, Any], str | None]] = []
    pending = list(enumerate(items))
    while pending:
        # ON CONFLICT may touch a row only once per statement: one occurrence of each key per round.
        seen: set[tuple[int | None, int, str]] = set()
        round_items: list[tuple[int, _Firing]] = []
        later: list[tuple[int, _Firing]] = []
        for index, item in pending:
            scope = (item[1], item[0] if item[1] is None else 0, item[3].dedup_key)
            (later if scope in seen else round_items).append((index, item))
            seen.add(scope)
        pending = later
        for with_integration in (True, False):
            batch = [(i, it) for i, it in round_items if (it[1] is not None) is with_integration]
            if not batch:
                continue
            returned = bulk.insert_rows(
                session,
                Alert.__table__,  # type: ignore[attr-defined]
                [_firing_values(item, now) for _, item in batch],
                returning=_RETURNED,
                on_conflict=_PG_CONFLICT[with_integration],
                sqlite_statement=_upsert_statement(session, with_integration),
            )
            by_scope = {
                (r.integration_id, r.team_id if r.integration_id is None else 0, r.dedup_key): r
                for r in returned
            }
            rows = [by_scope[(it[1], it[0] if it[1] is None else 0, it[3].dedup_key)] for _, it in batch]
            for (index, item), row in zip(batch, rows, strict=True):
                alert, actor = item[3], item[4]
                created = row.occurrence_count == 1
                events.append(
                    {
                        "alert_id": row.id,
                        "kind": AlertEventKind.CREATED if created else AlertEventKind.OCCURRENCE,
                        "actor_user_id": actor.user_id,
                        "actor": actor.label,
                        "channel": actor.channel,
                        "note": "",
                        "payload": alert.raw,
                        "created_at": now,
                    }
                )
                data = {"id": row.id, "team_id": row.team_id, "status": row.status, "severity": row.severity}
                if created:
                    published.append(("alert.created", {**data, "title": alert.title}, f"alert:{row.id}"))
                else:
                    published.append(
                        ("alert.updated", {**data, "occurrences": row.occurrence_count}, f"alert:{row.id}")
                    )
                results[index] = IngestResult(
                    IngestAction.CREATE if created else IngestAction.OCCURRENCE, row.id, alert.dedup_key
                )
    bulk.insert_rows(session, AlertEvent.__table__, events)  # type: ignore[attr-defined]
    bus.publish_many(session, published)
    created = [
        (result.alert_id, item[2])
        for result, item in zip(results, items, strict=True)
        if result is not None and result.alert_id is not None and result.action is IngestAction.CREATE
    ]
    if created:
        outbox.on_alerts_fired(
            session,
            alert_ids=[alert_id for alert_id, _ in created],
            team_ids={item[0] for item in items},
            now=now,
        )
        # The first escalation state commits with the alert (ARCHITECTURE.md, durable escalation, 1).
        escalations.start_escalations(
            session,
            alerts=created,
            now=now,
            shard_count=get_settings().escalation_shards,
            snapshots=snapshots,
        )
    return [r for r in results if r is not None]


def _firing_values(item: _Firing, now: dt.datetime) -> dict[str, Any]:
    team_id, integration_id, policy_id, alert, _ = item
    return {
        "team_id": team_id,
        "integration_id": integration_id,
        "escalation_policy_id": policy_id,
        "status": AlertStatus.FIRING.value,
        "severity": alert.severity,
        "title": alert.title,
        "message": alert.message,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "links": alert.links,
        "source": alert.source,
        "dedup_key": alert.dedup_key,
        "fingerprint": alert.fingerprint,
        "occurrence_count": 1,
        "fired_at": alert.fired_at or now,
        "first_seen_at": now,
        "last_seen_at": now,
        "created_at": now,
        "updated_at": now,
    }


_RETURNED = ("id", "occurrence_count", "status", "severity", "team_id", "integration_id", "dedup_key")
_ON_REPEAT = (
    "DO UPDATE SET occurrence_count = alerts.occurrence_count + 1,"
    " last_seen_at = EXCLUDED.last_seen_at, updated_at = EXCLUDED.updated_at"
)
# The same conflict targets as `_build_upsert`, for the array form of the insert on PostgreSQL.
_PG_CONFLICT = {
    True: f"ON CONFLICT (integration_id, dedup_key) WHERE {OPEN_WITH_INTEGRATION.text} {_ON_REPEAT}",
    False: f"ON CONFLICT (team_id, dedup_key) WHERE {OPEN_WITHOUT_INTEGRATION.text} {_ON_REPEAT}",
}


def _upsert_statement(session: Session, with_integration: bool) -> Any:
    return _build_upsert(session.get_bind().dialect.name, with_integration)


@lru_cache(maxsize=4)
def _build_upsert(dialect: str, with_integration: bool) -> Any:
    # Built once per dialect: constructing the statement cost more than executing it.
    table = Alert.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=["integration_id", "dedup_key"] if with_integration else ["team_id", "dedup_key"],
        index_where=OPEN_WITH_INTEGRATION if with_integration else OPEN_WITHOUT_INTEGRATION,
        set_={
            "occurrence_count": table.c.occurrence_count + 1,
            "last_seen_at": stmt.excluded.last_seen_at,
            "updated_at": stmt.excluded.updated_at,
        },
    ).returning(*(table.c[name] for name in _RETURNED))


@dataclass(frozen=True)
class IngestRequest:
    """One sender request: its integration, its normalised alerts, the integration's routing rules."""

    integration: Integration
    alerts: Sequence[NormalizedAlert]
    routes: Sequence[IntegrationRoute] | None = None


def ingest(
    session: Session,
    *,
    integration: Integration,
    alerts: Sequence[NormalizedAlert],
    now: dt.datetime,
    routes: Sequence[IntegrationRoute] | None = None,
) -> list[IngestResult]:
    """Apply every normalised alert from one request of `integration` in the session's transaction.

    `routes` are the integration's routing rules when the caller already has them.
    """
    [results] = ingest_many(session, requests=[IngestRequest(integration, alerts, routes)], now=now)
    return results


def ingest_many(
    session: Session, *, requests: Sequence[IngestRequest], now: dt.datetime
) -> list[list[IngestResult]]:
    """Apply several requests in the session's transaction, as if one after another; results per request.

    Within a request, resolves and acknowledgements apply before new firings (a payload may
    resolve an alert and fire its key again). Firings of all requests are written together in a
    few statements; a resolve or acknowledgement of a key that an earlier request fired writes
    the pending firings first, so each key sees its changes in request order.
    """
    results: list[list[IngestResult | None]] = [[None] * len(r.alerts) for r in requests]
    pending: list[tuple[int, int, _Firing]] = []
    pending_keys: set[tuple[int, str]] = set()

    def write_pending() -> None:
        # One lock order for every transaction (stable: repeats of a key keep request order),
        # so concurrent writers cannot deadlock on each other's rows.
        pending.sort(key=lambda p: (p[2][1] or 0, p[2][3].dedup_key))
        upserted = _upsert_firing_many(session, [item for _, _, item in pending], now)
        for (r_index, a_index, _), result in zip(pending, upserted, strict=True):
            results[r_index][a_index] = result
        pending.clear()
        pending_keys.clear()

    for r_index, request in enumerate(requests):
        integration = request.integration
        assert integration.id is not None
        actor = Actor(label=integration.name, channel="integration")
        routes = request.routes
        if routes is None:
            routes = routes_of(session, integration_id=integration.id)
        firing: list[tuple[int, int, _Firing]] = []
        for a_index, alert in enumerate(request.alerts):
            if alert.action == "trigger":
                team_id, policy_id = _route(integration, routes, alert.labels)
                firing.append((r_index, a_index, (team_id, integration.id, policy_id, alert, actor)))
                continue
            if (integration.id, alert.dedup_key) in pending_keys:
                write_pending()
            results[r_index][a_index] = _signal(session, integration.id, alert, actor, now)
        pending.extend(firing)
        pending_keys.update((integration.id, item[3].dedup_key) for _, _, item in firing)
    if pending:
        write_pending()
    return [[r for r in per_request if r is not None] for per_request in results]


def _signal(
    session: Session, integration_id: int, alert: NormalizedAlert, actor: Actor, now: dt.datetime
) -> IngestResult:
    open_alert = _open_alert(session, integration_id=integration_id, dedup_key=alert.dedup_key)
    action = lifecycle.ingest_action(open_alert.status if open_alert else None, alert.action)
    if action is IngestAction.IGNORE or open_alert is None:
        return IngestResult(IngestAction.IGNORE, open_alert.id if open_alert else None, alert.dedup_key)
    transition = Transition.RESOLVE if action is IngestAction.RESOLVE else Transition.ACKNOWLEDGE
    _apply(session, open_alert, transition, actor, note="", now=now, payload=alert.raw)
    return IngestResult(action, open_alert.id, alert.dedup_key)


def _open_alert(session: Session, *, integration_id: int, dedup_key: str) -> Alert | None:
    return session.exec(
        select(Alert)
        .where(
            Alert.integration_id == integration_id,
            Alert.dedup_key == dedup_key,
            Alert.status != AlertStatus.RESOLVED,
        )
        .with_for_update()
    ).first()


def get_alert(session: Session, *, alert_id: int, for_update: bool = False) -> Alert:
    """The alert with this id, or NotFound."""
    query = select(Alert).where(Alert.id == alert_id)
    alert = session.exec(query.with_for_update() if for_update else query).first()
    if alert is None:
        raise NotFound(f"alert {alert_id} not found", field="alert_id")
    return alert


def transition(
    session: Session,
    *,
    alert_id: int,
    transition: Transition,
    actor: Actor,
    now: dt.datetime,
    note: str = "",
    silence_for: dt.timedelta | None = None,
) -> Alert:
    """Acknowledge, unacknowledge, resolve, silence or unsilence an alert; 409 when not allowed."""
    alert = get_alert(session, alert_id=alert_id, for_update=True)
    _apply(session, alert, transition, actor, note=note, now=now, silence_for=silence_for)
    return alert


# Changes the integration's Slack message and the team's outgoing webhooks hear about.
_ANNOUNCED = {
    Transition.ACKNOWLEDGE: "acknowledged",
    Transition.UNACKNOWLEDGE: "unacknowledged",
    Transition.RESOLVE: "resolved",
}

_EVENT_OF = {
    Transition.ACKNOWLEDGE: AlertEventKind.ACKNOWLEDGED,
    Transition.UNACKNOWLEDGE: AlertEventKind.UNACKNOWLEDGED,
    Transition.RESOLVE: AlertEventKind.RESOLVED,
    Transition.SILENCE: AlertEventKind.SILENCED,
    Transition.UNSILENCE: AlertEventKind.UNSILENCED,
}


def _apply(
    session: Session,
    alert: Alert,
    change: Transition,
    actor: Actor,
    *,
    note: str,
    now: dt.datetime,
    silence_for: dt.timedelta | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    assert alert.id is not None
    silenced_before = alert.silenced_until
    state = lifecycle.AlertState(alert.status, alert.silenced_until)
    try:
        after = lifecycle.apply(state, change, now=now, silence_for=silence_for)
    except lifecycle.InvalidTransition as exc:
        raise Conflict(
            f"cannot {change.value}: {exc.reason} (status: {alert.status})", field="status"
        ) from None
    alert.status, alert.silenced_until, alert.updated_at = after.status, after.silenced_until, now
    if change is Transition.ACKNOWLEDGE:
        alert.acknowledged_at, alert.acknowledged_by_id = now, actor.user_id
        if actor.user_id is not None:
            alert.assigned_to_id = actor.user_id
    elif change is Transition.UNACKNOWLEDGE:
        alert.acknowledged_at, alert.acknowledged_by_id = None, None
    elif change is Transition.RESOLVE:
        alert.resolved_at, alert.resolved_by_id = now, actor.user_id
    session.add(alert)
    event_payload = dict(payload or {})
    if change is Transition.SILENCE and alert.silenced_until is not None:
        event_payload["silenced_until"] = alert.silenced_until.isoformat()
    _event(session, alert.id, _EVENT_OF[change], actor, note=note, payload=event_payload, at=now)
    escalations.on_transition(
        session, alert=alert, change=change, now=now, silenced_until_before=silenced_before
    )
    if change in _ANNOUNCED:
        outbox.on_alerts_changed(session, changes=[(alert, _ANNOUNCED[change])], now=now)
    alert_events.publish_updated(session, alert, change.value)


def add_note(session: Session, *, alert_id: int, actor: Actor, note: str, now: dt.datetime) -> AlertEvent:
    """Add a note to an alert's timeline."""
    alert = get_alert(session, alert_id=alert_id)
    assert alert.id is not None
    event = AlertEvent(
        alert_id=alert.id,
        kind=AlertEventKind.NOTE,
        actor_user_id=actor.user_id,
        actor=actor.label,
        channel=actor.channel,
        note=note,
        created_at=now,
    )
    session.add(event)
    alert_events.publish_updated(session, alert, "note")
    return event


def expire_silences(session: Session, *, now: dt.datetime, limit: int = 500) -> list[int]:
    """Lift silences that ran out, with a timeline entry; safe to run from several processes."""
    due = session.exec(
        select(Alert)
        .where(
            col(Alert.silenced_until).is_not(None),
            col(Alert.silenced_until) <= now,
            Alert.status != AlertStatus.RESOLVED,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    lifted: list[int] = []
    system = Actor(label="silence expired", channel="system")
    for alert in due:
        assert alert.id is not None
        alert.silenced_until, alert.updated_at = None, now
        session.add(alert)
        _event(session, alert.id, AlertEventKind.UNSILENCED, system, at=now)
        alert_events.publish_updated(session, alert, "unsilence")
        lifted.append(alert.id)
    return lifted


def timeline(session: Session, *, alert_id: int) -> list[AlertEvent]:
    """An alert's timeline, oldest first."""
    return list(
        session.exec(
            select(AlertEvent)
            .where(AlertEvent.alert_id == alert_id)
            .order_by(col(AlertEvent.created_at), col(AlertEvent.id))
        ).all()
    )
