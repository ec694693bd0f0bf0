"""Read models of the dashboard: plain-data snapshots of alerts, counts, on-call, timelines.

Everything here is synchronous database code (run it in a worker thread from page states, see
`pages.state.in_db`) and returns plain, picklable data, never ORM rows: page states keep these
in their (pickled) backend vars and turn them into display dicts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, or_, select

from sentinel_app.models import (
    Alert,
    AlertEvent,
    AlertStatus,
    Integration,
    Notification,
    Schedule,
    Team,
    User,
)
from sentinel_app.services import schedules as schedule_service

SEVERITIES = ("critical", "error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
STATUSES = ("firing", "acknowledged", "resolved")
OPEN_STATUSES = ("firing", "acknowledged")
# Filter values of the status selector besides the single statuses.
STATUS_FILTERS = ("open", "firing", "acknowledged", "resolved", "all")
SORTS = ("newest", "oldest", "severity", "last_seen")


def iso(value: dt.datetime | None) -> str:
    """ISO 8601 in UTC with a Z (empty for None), as the browser's Date.parse expects."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def short_time(value: dt.datetime | None) -> str:
    """ "YYYY-MM-DD HH:MM UTC" for tables (the browser's clock script shows relative times)."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration_text(seconds: float) -> str:
    """A compact duration: 45s, 12m, 3h 05m, 2d 4h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


# --- alerts ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AlertSnap:
    """One alert as the dashboard shows it (names resolved), detached from any session."""

    id: int
    team_id: int
    team: str
    integration_id: int | None
    integration: str
    status: str
    severity: str
    title: str
    message: str
    labels: dict[str, str]
    source: str
    occurrences: int
    fired_at: dt.datetime
    last_seen_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acked_by: str
    resolved_at: dt.datetime | None
    resolved_by: str
    assigned_to: str
    silenced_until: dt.datetime | None

    def row(self) -> dict[str, str]:
        """The display dict of list pages (every value a string, as `rx.foreach` likes them).

        Computed once per snapshot: one snapshot serves every open tab (`pages.live`), so a
        storm formats each alert once, not once per tab. Treat the dict as read-only.
        """
        return self._row

    @functools.cached_property
    def _row(self) -> dict[str, str]:
        return {
            "id": str(self.id),
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "team": self.team,
            "integration": self.integration or self.source,
            "fired_at": iso(self.fired_at),
            "fired_text": short_time(self.fired_at),
            "acked_by": self.acked_by,
            "occurrences": str(self.occurrences),
            "labels": ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))[:160],
            "silenced": "yes" if self.silenced_until is not None else "",
        }


@dataclasses.dataclass(frozen=True)
class AlertFilter:
    """What the alert list shows; the same rules apply in SQL and to live updates."""

    status: str = "open"
    severity: str = ""
    team_id: int | None = None
    integration_id: int | None = None
    labels: tuple[tuple[str, str], ...] = ()
    text: str = ""
    sort: str = "newest"

    def statuses(self) -> tuple[str, ...]:
        """The alert statuses this filter admits."""
        if self.status == "open":
            return OPEN_STATUSES
        if self.status == "all":
            return STATUSES
        return (self.status,)

    def matches(self, snap: AlertSnap) -> bool:
        """Whether a (live-updated) alert belongs in the list."""
        if snap.status not in self.statuses():
            return False
        if self.severity and snap.severity != self.severity:
            return False
        if self.team_id is not None and snap.team_id != self.team_id:
            return False
        if self.integration_id is not None and snap.integration_id != self.integration_id:
            return False
        if any(snap.labels.get(key) != value for key, value in self.labels):
            return False
        needle = self.text.strip().lower()
        return not needle or needle in snap.title.lower() or needle in snap.message.lower()

    def sort_rows(self, snaps: Iterable[AlertSnap]) -> list[AlertSnap]:
        """`snaps` in this filter's order (ties broken by id, newest first)."""
        items = sorted(snaps, key=lambda s: s.id, reverse=True)
        if self.sort == "oldest":
            return sorted(items, key=lambda s: (s.fired_at, s.id))
        if self.sort == "severity":
            return sorted(items, key=lambda s: (SEVERITY_RANK.get(s.severity, 9), -s.fired_at.timestamp()))
        if self.sort == "last_seen":
            return sorted(items, key=lambda s: s.last_seen_at, reverse=True)
        return sorted(items, key=lambda s: s.fired_at, reverse=True)


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    """`k=v, k2=v2` into pairs; raises ValueError naming a malformed part."""
    pairs: list[tuple[str, str]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"label filter {part!r} must look like key=value")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def _severity_order() -> Any:
    return sa.case(
        *((col(Alert.severity) == name, rank) for name, rank in SEVERITY_RANK.items()), else_=len(SEVERITIES)
    )


