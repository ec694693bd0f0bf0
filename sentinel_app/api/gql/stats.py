"""Alert figures for Grafana panels: counts, MTTA, MTTR and alerts per hour, computed in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from ariadne import QueryType
from graphql import GraphQLResolveInfo
from sqlmodel import Session, col

from sentinel_app.api.gql import access
from sentinel_app.api.gql.context import ctx
from sentinel_app.api.gql.errors import bad_input
from sentinel_app.api.gql.scalars import optional_id
from sentinel_app.models import Alert, AlertStatus, Severity

MAX_RANGE = dt.timedelta(days=93)
_HOUR = dt.timedelta(hours=1)

query = QueryType()


def _seconds_between(later: Any, earlier: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.extract("epoch", later - earlier)
    # SQLite keeps UTC instants as text, which julianday() reads.
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


def _hour_of(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.date_trunc("hour", sa.func.timezone("UTC", column))
    return sa.func.strftime("%Y-%m-%d %H:00:00", column)


def _as_hour(value: Any) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def alert_stats(
    session: Session, *, start: dt.datetime, end: dt.datetime, team_ids: set[int] | None
) -> dict[str, Any]:
    """Figures of the alerts fired in [start, end) of `team_ids` (None: all teams)."""
    dialect = session.get_bind().dialect.name
    where = [col(Alert.fired_at) >= start, col(Alert.fired_at) < end]
    if team_ids is not None:
        where.append(col(Alert.team_id).in_(sorted(team_ids)))
    statuses = dict(
        session.execute(
            sa.select(col(Alert.status), sa.func.count()).where(*where).group_by(col(Alert.status))
        ).all()
    )
    severities = dict(
        session.execute(
            sa.select(col(Alert.severity), sa.func.count()).where(*where).group_by(col(Alert.severity))
        ).all()
    )
    mtta, mttr = session.execute(
        sa.select(
            sa.func.avg(_seconds_between(col(Alert.acknowledged_at), col(Alert.fired_at), dialect)),
            sa.func.avg(_seconds_between(col(Alert.resolved_at), col(Alert.fired_at), dialect)),
        ).where(*where)
    ).one()
    hour = _hour_of(col(Alert.fired_at), dialect).label("hour")
    per_hour = {
        _as_hour(at): count
        for at, count in session.execute(sa.select(hour, sa.func.count()).where(*where).group_by(hour)).all()
    }
    series = []
    moment = _floor_hour(start)
    while moment < end:
        series.append({"at": moment, "count": per_hour.get(moment, 0)})
        moment += _HOUR
    return {
        "range": {"start": start, "end": end},
        "total": sum(statuses.values()),
        "by_status": [{"status": s.value, "count": statuses.get(s.value, 0)} for s in AlertStatus],
        "by_severity": [{"severity": s.value, "count": severities.get(s.value, 0)} for s in Severity],
        "mtta_seconds": float(mtta) if mtta is not None else None,
        "mttr_seconds": float(mttr) if mttr is not None else None,
        "alerts_per_hour": series,
    }


@query.field("stats")
def resolve_stats(
    _: Any, info: GraphQLResolveInfo, range: dict[str, Any], team: str | None = None
) -> dict[str, Any]:
    """Alert figures of a time range (at most 93 days), optionally of one team."""
    context = ctx(info)
    start, end = range["start"], range["end"]
    if end <= start:
        raise bad_input("range.end must be after range.start", "range.end")
    if end - start > MAX_RANGE:
        raise bad_input(f"the range may cover at most {MAX_RANGE.days} days", "range.end")
    teams = access.team_scope(context.principal, optional_id(team, "team"))
    return context.db(lambda s: alert_stats(s, start=start, end=end, team_ids=teams))


bindables: Sequence[Any] = (query,)
