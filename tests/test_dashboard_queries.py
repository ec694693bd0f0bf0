"""The dashboard's read models (pages/queries.py), the live batching rules (pages/live.py) and how
page states authenticate (pages/state.py), on both database backends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from pages import queries
from pages import state as page_state
from pages.live import LiveScope, to_batch
from sentinel_app.bus import Event
from sentinel_app.models import Alert, AlertEvent, Notification, Role
from sentinel_app.models.base import require_id
from sentinel_app.services import api_keys, sessions, teams, users
from sentinel_app.services.errors import ValidationFailed
from tests import factories

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def _alert(session: Session, team_id: int, key: str, **kw: object) -> Alert:
    row = factories.alert(session, team_id, dedup_key=key, **kw)
    session.add(row)
    session.flush()
    return row


@pytest.fixture
def seeded(db: Session) -> dict[str, int]:
    """Two teams, one integration, seven alerts of assorted states."""
    red = factories.team(db, name="Red")
    blue = factories.team(db, name="Blue")
    prom = factories.integration(db, red.id, name="prometheus")
    ana = factories.user(db, name="Ana")
    spec: list[tuple[str, int, str, str, str, dict[str, str], dt.timedelta]] = [
        (
            "a1",
            require_id(red),
            "firing",
            "critical",
            "Disk full on db-1",
            {"env": "prod", "team": "db"},
            0 * MIN,
        ),
        ("a2", require_id(red), "acknowledged", "warning", "Queue backlog", {"env": "prod"}, 1 * MIN),
        ("a3", require_id(red), "resolved", "error", "Disk slow 100%", {"env": "staging"}, 2 * MIN),
        ("a4", require_id(blue), "firing", "info", "Certificate expires", {"env": "prod"}, 3 * MIN),
        ("a5", require_id(blue), "firing", "error", "API errors", {}, 4 * MIN),
        (
            "a6",
            require_id(red),
            "firing",
            "warning",
            "disk_usage high",
            {"env": "prod", "team": "db"},
            5 * MIN,
        ),
        ("a7", require_id(red), "acknowledged", "critical", "Login failures", {"env": "dev"}, 6 * MIN),
    ]
    ids: dict[str, int] = {"red": require_id(red), "blue": require_id(blue), "prom": require_id(prom)}
    for key, team_id, status, severity, title, labels, offset in spec:
        row = _alert(
            db,
            team_id,
            key,
            title=title,
            status=status,
            severity=severity,
            labels=labels,
            integration_id=ids["prom"] if key in ("a1", "a6") else None,
            now=NOW + offset,
            acknowledged_by_id=ana.id if status == "acknowledged" else None,
        )
        ids[key] = require_id(row)
    db.commit()
    return ids


FILTERS = [
    queries.AlertFilter(),
    queries.AlertFilter(status="all"),
    queries.AlertFilter(status="resolved"),
    queries.AlertFilter(status="firing", severity="critical"),
    queries.AlertFilter(status="all", labels=(("env", "prod"),)),
    queries.AlertFilter(status="all", labels=(("env", "prod"), ("team", "db"))),
    queries.AlertFilter(status="all", text="disk"),
    queries.AlertFilter(status="all", text="100%"),  # LIKE metacharacters are literal
    queries.AlertFilter(status="all", text="disk_"),
    queries.AlertFilter(status="open", sort="oldest"),
    queries.AlertFilter(status="all", sort="severity"),
    queries.AlertFilter(status="all", sort="last_seen"),
]


@pytest.mark.parametrize("flt", FILTERS, ids=repr)
@pytest.mark.parametrize("teams_seen", ["all", "red"])
def test_sql_and_live_filters_agree(
    db: Session, seeded: dict[str, int], flt: queries.AlertFilter, teams_seen: str
) -> None:
    visible = None if teams_seen == "all" else {seeded["red"]}
    from_sql = [s.id for s in queries.list_alerts(db, teams=visible, flt=flt)]
    everything = queries.load_snaps(db, [seeded[f"a{i}"] for i in range(1, 8)]).values()
    in_python = [
        s.id
        for s in flt.sort_rows(everything)
        if flt.matches(s) and (visible is None or s.team_id in visible)
    ]
    assert from_sql == in_python
    assert from_sql, "every filter in the table should match something"


def test_filters_by_team_and_integration_and_the_row_shape(db: Session, seeded: dict[str, int]) -> None:
    flt = queries.AlertFilter(status="all", integration_id=seeded["prom"])
    found = queries.list_alerts(db, teams=None, flt=flt)
    assert [s.id for s in found] == [seeded["a6"], seeded["a1"]]
    assert queries.list_alerts(db, teams=set(), flt=queries.AlertFilter()) == []
    only_blue = queries.list_alerts(db, teams=None, flt=queries.AlertFilter(team_id=seeded["blue"]))
    assert {s.team for s in only_blue} == {"Blue"}
    row = found[0].row()
    assert row["integration"] == "prometheus" and row["labels"] == "env=prod, team=db"
    assert row["fired_at"] == "2026-11-23T12:05:00Z" and all(isinstance(v, str) for v in row.values())
    acked = queries.load_snaps(db, [seeded["a2"]])[seeded["a2"]]
    assert acked.acked_by == "Ana"


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("env=prod, team = db", (("env", "prod"), ("team", "db"))),
        ("env=", (("env", ""),)),
        ("", ()),
        ("prod", None),
        ("=prod", None),
        ("env=prod, =x", None),
    ],
)
def test_label_filter_syntax(text: str, pairs: tuple[tuple[str, str], ...] | None) -> None:
    if pairs is None:
        with pytest.raises(ValueError, match="must look like key=value"):
            queries.parse_labels(text)
    else:
        assert queries.parse_labels(text) == pairs


def test_counts_activity_and_wall_order(db: Session, seeded: dict[str, int]) -> None:
    counts = queries.severity_counts(db, teams=None)
    assert counts["firing"] == {"critical": 1, "error": 1, "warning": 1, "info": 1}
    assert counts["acknowledged"] == {"critical": 1, "error": 0, "warning": 1, "info": 0}
    assert sum(queries.severity_counts(db, teams={seeded["blue"]})["firing"].values()) == 2
    wall = queries.open_alerts_for_wall(db, teams=None)
    assert [s.id for s in wall] == [seeded[k] for k in ("a1", "a5", "a6", "a4", "a7", "a2")]
    assert [s.id for s in queries.wall_order(reversed(wall))] == [s.id for s in wall]

    for key, kind in (("a1", "created"), ("a1", "occurrence"), ("a4", "created"), ("a1", "note")):
        db.add(AlertEvent(alert_id=seeded[key], kind=kind, actor="prometheus", note=kind, created_at=NOW))
    db.commit()
    red_activity = queries.recent_activity(db, teams={seeded["red"]})
    assert [(a.alert_id, a.kind) for a in red_activity] == [(seeded["a1"], "note"), (seeded["a1"], "created")]


def test_response_times_per_day(db: Session) -> None:
    team = require_id(factories.team(db))
    day = dt.timedelta(days=1)
    for key, fired, ack_after, fix_after in (
        ("x1", NOW - 2 * day, 4 * MIN, 10 * MIN),
        ("x2", NOW - 2 * day + MIN, 2 * MIN, None),
        ("x3", NOW, None, 30 * MIN),
        ("x4", NOW - 8 * day, MIN, MIN),  # older than the 7 days
    ):
        _alert(
            db,
            team,
            key,
            now=fired,
            acknowledged_at=fired + ack_after if ack_after else None,
            resolved_at=fired + fix_after if fix_after else None,
        )
    db.commit()
    times = queries.response_times(db, teams=None, now=NOW + 40 * MIN)
    assert [t.day for t in times] == [(NOW - i * day).date() for i in range(6, -1, -1)]
    by_day = {t.day: t for t in times}
    two_days_ago = by_day[(NOW - 2 * day).date()]
    assert (two_days_ago.alerts, two_days_ago.mtta_s, two_days_ago.mttr_s) == (2, 180.0, 600.0)
    today = by_day[NOW.date()]
    assert (today.alerts, today.mtta_s, today.mttr_s) == (1, None, 1800.0)
    assert sum(t.alerts for t in times) == 3
    assert queries.response_times(db, teams=set(), now=NOW)[0].alerts == 0


def test_detail_merges_deliveries_into_the_timeline(db: Session, seeded: dict[str, int]) -> None:
    alert_id = seeded["a1"]
    db.add(
        AlertEvent(
            alert_id=alert_id, kind="created", actor="prometheus", channel="integration", created_at=NOW
        )
    )
    db.add(
        AlertEvent(
            alert_id=alert_id, kind="acknowledged", actor="Ana", channel="web", created_at=NOW + 3 * MIN
        )
    )
    for index, (channel, status, target, error) in enumerate(
        (("sms", "failed", "+14155550123", "Twilio 21610"), ("apns", "delivered", "ab" * 32, ""))
    ):
        db.add(
            Notification(
                idempotency_key=f"k{index}",
                alert_id=alert_id,
                channel=channel,
                target=target,
                status=status,
                provider_status="200" if status == "delivered" else "",
                error=error,
                attempts=1,
                created_at=NOW + (index + 1) * MIN,
                updated_at=NOW,
            )
        )
    db.commit()
    detail = queries.alert_detail(db, alert_id=alert_id)
    assert detail is not None
    assert [(t.kind, t.channel) for t in detail.timeline] == [
        ("created", "integration"),
        ("delivery", "sms"),
        ("delivery", "apns"),
        ("acknowledged", "web"),
    ]
    assert [d["to"] for d in detail.deliveries] == ["+14…123", "device …ababab"]
    assert detail.deliveries[0]["outcome"] == "failed" and detail.deliveries[0]["detail"] == "Twilio 21610"
    assert detail.deliveries[1]["outcome"] == "delivered (200)"
    assert queries.alert_detail(db, alert_id=10**9) is None


# --- live batching -----------------------------------------------------------------------------


def _event(kind: str, **data: object) -> Event:
    return Event(kind, dict(data))


def test_a_batch_keeps_only_the_pages_teams_and_flags_what_needs_a_reload() -> None:
    scope = LiveScope(teams=frozenset({1}))
    batch = to_batch(
        [
            _event("alert.created", id=10, team_id=1, severity="critical", title="Disk full"),
            _event("alert.created", id=11, team_id=2, severity="critical", title="Not ours"),
            _event("alert.updated", id=12, team_id=1, status="acknowledged"),
            _event("alert.created", id=13, team_id=1, severity="warning", title="Meh"),
            _event("oncall.changed", schedule_id=3, team_id=2),
        ],
        scope,
        resync=False,
    )
    assert (batch.created, batch.changed, batch.critical) == ([10, 13], {10, 12, 13}, ["Disk full"])
    assert batch.oncall is False and batch.resync is False
    everything = to_batch(
        [_event("oncall.changed", schedule_id=3, team_id=2)], LiveScope(teams=None), resync=False
    )
    assert everything.oncall is True
    # A page about one team still toasts the critical alerts of every team the person sees.
    wider = LiveScope(teams=frozenset({1}), toast_teams=frozenset({1, 2}))
    toasted = to_batch(
        [
            _event("alert.created", id=11, team_id=2, severity="critical", title="Not ours"),
            _event("alert.created", id=14, team_id=3, severity="critical", title="Hidden"),
        ],
        wider,
        resync=False,
    )
    assert (toasted.critical, toasted.changed) == (["Not ours"], set())
    lost = to_batch([_event("bus.overflow", dropped=5)], scope, resync=False)
    assert lost.resync is True


# --- authentication of page states ---------------------------------------------------------------


@pytest.fixture
def state_engine(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    monkeypatch.setattr(page_state, "engine", lambda: engine)
    yield engine


def test_page_principals_follow_sessions_and_wall_keys(db: Session, state_engine: sa.Engine) -> None:
    team = require_id(factories.team(db))
    viewer = users.create_user(db, email="vic@example.com", name="Vic", password="correct horse battery")
    teams.set_membership(db, team_id=team, user_id=require_id(viewer), role=Role.VIEWER)
    _, token = sessions.open_session(db, user=viewer, client="web", user_agent="", now=NOW)
    _, wall = api_keys.issue_key(db, user_id=require_id(viewer), name="tv", scopes=["wall"], team_id=team)
    _, plain = api_keys.issue_key(db, user_id=require_id(viewer), name="cli", scopes=["read"])
    db.commit()

    who = page_state.principal_for_session(token, NOW)
    assert who is not None and who.user_id == viewer.id and who.roles == {team: "viewer"}
    assert who.can("read", team) and not who.can("write", team)
    assert page_state.principal_for_session("ss_nope", NOW) is None
    assert page_state.principal_for_session(token, NOW + dt.timedelta(days=31)) is None

    kiosk = page_state.principal_for_wall_key(wall, NOW)
    assert kiosk is not None and kiosk.visible_team_ids() == {team} and not kiosk.can("write", team)
    assert page_state.principal_for_wall_key(plain, NOW) is None  # an ordinary key is not a wall key
    assert page_state.principal_for_wall_key(token, NOW) is None

    with pytest.raises(ValidationFailed, match="cannot be combined"):
        api_keys.issue_key(db, user_id=require_id(viewer), name="x", scopes=["wall", "read"])