def list_alerts(
    session: Session, *, teams: set[int] | None, flt: AlertFilter, limit: int = 200
) -> list[AlertSnap]:
    """Alerts of `teams` (None: all) matching `flt`, in its order, at most `limit`."""
    if teams is not None and not teams:
        return []
    query = select(Alert).where(col(Alert.status).in_(flt.statuses()))
    if teams is not None:
        query = query.where(col(Alert.team_id).in_(teams))
    if flt.severity:
        query = query.where(Alert.severity == flt.severity)
    if flt.team_id is not None:
        query = query.where(Alert.team_id == flt.team_id)
    if flt.integration_id is not None:
        query = query.where(Alert.integration_id == flt.integration_id)
    labels_column: sa.Column[Any] = Alert.__table__.c.labels  # type: ignore[attr-defined]
    for key, value in flt.labels:
        query = query.where(labels_column[key].as_string() == value)
    if flt.text.strip():
        escaped = flt.text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(col(Alert.title).ilike(pattern, escape="\\"), col(Alert.message).ilike(pattern, escape="\\"))
        )
    order: tuple[Any, ...]
    if flt.sort == "oldest":
        order = (col(Alert.fired_at).asc(), col(Alert.id).asc())
    elif flt.sort == "severity":
        order = (_severity_order(), col(Alert.fired_at).desc(), col(Alert.id).desc())
    elif flt.sort == "last_seen":
        order = (col(Alert.last_seen_at).desc(), col(Alert.id).desc())
    else:
        order = (col(Alert.fired_at).desc(), col(Alert.id).desc())
    rows = list(session.exec(query.order_by(*order).limit(limit)).all())
    return snapshots(session, rows)


def load_snaps(session: Session, alert_ids: Iterable[int]) -> dict[int, AlertSnap]:
    """Snapshots of these alerts by id (missing ids are left out)."""
    ids = sorted(set(alert_ids))
    if not ids:
        return {}
    rows = session.exec(select(Alert).where(col(Alert.id).in_(ids))).all()
    return {snap.id: snap for snap in snapshots(session, rows)}


def _names(session: Session, model: Any, ids: set[int]) -> dict[int, str]:
    ids.discard(0)
    if not ids:
        return {}
    rows = session.execute(select(model.id, model.name).where(col(model.id).in_(ids))).all()
    return {int(i): str(n) for i, n in rows}


def snapshots(session: Session, alerts: Sequence[Alert]) -> list[AlertSnap]:
    """Snapshots of ORM alerts, with team, integration and people names looked up in bulk."""
    teams = _names(session, Team, {a.team_id for a in alerts})
    integrations = _names(session, Integration, {a.integration_id or 0 for a in alerts})
    people = _names(
        session,
        User,
        {i or 0 for a in alerts for i in (a.acknowledged_by_id, a.resolved_by_id, a.assigned_to_id)},
    )
    return [
        AlertSnap(
            id=int(a.id or 0),
            team_id=a.team_id,
            team=teams.get(a.team_id, f"team {a.team_id}"),
            integration_id=a.integration_id,
            integration=integrations.get(a.integration_id or 0, ""),
            status=a.status,
            severity=a.severity,
            title=a.title,
            message=a.message[:2000],
            labels={str(k): str(v) for k, v in (a.labels or {}).items()},
            source=a.source,
            occurrences=a.occurrence_count,
            fired_at=a.fired_at,
            last_seen_at=a.last_seen_at,
            acknowledged_at=a.acknowledged_at,
            acked_by=people.get(a.acknowledged_by_id or 0, ""),
            resolved_at=a.resolved_at,
            resolved_by=people.get(a.resolved_by_id or 0, ""),
            assigned_to=people.get(a.assigned_to_id or 0, ""),
            silenced_until=a.silenced_until,
        )
        for a in alerts
    ]


# --- choices for filters -----------------------------------------------------------------------


def team_choices(session: Session, teams: set[int] | None) -> list[tuple[int, str]]:
    """(id, name) of the visible teams, by name."""
    query = select(Team.id, Team.name).order_by(col(Team.name))
    if teams is not None:
        query = query.where(col(Team.id).in_(teams or {-1}))
    return [(int(i or 0), str(n)) for i, n in session.execute(query).all()]


def integration_choices(session: Session, teams: set[int] | None) -> list[tuple[int, str]]:
    """(id, "team / name") of the integrations of the visible teams."""
    query = (
        select(Integration.id, Integration.name, Team.name)
        .join(Team, col(Team.id) == Integration.team_id)
        .order_by(col(Team.name), col(Integration.name))
    )
    if teams is not None:
        query = query.where(col(Integration.team_id).in_(teams or {-1}))
    return [(int(i or 0), f"{t} / {n}") for i, n, t in session.execute(query).all()]


