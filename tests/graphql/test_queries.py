"""Every query of the GraphQL API, through HTTP on `create_api`, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sentinel_app.db import session_scope
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.services import alerts as alert_service
from sentinel_app.services.actor import Actor
from tests.graphql.conftest import NOW, Scene, World, codes, data, gql

pytestmark = pytest.mark.asyncio


async def test_me_and_the_promised_alerts_shape(world: World, scene: Scene) -> None:
    body = await gql(
        world.client,
        """{
          me { id name email isAdmin memberships { role team { name } } }
          alerts(status: FIRING, limit: 10) { id title message severity status firedAt assignedTo { id name email } }
        }""",
        key=world.admin_key,
    )
    got = data(body)
    assert got["me"] == {
        "id": str(scene.admin_id),
        "name": "Admin",
        "email": "admin@example.com",
        "isAdmin": True,
        "memberships": [{"role": "ADMIN", "team": {"name": "Payments"}}],
    }
    # Newest first (equal instants: newest id first); the installation admin sees every team.
    assert [a["title"] for a in got["alerts"]] == ["Search slow", "Database down", "Disk almost full"]
    db = next(a for a in got["alerts"] if a["id"] == str(scene.alert_id))
    assert db == {
        "id": str(scene.alert_id),
        "title": "Database down",
        "message": "primary unreachable",
        "severity": "CRITICAL",
        "status": "FIRING",
        "firedAt": "2026-11-23T12:00:00Z",
        "assignedTo": None,
    }


ALERT_FILTERS = [
    ("filter: {severity: [CRITICAL]}", ["Database down"]),
    ("filter: {severity: [CRITICAL, WARNING], status: [FIRING]}", ["Database down", "Disk almost full"]),
    ('filter: {labels: [{key: "service", value: "disk"}]}', ["Disk almost full"]),
    ('filter: {labels: [{key: "service", value: "db"}, {key: "env", value: "dev"}]}', []),
    ('filter: {text: "DATABASE"}', ["Database down"]),
    ('filter: {text: "100%"}', []),
    ('filter: {firedBefore: "2026-11-23T11:00:00Z"}', ["Disk almost full"]),
    ('filter: {firedAfter: "2026-11-23T11:00:00Z"}', ["Database down"]),
    ("status: RESOLVED", []),
    ("limit: 1", ["Database down"]),
    ("first: 2", ["Database down", "Disk almost full"]),
]


async def test_alert_filters(world: World, scene: Scene) -> None:
    # The responder sees only their team's alerts, newest first.
    for arguments, expected in ALERT_FILTERS:
        body = await gql(world.client, f"{{ alerts({arguments}) {{ title }} }}", key=world.responder_key)
        assert [a["title"] for a in data(body)["alerts"]] == expected, arguments


async def test_alert_filter_by_assignee_and_team(world: World, scene: Scene) -> None:
    with session_scope(write=True, engine=world.engine) as session:
        alert_service.transition(
            session,
            alert_id=scene.quiet_alert_id,
            transition=Transition.ACKNOWLEDGE,
            actor=Actor(user_id=scene.responder_id, label="Responder"),
            now=NOW,
        )
    query = "query($f: AlertFilter) { alerts(filter: $f) { id } }"
    mine = await gql(world.client, query, {"f": {"assignedTo": str(scene.responder_id)}}, key=world.admin_key)
    assert data(mine)["alerts"] == [{"id": str(scene.quiet_alert_id)}]
    other = await gql(world.client, query, {"f": {"team": str(world.other_team_id)}}, key=world.admin_key)
    assert data(other)["alerts"] == [{"id": str(scene.other_alert_id)}]
    # A team the caller cannot see does not exist for them.
    hidden = await gql(
        world.client, query, {"f": {"team": str(world.other_team_id)}}, key=world.responder_key
    )
    assert codes(hidden) == ["NOT_FOUND"]


async def test_simple_form_pages_with_cursors(world: World, scene: Scene) -> None:
    first = data(await gql(world.client, "{ alerts(first: 1) { title cursor } }", key=world.responder_key))
    [only] = first["alerts"]
    rest = data(
        await gql(
            world.client,
            "query($after: String) { alerts(first: 5, after: $after) { title } }",
            {"after": only["cursor"]},
            key=world.responder_key,
        )
    )
    assert [only["title"], *[a["title"] for a in rest["alerts"]]] == ["Database down", "Disk almost full"]
    bad = await gql(world.client, '{ alerts(after: "garbage") { id } }', key=world.responder_key)
    assert codes(bad) == ["BAD_USER_INPUT"]
    both = await gql(world.client, "{ alerts(limit: 1, first: 1) { id } }", key=world.responder_key)
    assert codes(both) == ["BAD_USER_INPUT"]


async def test_alerts_connection(world: World, scene: Scene) -> None:
    query = """query($after: String) {
      alertsConnection(first: 1, after: $after) {
        edges { cursor node { title } } nodes { id } pageInfo { hasNextPage endCursor }
      }
    }"""
    page = data(await gql(world.client, query, key=world.responder_key))["alertsConnection"]
    assert [e["node"]["title"] for e in page["edges"]] == ["Database down"]
    assert page["pageInfo"] == {"hasNextPage": True, "endCursor": page["edges"][0]["cursor"]}
    assert page["nodes"] == [{"id": str(scene.alert_id)}]
    after = data(
        await gql(world.client, query, {"after": page["pageInfo"]["endCursor"]}, key=world.responder_key)
    )
    last = after["alertsConnection"]
    assert [e["node"]["title"] for e in last["edges"]] == ["Disk almost full"]
    assert last["pageInfo"]["hasNextPage"] is False


async def test_alert_detail(world: World, scene: Scene) -> None:
    body = await gql(
        world.client,
        """query($id: ID!) { alert(id: $id) {
          id title source dedupKey occurrenceCount firstSeenAt lastSeenAt silencedUntil
          labels { key value } annotations { key value } links { kind url title }
          team { name } integration { id } escalationPolicy { name } incident { title }
          escalation { state stepIndex cycle nextAt }
          lastEvent { kind } timeline { kind actor channel at actorUser { name } payload }
          notifications { channel status attempts user { name } sentAt }
        } }""",
        {"id": str(scene.alert_id)},
        key=world.viewer_key,
    )
    alert = data(body)["alert"]
    assert alert["labels"] == [{"key": "env", "value": "prod"}, {"key": "service", "value": "db"}]
    assert alert["annotations"] == [{"key": "summary", "value": "DB is down"}]
    assert alert["links"] == [{"kind": "runbook", "url": "https://runbooks.example/db", "title": "Runbook"}]
    assert alert["team"] == {"name": "Payments"}
    assert alert["integration"] is None
    assert alert["escalationPolicy"] == {"name": "Default"}
    assert alert["incident"] == {"title": "Storage outage"}
    assert alert["escalation"]["state"] == "active"
    assert alert["escalation"]["nextAt"] == "2026-11-23T12:00:00Z"
    assert alert["timeline"][0]["kind"] == "created"
    assert alert["lastEvent"]["kind"] == alert["timeline"][-1]["kind"]
    assert alert["notifications"] == [
        {
            "channel": "sms",
            "status": "sent",
            "attempts": 1,
            "user": {"name": "Responder"},
            "sentAt": "2026-11-23T12:00:00Z",
        }
    ]
    assert (alert["source"], alert["dedupKey"], alert["occurrenceCount"]) == ("api", "db", 1)


async def test_alert_not_visible_is_not_found(world: World, scene: Scene) -> None:
    # Another team's alert and a missing one get the same answer: ids of others are not revealed.
    for ident, key in ((scene.alert_id, world.outsider_key), (10**9, world.admin_key)):
        body = await gql(
            world.client, "query($id: ID!) { alert(id: $id) { id } }", {"id": str(ident)}, key=key
        )
        assert body["data"] == {"alert": None}
        assert codes(body) == ["NOT_FOUND"]
        assert body["errors"][0]["extensions"]["field"] == "alertId"
    bad = await gql(world.client, '{ alert(id: "abc") { id } }', key=world.admin_key)
    assert codes(bad) == ["BAD_USER_INPUT"]


async def test_incidents(world: World, scene: Scene) -> None:
    body = await gql(
        world.client,
        "{ incidents(status: OPEN) { title status severity team { name } createdBy { name } alerts { title } } }",
        key=world.responder_key,
    )
    assert data(body)["incidents"] == [
        {
            "title": "Storage outage",
            "status": "OPEN",
            "severity": "ERROR",
            "team": {"name": "Payments"},
            "createdBy": {"name": "Admin"},
            "alerts": [{"title": "Database down"}, {"title": "Disk almost full"}],
        }
    ]
    assert data(await gql(world.client, "{ incidents { id } }", key=world.outsider_key))["incidents"] == []


async def test_schedules_and_schedule(world: World, scene: Scene) -> None:
    query = """{ schedules { name timezone team { name }
        layers { name kind priority handoffTime startAt participants { name } }
        overrides(start: "2026-11-24T00:00:00Z") { user { name } start end reason createdBy { id } schedule { name } }
        oncallNow { user { name } source }
    } }"""
    [schedule] = data(await gql(world.client, query, key=world.responder_key))["schedules"]
    assert schedule["team"] == {"name": "Payments"}
    assert schedule["layers"] == [
        {
            "name": "Daily",
            "kind": "daily",
            "priority": 0,
            "handoffTime": "09:00",
            "startAt": "2026-11-01T09:00:00Z",
            "participants": [{"name": "Admin"}, {"name": "Responder"}],
        }
    ]
    assert schedule["overrides"] == [
        {
            "user": {"name": "Viewer"},
            "start": "2026-11-25T00:00:00Z",
            "end": "2026-11-26T00:00:00Z",
            "reason": "covering",
            "createdBy": None,
            "schedule": {"name": "Primary"},
        }
    ]
    assert {o["user"]["name"] for o in schedule["oncallNow"]} <= {"Admin", "Responder", "Viewer"}
    one = await gql(
        world.client,
        "query($id: ID!) { schedule(id: $id) { name } }",
        {"id": str(scene.schedule_id)},
        key=world.viewer_key,
    )
    assert data(one) == {"schedule": {"name": "Primary"}}
    hidden = await gql(
        world.client,
        "query($id: ID!) { schedule(id: $id) { name } }",
        {"id": str(scene.schedule_id)},
        key=world.outsider_key,
    )
    assert codes(hidden) == ["NOT_FOUND"]
    assert data(await gql(world.client, "{ schedules { id } }", key=world.outsider_key)) == {"schedules": []}


ONCALL_AT = [
    ("2026-11-23T12:00:00Z", "Admin", "LAYER", "2026-11-24T09:00:00Z"),
    ("2026-11-24T12:00:00Z", "Responder", "LAYER", "2026-11-25T00:00:00Z"),
    ("2026-11-25T12:00:00+02:00", "Viewer", "OVERRIDE", "2026-11-26T00:00:00Z"),
]


async def test_oncall_at(world: World, scene: Scene) -> None:
    query = """query($s: ID!, $at: DateTime) {
      oncall(scheduleId: $s, at: $at) { user { name } source sourceId until schedule { name } } }"""
    for at, who, source, until in ONCALL_AT:
        body = await gql(
            world.client, query, {"s": str(scene.schedule_id), "at": at}, key=world.responder_key
        )
        [answer] = data(body)["oncall"]
        expected_source = scene.layer_id if source == "LAYER" else scene.override_id
        assert answer == {
            "user": {"name": who},
            "source": source,
            "sourceId": str(expected_source),
            "until": until,
            "schedule": {"name": "Primary"},
        }, at
    naive = await gql(
        world.client,
        query,
        {"s": str(scene.schedule_id), "at": "2026-11-23T12:00:00"},
        key=world.responder_key,
    )
    assert codes(naive) == ["BAD_USER_INPUT"]
    hidden = await gql(world.client, query, {"s": str(scene.schedule_id)}, key=world.outsider_key)
    assert codes(hidden) == ["NOT_FOUND"]


async def test_oncall_now_across_schedules(world: World, scene: Scene) -> None:
    body = await gql(
        world.client,
        "{ oncallNow { schedule { name } user { name } source until } }",
        key=world.responder_key,
    )
    answers = data(body)["oncallNow"]
    assert [a["schedule"]["name"] for a in answers] == ["Primary"]
    assert answers[0]["user"]["name"] in {"Admin", "Responder", "Viewer"}
    assert data(await gql(world.client, "{ oncallNow { user { name } } }", key=world.outsider_key)) == {
        "oncallNow": []
    }


async def test_shifts(world: World, scene: Scene) -> None:
    body = await gql(
        world.client,
        """query($s: ID!) { shifts(scheduleId: $s, start: "2026-11-24T00:00:00Z", end: "2026-11-26T00:00:00Z") {
          shifts { user { name } start end source } gaps { start end } } }""",
        {"s": str(scene.schedule_id)},
        key=world.responder_key,
    )
    plan = data(body)["shifts"]
    assert [(s["user"]["name"], s["start"], s["end"], s["source"]) for s in plan["shifts"]] == [
        ("Admin", "2026-11-24T00:00:00Z", "2026-11-24T09:00:00Z", "LAYER"),
        ("Responder", "2026-11-24T09:00:00Z", "2026-11-25T00:00:00Z", "LAYER"),
        ("Viewer", "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z", "OVERRIDE"),
    ]
    assert plan["gaps"] == []
    too_long = await gql(
        world.client,
        """query($s: ID!) { shifts(scheduleId: $s, start: "2026-01-01T00:00:00Z", end: "2027-06-01T00:00:00Z") { gaps { start } } }""",
        {"s": str(scene.schedule_id)},
        key=world.responder_key,
    )
    assert codes(too_long) == ["BAD_USER_INPUT"]
    assert too_long["errors"][0]["extensions"]["field"] == "end"


async def test_escalation_policies(world: World, scene: Scene) -> None:
    query = """{ escalationPolicies { name repeatCount team { name }
        steps { position kind delayMinutes important users { name } schedules { name } teams { name } config } } }"""
    as_admin = data(await gql(world.client, query, key=world.admin_key))["escalationPolicies"]
    assert as_admin == [
        {
            "name": "Default",
            "repeatCount": 0,
            "team": {"name": "Payments"},
            "steps": [
                {
                    "position": 0,
                    "kind": "notify_users",
                    "delayMinutes": 5,
                    "important": False,
                    "users": [{"name": "Responder"}],
                    "schedules": [],
                    "teams": [],
                    "config": {},
                },
                {
                    "position": 1,
                    "kind": "notify_schedule",
                    "delayMinutes": 0,
                    "important": False,
                    "users": [],
                    "schedules": [{"name": "Primary"}],
                    "teams": [],
                    "config": {},
                },
            ],
        }
    ]
    # Step settings may hold secrets (webhook URLs): team administrators only.
    as_viewer = data(await gql(world.client, query, key=world.viewer_key))["escalationPolicies"]
    assert [s["config"] for s in as_viewer[0]["steps"]] == [None, None]
    assert data(await gql(world.client, query, key=world.outsider_key)) == {"escalationPolicies": []}


async def test_teams_and_users(world: World, scene: Scene) -> None:
    teams = data(
        await gql(
            world.client, "{ teams { name slug members { role user { name } } } }", key=world.responder_key
        )
    )["teams"]
    assert teams == [
        {
            "name": "Payments",
            "slug": "payments",
            "members": [
                {"role": "ADMIN", "user": {"name": "Admin"}},
                {"role": "RESPONDER", "user": {"name": "Responder"}},
                {"role": "VIEWER", "user": {"name": "Viewer"}},
            ],
        }
    ]
    people = data(
        await gql(
            world.client,
            "{ users { name email memberships { role team { name } } } }",
            key=world.responder_key,
        )
    )["users"]
    assert [p["name"] for p in people] == ["Admin", "Responder", "Viewer"]
    everyone = data(
        await gql(world.client, "{ users { name memberships { team { name } } } }", key=world.admin_key)
    )
    assert [p["name"] for p in everyone["users"]] == ["Admin", "Outsider", "Responder", "Viewer"]
    outsider = next(p for p in everyone["users"] if p["name"] == "Outsider")
    assert outsider["memberships"] == [{"team": {"name": "Search"}}]


async def test_integrations_never_show_tokens(world: World, scene: Scene) -> None:
    body = await gql(
        world.client,
        "{ integrations { name kind enabled team { name } defaultEscalationPolicy { name } lastReceivedAt } }",
        key=world.viewer_key,
    )
    assert data(body)["integrations"] == [
        {
            "name": "pd",
            "kind": "pagerduty",
            "enabled": True,
            "team": {"name": "Payments"},
            "defaultEscalationPolicy": None,
            "lastReceivedAt": None,
        },
        {
            "name": "prom",
            "kind": "alertmanager",
            "enabled": True,
            "team": {"name": "Payments"},
            "defaultEscalationPolicy": None,
            "lastReceivedAt": None,
        },
    ]
    token = await gql(world.client, "{ integrations { token } }", key=world.viewer_key)
    assert codes(token) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_stats(world: World, scene: Scene) -> None:
    with session_scope(write=True, engine=world.engine) as session:
        actor = Actor(user_id=scene.responder_id, label="Responder")
        alert_service.transition(
            session,
            alert_id=scene.alert_id,
            transition=Transition.ACKNOWLEDGE,
            actor=actor,
            now=NOW + dt.timedelta(minutes=10),
        )
        alert_service.transition(
            session,
            alert_id=scene.quiet_alert_id,
            transition=Transition.RESOLVE,
            actor=actor,
            now=NOW - dt.timedelta(hours=1),
        )
    query = """query($team: ID) { stats(range: {start: "2026-11-23T09:30:00Z", end: "2026-11-23T13:00:00Z"}, team: $team) {
      range { start end } total byStatus { status count } bySeverity { severity count }
      mttaSeconds mttrSeconds alertsPerHour { at count } } }"""
    stats: dict[str, Any] = data(
        await gql(world.client, query, {"team": str(world.team_id)}, key=world.viewer_key)
    )["stats"]
    assert stats["total"] == 2
    assert stats["byStatus"] == [
        {"status": "FIRING", "count": 0},
        {"status": "ACKNOWLEDGED", "count": 1},
        {"status": "RESOLVED", "count": 1},
    ]
    assert stats["bySeverity"] == [
        {"severity": "CRITICAL", "count": 1},
        {"severity": "ERROR", "count": 0},
        {"severity": "WARNING", "count": 1},
        {"severity": "INFO", "count": 0},
    ]
    assert stats["mttaSeconds"] == pytest.approx(600, abs=0.01)
    assert stats["mttrSeconds"] == pytest.approx(3600, abs=0.01)
    assert stats["alertsPerHour"] == [
        {"at": "2026-11-23T09:00:00Z", "count": 0},
        {"at": "2026-11-23T10:00:00Z", "count": 1},
        {"at": "2026-11-23T11:00:00Z", "count": 0},
        {"at": "2026-11-23T12:00:00Z", "count": 1},
    ]
    everyone = data(await gql(world.client, query, key=world.admin_key))["stats"]
    assert everyone["total"] == 3
    for bad, field in (
        ('{start: "2026-11-23T13:00:00Z", end: "2026-11-23T12:00:00Z"}', "range.end"),
        ('{start: "2026-01-01T00:00:00Z", end: "2026-11-23T12:00:00Z"}', "range.end"),
    ):
        body = await gql(world.client, f"{{ stats(range: {bad}) {{ total }} }}", key=world.viewer_key)
        assert codes(body) == ["BAD_USER_INPUT"]
        assert body["errors"][0]["extensions"]["field"] == field
