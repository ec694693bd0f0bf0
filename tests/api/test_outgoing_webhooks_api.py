"""Outgoing webhooks over REST: team admins only, secret shown once and stored encrypted, audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, select

from sentinel_app.models import AuditEntry, OutgoingWebhook, Role
from sentinel_app.services import outgoing_webhooks, teams, users
from tests.api.conftest import World

pytestmark = pytest.mark.asyncio

URL = "/api/v1/outgoing-webhooks"


@pytest.fixture(autouse=True)
def _secret_key(settings_env: pytest.MonkeyPatch) -> Iterator[None]:
    settings_env.setenv("SENTINEL_SECRET_KEY", "outgoing-webhooks-test-secret-key-0123456789")
    yield


def _stored(world: World, hook_id: int) -> OutgoingWebhook | None:
    with Session(world.engine) as session:
        return session.get(OutgoingWebhook, hook_id)


async def _create(world: World, **fields: Any) -> dict[str, Any]:
    body = {"team_id": world.team_id, "name": "chatops", "url": "https://chat.example.com/hook", **fields}
    reply = await world.client.post(URL, headers=world.auth(world.admin_key), json=body)
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


async def test_secret_is_shown_once_stored_encrypted_and_rotatable(world: World) -> None:
    admin = world.auth(world.admin_key)
    created = await _create(world, events=["resolved", "fired"])
    secret = created["secret"]
    assert created["events"] == ["fired", "resolved"] and created["enabled"] is True and created["has_secret"]
    shown = (await world.client.get(f"{URL}/{created['id']}", headers=admin)).json()
    assert "secret" not in shown and shown["name"] == "chatops"
    assert all("secret" not in h for h in (await world.client.get(URL, headers=admin)).json())
    stored = _stored(world, created["id"])
    assert stored is not None and stored.secret_encrypted and secret not in stored.secret_encrypted
    assert outgoing_webhooks.secret_of(stored) == secret
    rotated = await world.client.post(f"{URL}/{created['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (secret, "")
    stored = _stored(world, created["id"])
    assert stored is not None and outgoing_webhooks.secret_of(stored) == rotated.json()["secret"]
    with Session(world.engine) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.entity_type == "outgoing_webhook")).all()
    assert [e.action for e in entries] == ["outgoing_webhook.create", "outgoing_webhook.rotate_secret"]
    for entry in entries:
        text = str(entry.before) + str(entry.after)
        assert secret not in text and rotated.json()["secret"] not in text and "secret_encrypted" not in text


async def test_default_events_update_and_delete(world: World) -> None:
    admin = world.auth(world.admin_key)
    created = await _create(world)
    assert created["events"] == ["fired", "acknowledged", "resolved", "escalated"]
    hook_url = f"{URL}/{created['id']}"
    patched = await world.client.patch(
        hook_url,
        headers=admin,
        json={"events": ["escalated"], "enabled": False, "url": "https://new.example/x"},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["events"], patched.json()["enabled"], patched.json()["url"]) == (
        ["escalated"],
        False,
        "https://new.example/x",
    )
    with Session(world.engine) as session:
        assert outgoing_webhooks.subscriptions_for(session, team_ids=[world.team_id], event="escalated") == []
    await world.client.patch(hook_url, headers=admin, json={"enabled": True})
    with Session(world.engine) as session:
        subs = outgoing_webhooks.subscriptions_for(session, team_ids=[world.team_id], event="escalated")
        assert [h.id for h in subs] == [created["id"]]
        assert outgoing_webhooks.subscriptions_for(session, team_ids=[world.team_id], event="fired") == []
    assert (await world.client.delete(hook_url, headers=admin)).status_code == 204
    assert (await world.client.get(hook_url, headers=admin)).status_code == 404
    with Session(world.engine) as session:
        actions = session.exec(
            select(AuditEntry.action).where(
                AuditEntry.entity_id == str(created["id"]), AuditEntry.entity_type == "outgoing_webhook"
            )
        ).all()
    assert list(actions) == [
        "outgoing_webhook.create",
        "outgoing_webhook.update",
        "outgoing_webhook.update",
        "outgoing_webhook.delete",
    ]


@pytest.mark.parametrize(
    ("fields", "field", "status"),
    [
        ({"events": []}, "events", 422),
        ({"events": ["fired", "exploded"]}, "events", 422),
        ({"events": "fired"}, "events", 422),
        ({"url": "ftp://files.example.com/"}, "url", 422),
        ({"url": "http://192.168.1.10/hook"}, "url", 422),
        ({"url": "http://localhost:9999/"}, "url", 422),
        ({"name": "   "}, "name", 422),
        ({"team_id": 0}, "team_id", 422),
        ({"secret": "mine"}, "secret", 422),
    ],
)
async def test_validation_names_the_field(
    world: World, fields: dict[str, Any], field: str, status: int
) -> None:
    body = {"team_id": world.team_id, "name": "chatops", "url": "https://chat.example.com/hook", **fields}
    reply = await world.client.post(URL, headers=world.auth(world.admin_key), json=body)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["field"] == field


async def test_names_are_unique_per_team(world: World) -> None:
    first = await _create(world)
    dup = await world.client.post(
        URL,
        headers=world.auth(world.admin_key),
        json={"team_id": world.team_id, "name": "chatops", "url": "https://a.example/"},
    )
    assert dup.status_code == 409 and dup.json()["error"]["field"] == "name"
    other = await _create(world, name="other")
    rename = await world.client.patch(
        f"{URL}/{other['id']}", headers=world.auth(world.admin_key), json={"name": "chatops"}
    )
    assert rename.status_code == 409 and rename.json()["error"]["field"] == "name"
    assert first["id"] != other["id"]


async def test_only_team_admins_manage_outgoing_webhooks(world: World) -> None:
    created = await _create(world)
    hook_url = f"{URL}/{created['id']}"
    body = {"team_id": world.team_id, "name": "x", "url": "https://x.example/"}
    for key in (world.responder_key, world.viewer_key):
        hdr = world.auth(key)
        assert (await world.client.post(URL, headers=hdr, json=body)).status_code == 403
        assert (await world.client.get(URL, headers=hdr)).status_code == 403
        assert (await world.client.get(hook_url, headers=hdr)).status_code == 403
        assert (await world.client.patch(hook_url, headers=hdr, json={"enabled": False})).status_code == 403
        assert (await world.client.post(f"{hook_url}/rotate-secret", headers=hdr)).status_code == 403
        assert (await world.client.delete(hook_url, headers=hdr)).status_code == 403
    # Another team's member does not even learn that the webhook exists.
    outsider = world.auth(world.outsider_key)
    assert (await world.client.get(hook_url, headers=outsider)).status_code == 404
    assert (await world.client.delete(hook_url, headers=outsider)).status_code == 404
    # A team admin (not an installation admin) manages their own team's webhooks only.
    with Session(world.engine) as session:
        outsider_user = users.get_by_email(session, email="outsider@example.com")
        assert outsider_user is not None and outsider_user.id is not None
        teams.set_membership(session, team_id=world.other_team_id, user_id=outsider_user.id, role=Role.ADMIN)
        session.commit()
    theirs = await world.client.post(URL, headers=outsider, json={**body, "team_id": world.other_team_id})
    assert theirs.status_code == 201, theirs.text
    assert [h["id"] for h in (await world.client.get(URL, headers=outsider)).json()] == [theirs.json()["id"]]
    assert (await world.client.post(URL, headers=outsider, json=body)).status_code == 403
    filtered = await world.client.get(URL, headers=outsider, params={"team_id": world.team_id})
    assert filtered.status_code == 403
    everything = (await world.client.get(URL, headers=world.auth(world.admin_key))).json()
    assert {h["id"] for h in everything} == {created["id"], theirs.json()["id"]}