# --- overview --------------------------------------------------------------------------------


def severity_counts(session: Session, *, teams: set[int] | None) -> dict[str, dict[str, int]]:
    """{status: {severity: count}} of open alerts."""
    counts = {status: dict.fromkeys(SEVERITIES, 0) for status in OPEN_STATUSES}
    if teams is not None and not teams:
        return counts
    query = (
        select(Alert.status, Alert.severity, func.count())
        .where(col(Alert.status).in_(OPEN_STATUSES))
        .group_by(col(Alert.status), col(Alert.severity))
    )
    if teams is not None:
        query = query.where(col(Alert.team_id).in_(teams))
    for status, severity, count in session.execute(query).all():
        counts.setdefault(status, {})[severity] = int(count)
    return counts


@dataclasses.dataclass(frozen=True)
class DayTimes:
    """Mean time to acknowledge and to resolve of the alerts fired on one UTC day."""

    day: dt.date
    alerts: int
    mtta_s: float | None
    mttr_s: float | None


def response_times(
    session: Session, *, teams: set[int] | None, now: dt.datetime, days: int = 7
) -> list[DayTimes]:
    """MTTA and MTTR per UTC day over the last `days` days (today included), oldest first."""
    first = (now.astimezone(dt.UTC) - dt.timedelta(days=days - 1)).date()
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    buckets: dict[dt.date, tuple[list[float], list[float], list[int]]] = {
        first + dt.timedelta(days=i): ([], [], []) for i in range(days)
    }
    if teams is None or teams:
        query = select(Alert.fired_at, Alert.acknowledged_at, Alert.resolved_at).where(
            col(Alert.fired_at) >= start, col(Alert.fired_at) <= now
        )
        if teams is not None:
            query = query.where(col(Alert.team_id).in_(teams))
        for fired, acked, resolved in session.execute(query).all():
            bucket = buckets.get(fired.astimezone(dt.UTC).date())
            if bucket is None:
                continue
            bucket[2].append(1)
            if acked is not None:
                bucket[0].append(max(0.0, (acked - fired).total_seconds()))
            if resolved is not None:
                bucket[1].append(max(0.0, (resolved - fired).total_seconds()))
    return [
        DayTimes(
            day=day,
            alerts=len(count),
            mtta_s=sum(acks) / len(acks) if acks else None,
            mttr_s=sum(fixes) / len(fixes) if fixes else None,
        )
        for day, (acks, fixes, count) in sorted(buckets.items())
    ]


@dataclasses.dataclass(frozen=True)
class OnCallEntry:
    """Someone on call now in one schedule."""

    schedule_id: int
    schedule: str
    team: str
    timezone: str
    user: str
    until: dt.datetime | None


def on_call(session: Session, *, teams: set[int] | None, now: dt.datetime) -> list[OnCallEntry]:
    """Who is on call now in each schedule of `teams`, with the end of their shift (next hand-off)."""
    if teams is not None and not teams:
        return []
    found = schedule_service.on_call_now(session, team_ids=teams, at=now)
    people = _names(session, User, {f.user_id for f in found})
    team_names = _names(session, Team, {f.schedule.team_id for f in found})
    entries = [
        OnCallEntry(
            schedule_id=int(f.schedule.id or 0),
            schedule=f.schedule.name,
            team=team_names.get(f.schedule.team_id, ""),
            timezone=f.schedule.timezone,
            user=people.get(f.user_id, f"user {f.user_id}"),
            until=f.shift_end,
        )
        for f in found
    ]
    return sorted(entries, key=lambda e: (e.team, e.schedule, e.user))


def schedules_without_anyone(session: Session, *, teams: set[int] | None, covered: set[int]) -> list[str]:
    """Names of visible schedules with nobody on call now (a gap worth showing)."""
    query = select(Schedule.id, Schedule.name).order_by(col(Schedule.name))
    if teams is not None:
        query = query.where(col(Schedule.team_id).in_(teams or {-1}))
    return [str(n) for i, n in session.execute(query).all() if int(i or 0) not in covered]


@dataclasses.dataclass(frozen=True)
class Activity:
    """One recent timeline entry across alerts."""

    alert_id: int
    title: str
    kind: str
    actor: str
    channel: str
    note: str
    at: dt.datetime


def recent_activity(session: Session, *, teams: set[int] | None, limit: int = 12) -> list[Activity]:
    """The newest timeline entries of visible alerts (occurrences left out: they are noise here)."""
    if teams is not None and not teams:
        return []
    query = (
        select(AlertEvent, Alert.title)
        .join(Alert, col(Alert.id) == AlertEvent.alert_id)
        .where(AlertEvent.kind != "occurrence")
        .order_by(col(AlertEvent.id).desc())
        .limit(limit)
    )
    if teams is not None:
        query = query.where(col(Alert.team_id).in_(teams))
    return [
        Activity(
            alert_id=event.alert_id,
            title=title,
            kind=event.kind,
            actor=event.actor,
            channel=event.channel,
            note=event.note[:200],
            at=event.created_at,
        )
        for event, title in session.execute(query).all()
    ]


