"""Every mutation of the GraphQL API: outcomes in the database, errors and permissions."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from sentinel_app.models import Alert, AlertEvent, AuditEntry, PushDevice, ScheduleOverride
from tests.graphql.conftest import Scene, World, codes, data, gql

pytestmark = pytest.mark.asyncio

APNS_TOKEN = "ab" * 32


def _alert(world: World, alert_id: int) -> Alert:
    with Session(world.engine) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert


def _events(world: World, alert_id: int) -> list[AlertEvent]:
    with Session(world.engine) as session:
        return list(
            session.exec(
                select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(col(AlertEvent.id))
            )
        )


async def test_acknowledge_returns_the_promised_shape(world: World, scene: Scene) -> None:
    body = await gql(
        world.client,
        'mutation($id: ID!) { acknowledgeAlert(alertId: $id, note: "on it") { status acknowledgedAt acknowledgedBy { name } assignedTo { id } } }',
        {"id": str(scene.alert_id)},
        key=world.responder_key,
    )
    result = data(body)["acknowledgeAlert"]
    assert result["status"] == "ACKNOWLEDGED"
    assert result["acknowledgedBy"] == {"name": "Responder"}
    assert result["assignedTo"] == {"id": str(scene.responder_id)}
    stored = _alert(world, scene.alert_id)
    assert (stored.status, stored.acknowledged_by_id) == ("acknowledged", scene.responder_id)
    assert result["acknowledgedAt"] == stored.acknowledged_at.isoformat().replace("+00:00", "Z")  # type: ignore[union-attr]
    last = _events(world, scene.alert_id)[-1]
    assert (last.kind, last.note, last.channel, last.actor_user_id) == (
        "acknowledged",
        "on it",
        "graphql",
        scene.responder_id,
    )


async def test_lifecycle_unacknowledge_silence_resolve(world: World, scene: Scene) -> None:
    ident = {"id": str(scene.alert_id)}
    await gql(
        world.client,
        "mutation($id: ID!) { acknowledgeAlert(alertId: $id) { id } }",
        ident,
        key=world.responder_key,
    )
    back = await gql(
        world.client,
        "mutation($id: ID!) { unacknowledgeAlert(alertId: $id) { status acknowledgedBy { name } } }",
        ident,
        key=world.responder_key,
    )
    assert data(back)["unacknowledgeAlert"] == {"status": "FIRING", "acknowledgedBy": None}
    quiet = await gql(
        world.client,
        'mutation($id: ID!) { silenceAlert(alertId: $id, minutes: 30, note: "deploy") { silencedUntil } }',
        ident,
        key=world.responder_key,
    )
    assert data(quiet)["silenceAlert"]["silencedUntil"] is not None
    for minutes in (0, 7 * 24 * 60 + 1):
        bad = await gql(
            world.client,
            "mutation($id: ID!, $m: Int!) { silenceAlert(alertId: $id, minutes: $m) { id } }",
            {**ident, "m": minutes},
            key=world.responder_key,
        )
        assert codes(bad) == ["BAD_USER_INPUT"]
        assert bad["errors"][0]["extensions"]["field"] == "minutes"
    done = await gql(
        world.client,
        'mutation($id: ID!) { resolveAlert(alertId: $id, note: "fixed") { status resolvedAt resolvedBy { name } } }',
        ident,
        key=world.responder_key,
    )
    assert data(done)["resolveAlert"]["status"] == "RESOLVED"
    assert data(done)["resolveAlert"]["resolvedBy"] == {"name": "Responder"}
    kinds = [e.kind for e in _events(world, scene.alert_id)]
    assert kinds[-4:] == ["acknowledged", "unacknowledged", "silenced", "resolved"]
    again = await gql(
        world.client,
        "mutation($id: ID!) { resolveAlert(alertId: $id) { id } }",
        ident,
        key=world.responder_key,
    )
    assert codes(again) == ["CONFLICT"]
    assert again["errors"][0]["extensions"]["field"] == "status"


async def test_add_note(world: World, scene: Scene) -> None:
    body = await gql(
        world.client,
        'mutation($id: ID!) { addAlertNote(alertId: $id, note: " checking the replica ") { id kind note actor actorUser { name } } }',
        {"id": str(scene.alert_id)},
        key=world.responder_key,
    )
    event = data(body)["addAlertNote"]
    assert (event["kind"], event["note"], event["actor"], event["actorUser"]) == (
        "note",
        "checking the replica",
        "Responder",
        {"name": "Responder"},
    )
    assert _events(world, scene.alert_id)[-1].id == int(event["id"])
    empty = await gql(
        world.client,
        'mutation($id: ID!) { addAlertNote(alertId: $id, note: "  ") { id } }',
        {"id": str(scene.alert_id)},
        key=world.responder_key,
    )
    assert codes(empty) == ["BAD_USER_INPUT"]


async def test_escalate(world: World, scene: Scene) -> None:
    pytest.importorskip("sentinel_app.services.escalations")
    body = await gql(
        world.client,
        "mutation($id: ID!) { escalateAlert(alertId: $id) { id status lastEvent { kind actor } escalation { stepIndex } } }",
        {"id": str(scene.alert_id)},
        key=world.responder_key,
    )
    result = data(body)["escalateAlert"]
    assert result["lastEvent"] == {"kind": "escalated", "actor": "Responder"}
    assert "escalated" in [e.kind for e in _events(world, scene.alert_id)]
    # No policy, no escalation to hurry.
    none = await gql(
        world.client,
        "mutation($id: ID!) { escalateAlert(alertId: $id) { id } }",
        {"id": str(scene.quiet_alert_id)},
        key=world.responder_key,
    )
    assert codes(none) == ["CONFLICT"]


async def test_overrides(world: World, scene: Scene) -> None:
    create = """mutation($s: ID!, $u: ID!, $start: DateTime!, $end: DateTime!) {
      createOverride(scheduleId: $s, userId: $u, start: $start, end: $end, reason: "swap") {
        id user { name } start end reason createdBy { name } schedule { name } } }"""
    variables = {
        "s": str(scene.schedule_id),
        "u": str(scene.responder_id),
        "start": "2026-12-01T00:00:00Z",
        "end": "2026-12-02T00:00:00Z",
    }
    made = data(await gql(world.client, create, variables, key=world.responder_key))["createOverride"]
    assert made["user"] == {"name": "Responder"}
    assert (made["start"], made["end"], made["reason"]) == (
        "2026-12-01T00:00:00Z",
        "2026-12-02T00:00:00Z",
        "swap",
    )
    assert made["createdBy"] == {"name": "Responder"}
    with Session(world.engine) as session:
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "override.create")).all()
        assert [a.actor_user_id for a in audit][-1] == scene.responder_id
    # Overlapping the same person, a non-member, an end before the start: named fields.
    for changes, field in (
        ({}, "start"),
        (
            {"u": str(scene.outsider_id), "start": "2026-12-05T00:00:00Z", "end": "2026-12-06T00:00:00Z"},
            "userId",
        ),
        ({"start": "2026-12-09T00:00:00Z", "end": "2026-12-08T00:00:00Z"}, "end"),
    ):
        bad = await gql(world.client, create, {**variables, **changes}, key=world.responder_key)
        assert codes(bad) == ["BAD_USER_INPUT"], bad
        assert bad["errors"][0]["extensions"]["field"] == field
    deleted = await gql(
        world.client,
        "mutation($o: ID!) { deleteOverride(overrideId: $o) }",
        {"o": made["id"]},
        key=world.responder_key,
    )
    assert data(deleted) == {"deleteOverride": [made["id"]]}
    with Session(world.engine) as session:
        assert session.get(ScheduleOverride, int(made["id"])) is None
    gone = await gql(
        world.client,
        "mutation($o: ID!) { deleteOverride(overrideId: $o) }",
        {"o": made["id"]},
        key=world.responder_key,
    )
    assert codes(gone) == ["NOT_FOUND"]


async def test_devices(world: World, scene: Scene) -> None:
    pytest.importorskip("sentinel_app.services.devices")
    register = """mutation($t: String!) {
      registerDevice(platform: APNS, token: $t, name: "iPhone", appVersion: "1.2") {
        id platform name appVersion active tokenHint } }"""
    device = data(await gql(world.client, register, {"t": APNS_TOKEN}, key=world.responder_key))[
        "registerDevice"
    ]
    assert {k: device[k] for k in ("platform", "name", "appVersion", "active", "tokenHint")} == {
        "platform": "APNS",
        "name": "iPhone",
        "appVersion": "1.2",
        "active": True,
        "tokenHint": f"…{APNS_TOKEN[-6:]}",
    }
    mine = data(await gql(world.client, "{ me { devices { id } } }", key=world.responder_key))
    assert mine == {"me": {"devices": [{"id": device["id"]}]}}
    # Someone else's devices are private; their device ids do not exist for others.
    peek = await gql(world.client, "{ users { name devices { id } } }", key=world.viewer_key)
    assert "FORBIDDEN" in codes(peek)
    bad = await gql(world.client, register, {"t": "not-a-token"}, key=world.responder_key)
    assert codes(bad) == ["BAD_USER_INPUT"]
    assert bad["errors"][0]["extensions"]["field"] == "token"
    unregister = "mutation($d: ID!) { unregisterDevice(deviceId: $d) }"
    theirs = await gql(world.client, unregister, {"d": device["id"]}, key=world.viewer_key)
    assert codes(theirs) == ["NOT_FOUND"]
    assert data(await gql(world.client, unregister, {"d": device["id"]}, key=world.responder_key)) == {
        "unregisterDevice": True
    }
    with Session(world.engine) as session:
        assert session.exec(select(PushDevice)).all() == []


VIEWER_MUTATIONS = [
    "mutation($a: ID!) { acknowledgeAlert(alertId: $a) { id } }",
    "mutation($a: ID!) { unacknowledgeAlert(alertId: $a) { id } }",
    "mutation($a: ID!) { resolveAlert(alertId: $a) { id } }",
    "mutation($a: ID!) { silenceAlert(alertId: $a, minutes: 5) { id } }",
    'mutation($a: ID!) { addAlertNote(alertId: $a, note: "x") { id } }',
    "mutation($a: ID!) { escalateAlert(alertId: $a) { id } }",
    'mutation($s: ID!, $u: ID!) { createOverride(scheduleId: $s, userId: $u, start: "2026-12-10T00:00:00Z", end: "2026-12-11T00:00:00Z") { id } }',
    "mutation($o: ID!) { deleteOverride(overrideId: $o) }",
]


async def test_viewers_cannot_mutate_and_outsiders_see_nothing(world: World, scene: Scene) -> None:
    variables = {
        "a": str(scene.alert_id),
        "s": str(scene.schedule_id),
        "u": str(scene.viewer_id),
        "o": str(scene.override_id),
    }
    for mutation in VIEWER_MUTATIONS:
        used = {k: v for k, v in variables.items() if f"${k}" in mutation}
        viewer = await gql(world.client, mutation, used, key=world.viewer_key)
        assert codes(viewer) == ["FORBIDDEN"], mutation
        outsider = await gql(world.client, mutation, used, key=world.outsider_key)
        assert codes(outsider) == ["NOT_FOUND"], mutation
    alert = _alert(world, scene.alert_id)
    assert alert.status == "firing"
    assert [e.kind for e in _events(world, scene.alert_id)].count("note") == 0
    with Session(world.engine) as session:
        assert len(session.exec(select(ScheduleOverride)).all()) == 1


async def test_each_mutation_field_commits_or_fails_alone(world: World, scene: Scene) -> None:
    # GraphQL runs mutation fields in order; a failing one must not undo the one before it. Its
    # null (the fields are non-null) ends the operation, so the fields after it do not run.
    body = await gql(
        world.client,
        """mutation($a: ID!, $q: ID!) {
          first: acknowledgeAlert(alertId: $a) { status }
          second: acknowledgeAlert(alertId: $a) { status }
          note: addAlertNote(alertId: $q, note: "after the failure") { kind }
        }""",
        {"a": str(scene.alert_id), "q": str(scene.quiet_alert_id)},
        key=world.responder_key,
    )
    assert codes(body) == ["CONFLICT"]
    assert body["errors"][0]["path"] == ["second"]
    assert _alert(world, scene.alert_id).status == "acknowledged"
    assert [e.kind for e in _events(world, scene.alert_id)].count("acknowledged") == 1
    assert "after the failure" not in [e.note for e in _events(world, scene.quiet_alert_id)]
