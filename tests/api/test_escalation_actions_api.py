"""REST: escalate an alert now, and hand it to someone else."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from tests.api.conftest import World
from tests.escalation_support import policy

pytestmark = pytest.mark.asyncio


async def _raise_with_policy(world: World) -> dict[str, object]:
    with Session(world.engine) as session:
        pid = policy(
            session,
            world.team_id,
            [
                {"kind": "notify_users", "targets": {"user_ids": [world.responder_id]}, "delay_minutes": 30},
                {"kind": "notify_users", "targets": {"user_ids": [world.responder_id]}},
            ],
        )
    reply = await world.client.post(
        "/api/v1/alerts",
        json={"team_id": world.team_id, "title": "Payments down", "escalation_policy_id": pid},
        headers=world.auth(world.responder_key),
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


async def test_escalate_now_and_its_conflicts(world: World) -> None:
    alert = await _raise_with_policy(world)
    url = f"/api/v1/alerts/{alert['id']}"
    hdr = world.auth(world.responder_key)
    reply = await world.client.post(f"{url}/escalate", headers=hdr)
    assert reply.status_code == 200, reply.text
    timeline = (await world.client.get(url, headers=hdr)).json()["timeline"]
    assert any(e["note"].startswith("Escalated by hand") for e in timeline)
    assert (await world.client.post(f"{url}/acknowledge", headers=hdr)).status_code == 200
    conflict = await world.client.post(f"{url}/escalate", headers=hdr)
    assert conflict.status_code == 409 and conflict.json()["error"]["field"] == "status"
    assert (
        await world.client.post(f"{url}/escalate", headers=world.auth(world.viewer_key))
    ).status_code == 403
    assert (
        await world.client.post(f"{url}/escalate", headers=world.auth(world.outsider_key))
    ).status_code == 404
    assert (await world.client.post("/api/v1/alerts/999999/escalate", headers=hdr)).status_code == 404


async def test_escalating_an_alert_without_policy_is_a_conflict(world: World) -> None:
    reply = await world.client.post(
        "/api/v1/alerts",
        json={"team_id": world.team_id, "title": "x"},
        headers=world.auth(world.responder_key),
    )
    conflict = await world.client.post(
        f"/api/v1/alerts/{reply.json()['id']}/escalate", headers=world.auth(world.responder_key)
    )
    assert conflict.status_code == 409 and conflict.json()["error"]["field"] == "escalation_policy_id"


async def test_reassign_records_the_new_owner(world: World) -> None:
    alert = await _raise_with_policy(world)
    url = f"/api/v1/alerts/{alert['id']}"
    hdr = world.auth(world.admin_key)
    reply = await world.client.post(f"{url}/assign", json={"user_id": world.responder_id}, headers=hdr)
    assert reply.status_code == 200 and reply.json()["assigned_to_id"] == world.responder_id
    timeline = (await world.client.get(url, headers=hdr)).json()["timeline"]
    assert timeline[-1]["kind"] == "assigned" and "reassigned" in timeline[-1]["note"]
    outsider = await world.client.get("/api/v1/users", headers=hdr)
    assert outsider.status_code == 200
    stranger = [u["id"] for u in outsider.json() if u["email"].startswith("outsider")]
    bad = await world.client.post(f"{url}/assign", json={"user_id": stranger[0]}, headers=hdr)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "user_id"
    missing = await world.client.post(f"{url}/assign", json={}, headers=hdr)
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "user_id"


async def test_channels_without_credentials_say_what_they_need(world: World) -> None:
    reply = await world.client.get("/api/v1/notification-channels", headers=world.auth(world.viewer_key))
    assert reply.status_code == 200
    states = {s["channel"]: s for s in reply.json()}
    assert set(states) == {"apns", "fcm", "sms", "voice", "email", "slack", "webhook"}
    assert states["webhook"]["enabled"]
    if not states["sms"]["enabled"]:
        assert "SENTINEL_TWILIO_ACCOUNT_SID" in states["sms"]["notice"]
    assert (await world.client.get("/api/v1/notification-channels")).status_code == 401