# --- alert detail ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TimelineEntry:
    """One line of an alert's full timeline: a lifecycle event or a notification delivery."""

    at: dt.datetime
    kind: str
    who: str
    channel: str
    text: str
    outcome: str = ""
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class AlertDetail:
    """An alert with everything the detail page shows."""

    snap: AlertSnap
    annotations: dict[str, str]
    links: list[dict[str, str]]
    timeline: list[TimelineEntry]
    deliveries: list[dict[str, str]]
    escalation_policy_id: int | None


def _mask(channel: str, target: str) -> str:
    """Enough of an address to recognise it, not enough to harvest it from a screen."""
    if channel in ("apns", "fcm"):
        return f"device …{target[-6:]}" if target else "device"
    if channel in ("sms", "voice") and len(target) > 6:
        return f"{target[:3]}…{target[-3:]}"
    return target[:80]


def alert_detail(session: Session, *, alert_id: int) -> AlertDetail | None:
    """The alert with its timeline merged with its notification deliveries (None: no such alert)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    [snap] = snapshots(session, [alert])
    events = session.exec(
        select(AlertEvent)
        .where(AlertEvent.alert_id == alert_id)
        .order_by(col(AlertEvent.created_at), col(AlertEvent.id))
    ).all()
    notifications = session.exec(
        select(Notification)
        .where(Notification.alert_id == alert_id)
        .order_by(col(Notification.created_at), col(Notification.id))
    ).all()
    people = _names(
        session, User, {e.actor_user_id or 0 for e in events} | {n.user_id or 0 for n in notifications}
    )
    timeline = [
        TimelineEntry(
            at=e.created_at,
            kind=e.kind,
            who=people.get(e.actor_user_id or 0, "") or e.actor or "system",
            channel=e.channel,
            text=e.note,
        )
        for e in events
    ]
    deliveries: list[dict[str, str]] = []
    for n in notifications:
        person = people.get(n.user_id or 0, "") if n.user_id else ""
        target = _mask(n.channel, n.target)
        outcome = n.status + (f" ({n.provider_status})" if n.provider_status else "")
        detail = (
            n.error[:300] if n.error else (f"attempt {n.attempts} of {n.max_attempts}" if n.attempts else "")
        )
        deliveries.append(
            {
                "at": iso(n.created_at),
                "at_text": short_time(n.created_at),
                "channel": n.channel,
                "to": person or target,
                "target": target,
                "status": n.status,
                "outcome": outcome,
                "detail": detail,
                "sent": short_time(n.sent_at),
                "purpose": n.purpose,
            }
        )
        timeline.append(
            TimelineEntry(
                at=n.sent_at or n.created_at,
                kind="delivery",
                who=person or target,
                channel=n.channel,
                text=f"{n.purpose} via {n.channel} to {person or target}",
                outcome=outcome,
                detail=detail,
            )
        )
    timeline.sort(key=lambda t: t.at)
    links = [
        {
            "kind": str(link.get("kind", "link")),
            "url": str(link.get("url", "")),
            "title": str(link.get("title") or link.get("kind") or "link"),
        }
        for link in (alert.links or [])
        if str(link.get("url", "")).startswith(("http://", "https://"))
    ]
    return AlertDetail(
        snap=snap,
        annotations={str(k): str(v) for k, v in (alert.annotations or {}).items()},
        links=links,
        timeline=timeline,
        deliveries=deliveries,
        escalation_policy_id=alert.escalation_policy_id,
    )


def open_alerts_for_wall(session: Session, *, teams: set[int] | None, limit: int = 100) -> list[AlertSnap]:
    """Open alerts for the NOC wall: firing first by severity then age, then acknowledged ones."""
    if teams is not None and not teams:
        return []
    query = select(Alert).where(col(Alert.status).in_(OPEN_STATUSES))
    if teams is not None:
        query = query.where(col(Alert.team_id).in_(teams))
    query = query.order_by(
        sa.case((col(Alert.status) == AlertStatus.FIRING.value, 0), else_=1),
        _severity_order(),
        col(Alert.fired_at).asc(),
    ).limit(limit)
    return snapshots(session, list(session.exec(query).all()))


def wall_order(snaps: Iterable[AlertSnap]) -> list[AlertSnap]:
    """The wall's order in Python (for live updates): firing first, then severity, oldest first."""
    return sorted(
        snaps,
        key=lambda s: (s.status != "firing", SEVERITY_RANK.get(s.severity, 9), s.fired_at, s.id),
    )
