"""Alerts, incidents and integrations: queries, lifecycle mutations and the Alert type's fields."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from ariadne import MutationType, ObjectType, QueryType
from graphql import GraphQLResolveInfo
from sqlmodel import Session, col, or_, select

from sentinel_app.api.deps import Principal
from sentinel_app.api.gql import access
from sentinel_app.api.gql.context import atomic, ctx
from sentinel_app.api.gql.errors import bad_input
from sentinel_app.api.gql.scalars import optional_id, page_size, parse_id, text_arg
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.models import Alert, AlertEvent, Incident, Integration
from sentinel_app.models.base import require_id
from sentinel_app.services import alerts as alert_service

MAX_LABEL_FILTERS = 20
MAX_SILENCE_MINUTES = 7 * 24 * 60

query = QueryType()
mutation = MutationType()
alert_type = ObjectType("Alert")
event_type = ObjectType("AlertEvent")
delivery_type = ObjectType("NotificationDelivery")
incident_type = ObjectType("Incident")
integration_type = ObjectType("Integration")


# --- filters and pages -----------------------------------------------------------------------


@dataclass(frozen=True)
class AlertCriteria:
    """What an `AlertFilter` asks for; used as SQL (queries) and in Python (subscriptions)."""

    statuses: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    team_id: int | None = None
    integration_id: int | None = None
    assigned_to_id: int | None = None
    labels: tuple[tuple[str, str], ...] = ()
    text: str = ""
    fired_after: dt.datetime | None = None
    fired_before: dt.datetime | None = None
    visible_teams: frozenset[int] | None = field(default=None, compare=False)

    def matches(self, alert: Alert) -> bool:
        """Whether `alert` passes this filter (the caller's visibility included)."""
        checks = (
            self.visible_teams is None or alert.team_id in self.visible_teams,
            not self.statuses or alert.status in self.statuses,
            not self.severities or alert.severity in self.severities,
            self.team_id is None or alert.team_id == self.team_id,
            self.integration_id is None or alert.integration_id == self.integration_id,
            self.assigned_to_id is None or alert.assigned_to_id == self.assigned_to_id,
            all(alert.labels.get(k) == v for k, v in self.labels),
            not self.text or self.text.lower() in f"{alert.title}\n{alert.message}".lower(),
            self.fired_after is None or alert.fired_at >= self.fired_after,
            self.fired_before is None or alert.fired_at < self.fired_before,
        )
        return all(checks)

    def passes_event(self, data: dict[str, Any]) -> bool:
        """A cheap first check on a bus event's data (team, status, severity), before loading the row."""
        team = data.get("team_id")
        return (
            (self.visible_teams is None or team in self.visible_teams)
            and (self.team_id is None or team == self.team_id)
            and (not self.statuses or data.get("status") in self.statuses)
            and (not self.severities or data.get("severity") in self.severities)
        )


def criteria_of(
    principal: Principal, raw: dict[str, Any] | None, *, status: str | None = None
) -> AlertCriteria:
    """Parse an `AlertFilter` input (BAD_USER_INPUT / NOT_FOUND for bad values)."""
    raw = raw or {}
    statuses = tuple(raw.get("status") or ())
    if status is not None:
        if statuses:
            raise bad_input("give the status either as an argument or in the filter, not both", "status")
        statuses = (status,)
    team_id = optional_id(raw.get("team"), "filter.team")
    visible = access.team_scope(principal, team_id)
    labels = raw.get("labels") or []
    if len(labels) > MAX_LABEL_FILTERS:
        raise bad_input(f"at most {MAX_LABEL_FILTERS} label filters", "filter.labels")
    for item in labels:
        if not item["key"]:
            raise bad_input("label keys must not be empty", "filter.labels")
    return AlertCriteria(
        statuses=statuses,
        severities=tuple(raw.get("severity") or ()),
        team_id=team_id,
        integration_id=optional_id(raw.get("integration"), "filter.integration"),
        assigned_to_id=optional_id(raw.get("assigned_to"), "filter.assignedTo"),
        labels=tuple((item["key"], item["value"]) for item in labels),
        text=text_arg(raw.get("text"), "filter.text", max_length=200),
        fired_after=raw.get("fired_after"),
        fired_before=raw.get("fired_before"),
        visible_teams=frozenset(visible) if visible is not None else None,
    )


def encode_cursor(alert: Alert) -> str:
    """The opaque position of `alert` in the newest-first order."""
    return base64.urlsafe_b64encode(json.dumps([alert.fired_at.isoformat(), alert.id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        value, alert_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        at = dt.datetime.fromisoformat(value)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, int(alert_id)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise bad_input("invalid cursor", "after") from None


def alert_page(
    session: Session, criteria: AlertCriteria, *, first: int, after: str | None
) -> tuple[list[Alert], bool]:
    """One page of matching alerts, newest first (keyset pagination), and whether more follow."""
    query = select(Alert)
    if criteria.visible_teams is not None:
        query = query.where(col(Alert.team_id).in_(sorted(criteria.visible_teams)))
    if criteria.statuses:
        query = query.where(col(Alert.status).in_(criteria.statuses))
    if criteria.severities:
        query = query.where(col(Alert.severity).in_(criteria.severities))
    if criteria.integration_id is not None:
        query = query.where(Alert.integration_id == criteria.integration_id)
    if criteria.assigned_to_id is not None:
        query = query.where(Alert.assigned_to_id == criteria.assigned_to_id)
    labels_column: sa.Column[Any] = Alert.__table__.c.labels  # type: ignore[attr-defined]
    for key, wanted in criteria.labels:
        query = query.where(labels_column[key].as_string() == wanted)
    if criteria.text:
        escaped = criteria.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(col(Alert.title).ilike(pattern, escape="\\"), col(Alert.message).ilike(pattern, escape="\\"))
        )
    if criteria.fired_after is not None:
        query = query.where(col(Alert.fired_at) >= criteria.fired_after)
    if criteria.fired_before is not None:
        query = query.where(col(Alert.fired_at) < criteria.fired_before)
    if after:
        at, last_id = _decode_cursor(after)
        query = query.where(
            or_(col(Alert.fired_at) < at, (col(Alert.fired_at) == at) & (col(Alert.id) < last_id))
        )
    rows = list(
        session.exec(query.order_by(col(Alert.fired_at).desc(), col(Alert.id).desc()).limit(first + 1))
    )
    return rows[:first], len(rows) > first


def _page(
    info: GraphQLResolveInfo,
    raw: dict[str, Any] | None,
    size: int,
    after: str | None,
    status: str | None = None,
) -> tuple[list[Alert], bool]:
    context = ctx(info)
    criteria = criteria_of(context.principal, raw, status=status)
    rows, more = context.db(lambda s: alert_page(s, criteria, first=size, after=after))
    context.loaders.hint_alerts(rows)
    return rows, more


@query.field("alerts")
def resolve_alerts(
    _: Any,
    info: GraphQLResolveInfo,
    status: str | None = None,
    limit: int | None = None,
    filter: dict[str, Any] | None = None,
    first: int | None = None,
    after: str | None = None,
) -> list[Alert]:
    """Newest alerts first; `limit` and `first` are synonyms."""
    if limit is not None and first is not None:
        raise bad_input("give either limit or first, not both", "first")
    size = page_size(first if first is not None else limit, "first" if first is not None else "limit")
    rows, _ = _page(info, filter, size, after, status)
    return rows


@query.field("alertsConnection")
def resolve_alerts_connection(
    _: Any,
    info: GraphQLResolveInfo,
    filter: dict[str, Any] | None = None,
    first: int | None = None,
    after: str | None = None,
) -> dict[str, Any]:
    """The same alerts as a Relay-style connection."""
    rows, more = _page(info, filter, page_size(first), after)
    edges = [{"cursor": encode_cursor(a), "node": a} for a in rows]
    return {
        "edges": edges,
        "nodes": rows,
        # Keys in snake_case: the schema's camelCase names are converted when resolved.
        "page_info": {"has_next_page": more, "end_cursor": edges[-1]["cursor"] if edges else None},
    }


def _visible_alert(info: GraphQLResolveInfo, alert_id: int, action: str, *, lock: bool = False) -> Alert:
    context = ctx(info)
    principal = context.principal
    alert = context.db(lambda s: alert_service.get_alert(s, alert_id=alert_id, for_update=lock))
    access.require_visible(principal, alert.team_id, action, what="alert", ident=alert_id, field="alertId")
    return alert


@query.field("alert")
def resolve_alert(_: Any, info: GraphQLResolveInfo, id: str) -> Alert:
    """One alert (NOT_FOUND when missing or not visible)."""
    alert = _visible_alert(info, parse_id(id, "id"), "read")
    ctx(info).loaders.hint_alerts([alert])
    return alert


# --- the Alert type --------------------------------------------------------------------------


def _pairs(mapping: dict[str, Any] | None) -> list[dict[str, str]]:
    return [{"key": str(k), "value": str(v)} for k, v in sorted((mapping or {}).items())]


@alert_type.field("labels")
def resolve_labels(alert: Alert, _: GraphQLResolveInfo) -> list[dict[str, str]]:
    """Labels as sorted key/value pairs."""
    return _pairs(alert.labels)


@alert_type.field("annotations")
def resolve_annotations(alert: Alert, _: GraphQLResolveInfo) -> list[dict[str, str]]:
    """Annotations as sorted key/value pairs."""
    return _pairs(alert.annotations)


@alert_type.field("links")
def resolve_links(alert: Alert, _: GraphQLResolveInfo) -> list[dict[str, Any]]:
    """Links that have a URL."""
    return [
        {"kind": str(link.get("kind") or "link"), "url": str(link["url"]), "title": link.get("title")}
        for link in alert.links or []
        if isinstance(link, dict) and link.get("url")
    ]


@alert_type.field("team")
def resolve_alert_team(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """The owning team."""
    return ctx(info).loaders.teams.get(alert.team_id)


def _user(info: GraphQLResolveInfo, user_id: int | None) -> Any:
    return None if user_id is None else ctx(info).loaders.users.get(user_id)


@alert_type.field("assignedTo")
def resolve_assigned_to(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """The assignee (set on acknowledgement or reassignment)."""
    return _user(info, alert.assigned_to_id)


@alert_type.field("acknowledgedBy")
def resolve_acknowledged_by(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """Who acknowledged."""
    return _user(info, alert.acknowledged_by_id)


@alert_type.field("resolvedBy")
def resolve_resolved_by(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """Who resolved (null for a source's resolve)."""
    return _user(info, alert.resolved_by_id)


@alert_type.field("integration")
def resolve_alert_integration(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """Where the alert came from."""
    return None if alert.integration_id is None else ctx(info).loaders.integrations.get(alert.integration_id)


@alert_type.field("escalationPolicy")
def resolve_alert_policy(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """The policy it escalates by."""
    if alert.escalation_policy_id is None:
        return None
    return ctx(info).loaders.policies.get(alert.escalation_policy_id)


@alert_type.field("incident")
def resolve_alert_incident(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """The incident grouping it."""
    return None if alert.incident_id is None else ctx(info).loaders.incidents.get(alert.incident_id)


@alert_type.field("escalation")
def resolve_escalation(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """The durable escalation row."""
    return ctx(info).loaders.escalations.get(require_id(alert))


@alert_type.field("lastEvent")
def resolve_last_event(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """The newest timeline entry."""
    return ctx(info).loaders.last_events.get(require_id(alert))


@alert_type.field("timeline")
def resolve_timeline(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """The whole timeline, oldest first."""
    return ctx(info).loaders.timelines.get(require_id(alert))


@alert_type.field("notifications")
def resolve_notifications(alert: Alert, info: GraphQLResolveInfo) -> Any:
    """Outbox rows of this alert, oldest first."""
    return ctx(info).loaders.notifications.get(require_id(alert))


@alert_type.field("cursor")
def resolve_cursor(alert: Alert, _: GraphQLResolveInfo) -> str:
    """This alert's position for `after`."""
    return encode_cursor(alert)


@event_type.field("at")
def resolve_event_at(event: AlertEvent, _: GraphQLResolveInfo) -> dt.datetime:
    """When it happened."""
    return event.created_at


@event_type.field("actorUser")
def resolve_event_user(event: AlertEvent, info: GraphQLResolveInfo) -> Any:
    """The user who acted, if a user did."""
    return _user(info, event.actor_user_id)


@delivery_type.field("user")
def resolve_delivery_user(row: Any, info: GraphQLResolveInfo) -> Any:
    """The person the message is for."""
    return _user(info, row.user_id)


# --- incidents and integrations --------------------------------------------------------------


@query.field("incidents")
def resolve_incidents(
    _: Any,
    info: GraphQLResolveInfo,
    status: str | None = None,
    team: str | None = None,
    first: int | None = None,
) -> list[Incident]:
    """Visible incidents, newest first."""
    context = ctx(info)
    teams = access.team_scope(context.principal, optional_id(team, "team"))
    size = page_size(first)
    stmt = select(Incident).order_by(col(Incident.created_at).desc(), col(Incident.id).desc()).limit(size)
    if teams is not None:
        stmt = stmt.where(col(Incident.team_id).in_(sorted(teams)))
    if status is not None:
        stmt = stmt.where(Incident.status == status)
    rows = list(context.db(lambda s: s.exec(stmt).all()))
    context.loaders.teams.hint(r.team_id for r in rows)
    context.loaders.users.hint(r.created_by_id for r in rows)
    context.loaders.incident_alerts.hint(require_id(r) for r in rows)
    return rows


@incident_type.field("team")
def resolve_incident_team(incident: Incident, info: GraphQLResolveInfo) -> Any:
    """The owning team."""
    return ctx(info).loaders.teams.get(incident.team_id)


@incident_type.field("createdBy")
def resolve_incident_creator(incident: Incident, info: GraphQLResolveInfo) -> Any:
    """Who opened it."""
    return _user(info, incident.created_by_id)


@incident_type.field("alerts")
def resolve_incident_alerts(incident: Incident, info: GraphQLResolveInfo) -> Any:
    """Its alerts, newest first."""
    return ctx(info).loaders.incident_alerts.get(require_id(incident))


@query.field("integrations")
def resolve_integrations(_: Any, info: GraphQLResolveInfo, team: str | None = None) -> list[Integration]:
    """Visible integrations by team and name (never their tokens)."""
    context = ctx(info)
    teams = access.team_scope(context.principal, optional_id(team, "team"))
    stmt = select(Integration).order_by(col(Integration.team_id), col(Integration.name))
    if teams is not None:
        stmt = stmt.where(col(Integration.team_id).in_(sorted(teams)))
    rows = list(context.db(lambda s: s.exec(stmt).all()))
    context.loaders.teams.hint(r.team_id for r in rows)
    context.loaders.policies.hint(r.default_escalation_policy_id for r in rows)
    return rows


@integration_type.field("team")
def resolve_integration_team(row: Integration, info: GraphQLResolveInfo) -> Any:
    """The owning team."""
    return ctx(info).loaders.teams.get(row.team_id)


@integration_type.field("defaultEscalationPolicy")
def resolve_integration_policy(row: Integration, info: GraphQLResolveInfo) -> Any:
    """The policy of alerts no route claims."""
    policy_id = row.default_escalation_policy_id
    return None if policy_id is None else ctx(info).loaders.policies.get(policy_id)


# --- mutations -------------------------------------------------------------------------------


def _transition(
    info: GraphQLResolveInfo,
    alert_id: str,
    change: Transition,
    note: str | None,
    *,
    silence_for: dt.timedelta | None = None,
) -> Alert:
    context = ctx(info)
    ident = parse_id(alert_id, "alertId")
    text = text_arg(note, "note")
    _visible_alert(info, ident, "write", lock=True)
    return alert_service.transition(
        context.write_session(),
        alert_id=ident,
        transition=change,
        actor=access.actor(context.principal),
        now=context.now,
        note=text,
        silence_for=silence_for,
    )


@mutation.field("acknowledgeAlert")
@atomic
def resolve_acknowledge(_: Any, info: GraphQLResolveInfo, alert_id: str, note: str | None = None) -> Alert:
    """Acknowledge (assigns the alert to the caller)."""
    return _transition(info, alert_id, Transition.ACKNOWLEDGE, note)


@mutation.field("unacknowledgeAlert")
@atomic
def resolve_unacknowledge(_: Any, info: GraphQLResolveInfo, alert_id: str, note: str | None = None) -> Alert:
    """Back to firing."""
    return _transition(info, alert_id, Transition.UNACKNOWLEDGE, note)


@mutation.field("resolveAlert")
@atomic
def resolve_resolve(_: Any, info: GraphQLResolveInfo, alert_id: str, note: str | None = None) -> Alert:
    """Resolve from any open state."""
    return _transition(info, alert_id, Transition.RESOLVE, note)


@mutation.field("silenceAlert")
@atomic
def resolve_silence(
    _: Any, info: GraphQLResolveInfo, alert_id: str, minutes: int, note: str | None = None
) -> Alert:
    """Silence for a while."""
    if not 1 <= minutes <= MAX_SILENCE_MINUTES:
        raise bad_input(f"minutes must be between 1 and {MAX_SILENCE_MINUTES}", "minutes")
    return _transition(info, alert_id, Transition.SILENCE, note, silence_for=dt.timedelta(minutes=minutes))


@mutation.field("addAlertNote")
@atomic
def resolve_add_note(_: Any, info: GraphQLResolveInfo, alert_id: str, note: str) -> AlertEvent:
    """A note on the timeline."""
    context = ctx(info)
    ident = parse_id(alert_id, "alertId")
    text = text_arg(note, "note", required=True)
    _visible_alert(info, ident, "write")
    return alert_service.add_note(
        context.write_session(),
        alert_id=ident,
        actor=access.actor(context.principal),
        note=text,
        now=context.now,
    )


@mutation.field("escalateAlert")
@atomic
def resolve_escalate(_: Any, info: GraphQLResolveInfo, alert_id: str) -> Alert:
    """The next escalation step, now."""
    from sentinel_app.services import escalations  # owned by the escalation work; imported when used

    context = ctx(info)
    ident = parse_id(alert_id, "alertId")
    _visible_alert(info, ident, "write", lock=True)
    session = context.write_session()
    escalations.escalate_now(session, alert_id=ident, actor=access.actor(context.principal), now=context.now)
    return alert_service.get_alert(session, alert_id=ident)


bindables: Sequence[Any] = (
    query,
    mutation,
    alert_type,
    event_type,
    delivery_type,
    incident_type,
    integration_type,
)
