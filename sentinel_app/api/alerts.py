"""REST for alerts: raise, list with filters and cursor pages, detail with timeline, lifecycle actions."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlmodel import Session, col, or_, select

from sentinel_app.api.deps import Principal, principal, read_db, write_db
from sentinel_app.api.errors import ApiError
from sentinel_app.api.schemas import (
    AddNoteBody,
    AlertCreate,
    AlertDetail,
    AlertOut,
    AlertPage,
    EventOut,
    NoteBody,
    ResolveBody,
    SilenceBody,
    Strict,
)
from sentinel_app.db import utcnow
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.ingest.normalized import NormalizedAlert
from sentinel_app.models import Alert
from sentinel_app.services import alerts as alert_service
from sentinel_app.services import escalations as escalation_service

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

MAX_PAGE = 200
_SORTS = {"fired_at": Alert.fired_at, "last_seen_at": Alert.last_seen_at, "created_at": Alert.created_at}


def _actor(who: Principal, channel: str = "api") -> alert_service.Actor:
    return alert_service.Actor(
        user_id=who.user_id, label=who.user.name, channel=channel, api_key_id=who.api_key_id
    )


def _out(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(alert, from_attributes=True)


@router.post("", status_code=201, response_model=AlertOut, summary="Raise an alert")
def create_alert(
    body: AlertCreate, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> AlertOut:
    """Raise an alert for a team; a repeat with the same dedup key counts an occurrence."""
    who.require("write", body.team_id)
    dedup = (
        body.dedup_key
        or hashlib.sha256(json.dumps([body.title, sorted(body.labels.items())]).encode()).hexdigest()[:40]
    )
    normalized = NormalizedAlert(
        action="trigger",
        dedup_key=dedup,
        title=body.title,
        message=body.message,
        severity=body.severity,
        labels=body.labels,
        annotations=body.annotations,
        links=body.links,
        source="api",
        raw=body.model_dump(),
    )
    result = alert_service.upsert_firing(
        session,
        team_id=body.team_id,
        integration_id=None,
        escalation_policy_id=body.escalation_policy_id,
        alert=normalized,
        actor=_actor(who),
        now=utcnow(),
    )
    assert result.alert_id is not None
    return _out(alert_service.get_alert(session, alert_id=result.alert_id))


def _encode_cursor(sort_value: dt.datetime, alert_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([sort_value.isoformat(), alert_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        value, alert_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return dt.datetime.fromisoformat(value), int(alert_id)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ApiError(422, "invalid cursor", field="cursor") from None


@router.get("", response_model=AlertPage, summary="List alerts")
def list_alerts(
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
    status: Annotated[list[Literal["firing", "acknowledged", "resolved"]] | None, Query()] = None,
    severity: Annotated[list[Literal["critical", "error", "warning", "info"]] | None, Query()] = None,
    team_id: int | None = None,
    integration_id: int | None = None,
    label: Annotated[list[str] | None, Query(description="k=v, repeatable (all must match)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in title or message")] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    sort: Literal["fired_at", "last_seen_at", "created_at"] = "fired_at",
    order: Literal["desc", "asc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: str | None = None,
) -> AlertPage:
    """Alerts visible to the caller, newest first by default, in keyset-paginated pages."""
    if team_id is not None:
        who.require("read", team_id)
    column = _SORTS[sort]
    query = select(Alert)
    visible = who.visible_team_ids()
    if visible is not None:
        query = query.where(col(Alert.team_id).in_(visible))
    if status:
        query = query.where(col(Alert.status).in_(status))
    if severity:
        query = query.where(col(Alert.severity).in_(severity))
    if team_id is not None:
        query = query.where(Alert.team_id == team_id)
    if integration_id is not None:
        query = query.where(Alert.integration_id == integration_id)
    for item in label or []:
        key, sep, wanted = item.partition("=")
        if not sep or not key:
            raise ApiError(422, f"label filter {item!r} must look like key=value", field="label")
        labels_column: sa.Column[Any] = Alert.__table__.c.labels  # type: ignore[attr-defined]
        query = query.where(labels_column[key].as_string() == wanted)
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(col(Alert.title).ilike(pattern, escape="\\"), col(Alert.message).ilike(pattern, escape="\\"))
        )
    if since is not None:
        query = query.where(col(Alert.fired_at) >= _aware(since, "since"))
    if until is not None:
        query = query.where(col(Alert.fired_at) < _aware(until, "until"))
    descending = order == "desc"
    if cursor:
        after, last_id = _decode_cursor(cursor)
        if descending:
            query = query.where(or_(column < after, (column == after) & (col(Alert.id) < last_id)))  # type: ignore[operator]
        else:
            query = query.where(or_(column > after, (column == after) & (col(Alert.id) > last_id)))  # type: ignore[operator]
    ordering = (column.desc(), col(Alert.id).desc()) if descending else (column.asc(), col(Alert.id).asc())  # type: ignore[attr-defined]
    rows = list(session.exec(query.order_by(*ordering).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor(getattr(rows[-1], sort), rows[-1].id or 0) if more and rows else None
    return AlertPage(items=[_out(a) for a in rows], next_cursor=next_cursor)


def _aware(value: dt.datetime, field: str) -> dt.datetime:
    if value.tzinfo is None:
        raise ApiError(422, f"{field} needs a timezone offset (e.g. Z)", field=field)
    return value


def _visible_alert(
    session: Session, who: Principal, alert_id: int, action: str, *, lock: bool = False
) -> Alert:
    alert = alert_service.get_alert(session, alert_id=alert_id, for_update=lock)
    who.require_visible(alert.team_id, action, what="alert", ident=alert_id, field="alert_id")
    return alert


@router.get("/{alert_id}", response_model=AlertDetail, summary="An alert with its timeline")
def get_alert(
    alert_id: int, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> AlertDetail:
    """One alert and its full timeline."""
    alert = _visible_alert(session, who, alert_id, "read")
    events = [
        EventOut.model_validate(e, from_attributes=True)
        for e in alert_service.timeline(session, alert_id=alert_id)
    ]
    return AlertDetail(**_out(alert).model_dump(), timeline=events)


def _transition(
    session: Session,
    who: Principal,
    alert_id: int,
    change: Transition,
    *,
    note: str = "",
    silence_for: dt.timedelta | None = None,
) -> AlertOut:
    _visible_alert(session, who, alert_id, "write", lock=True)
    alert = alert_service.transition(
        session,
        alert_id=alert_id,
        transition=change,
        actor=_actor(who),
        now=utcnow(),
        note=note,
        silence_for=silence_for,
    )
    return _out(alert)


@router.post("/{alert_id}/acknowledge", response_model=AlertOut, summary="Acknowledge")
def acknowledge(
    alert_id: int,
    body: NoteBody | None = None,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> AlertOut:
    """Acknowledge: stops escalation and assigns the alert to the caller."""
    return _transition(session, who, alert_id, Transition.ACKNOWLEDGE, note=body.note if body else "")


@router.post("/{alert_id}/unacknowledge", response_model=AlertOut, summary="Unacknowledge")
def unacknowledge(
    alert_id: int,
    body: NoteBody | None = None,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> AlertOut:
    """Return an acknowledged alert to firing (escalation restarts)."""
    return _transition(session, who, alert_id, Transition.UNACKNOWLEDGE, note=body.note if body else "")


@router.post("/{alert_id}/resolve", response_model=AlertOut, summary="Resolve")
def resolve(
    alert_id: int,
    body: ResolveBody | None = None,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> AlertOut:
    """Resolve from any open state."""
    return _transition(session, who, alert_id, Transition.RESOLVE, note=body.resolution_note if body else "")


@router.post("/{alert_id}/silence", response_model=AlertOut, summary="Silence for a while")
def silence(
    alert_id: int,
    body: SilenceBody,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> AlertOut:
    """Silence notifications for a duration; the silence lifts by itself."""
    return _transition(
        session,
        who,
        alert_id,
        Transition.SILENCE,
        note=body.note,
        silence_for=dt.timedelta(minutes=body.duration_minutes),
    )


@router.post("/{alert_id}/unsilence", response_model=AlertOut, summary="Lift a silence")
def unsilence(
    alert_id: int,
    body: NoteBody | None = None,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> AlertOut:
    """Lift a silence early."""
    return _transition(session, who, alert_id, Transition.UNSILENCE, note=body.note if body else "")


@router.post("/{alert_id}/notes", response_model=EventOut, status_code=201, summary="Add a note")
def add_note(
    alert_id: int,
    body: AddNoteBody,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> EventOut:
    """Add a note to the alert's timeline."""
    _visible_alert(session, who, alert_id, "write")
    event = alert_service.add_note(
        session, alert_id=alert_id, actor=_actor(who), note=body.note, now=utcnow()
    )
    session.flush()
    return EventOut.model_validate(event, from_attributes=True)


class AssignBody(Strict):
    """Who should own the alert."""

    user_id: int = Field(ge=1)
    note: str = Field(default="", max_length=10_000)


@router.post("/{alert_id}/escalate", response_model=AlertOut, summary="Escalate now")
def escalate(
    alert_id: int,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> AlertOut:
    """Skip the current wait: the next step of the escalation policy runs now (409 unless firing)."""
    alert = _visible_alert(session, who, alert_id, "write", lock=True)
    escalation_service.escalate_now(session, alert_id=alert_id, actor=_actor(who), now=utcnow())
    return _out(alert)


@router.post("/{alert_id}/assign", response_model=AlertOut, summary="Reassign")
def assign(
    alert_id: int,
    body: AssignBody,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> AlertOut:
    """Give the alert to another member of its team (recorded on the timeline)."""
    _visible_alert(session, who, alert_id, "write", lock=True)
    alert = escalation_service.reassign(
        session, alert_id=alert_id, user_id=body.user_id, actor=_actor(who), now=utcnow()
    )
    return _out(alert)
