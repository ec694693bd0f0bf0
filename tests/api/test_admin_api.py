"""Teams, users, memberships, integrations, API keys and the audit log over REST."""

from __future__ import annotations

import pytest

from tests.api.conftest import World

pytestmark = pytest.mark.asyncio


async def test_integration_create_returns_urls_once_and_is_audited(world: World) -> None:
    admin = world.auth(world.admin_key)
    reply = await world.client.post(
        "/api/v1/integrations",
        headers=admin,
        json={"team_id": world.team_id, "name": "Grafana prod", "kind": "grafana_alerting"},
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    token = created["token"]
    assert created["webhook_urls"]["url"].endswith(f"/api/v1/webhooks/grafana_alerting/{token}")
    assert created["webhook_urls"]["grafana_oncall"].endswith(f"/integrations/v1/grafana_alerting/{token}/")
    for kind in ("alertmanager", "grafana", "pagerduty", "webhook", "formatted_webhook"):
        assert created["webhook_urls"][kind].endswith(f"/api/v1/webhooks/{kind}/{token}")
    assert created["webhook_urls"]["pagerduty_events_v2"].endswith("/api/v1/webhooks/pagerduty/enqueue")
    shown = (await world.client.get(f"/api/v1/integrations/{created['id']}", headers=admin)).json()
    assert "token" not in shown and shown["token_prefix"] == token[:10]
    audit = (
        await world.client.get("/api/v1/audit", params={"entity_type": "integration"}, headers=admin)
    ).json()
    entry = next(e for e in audit if e["entity_id"] == str(created["id"]))
    assert entry["action"] == "integration.create" and entry["before"] == {}
    assert "token_hash" not in entry["after"] and entry["after"]["name"] == "Grafana prod"


async def test_integration_update_rotate_and_delete(world: World) -> None:
    admin = world.auth(world.admin_key)
    url = f"/api/v1/integrations/{world.integration_id}"
    patched = await world.client.patch(
        url, headers=admin, json={"name": "prometheus", "grouping": {"mode": "group"}}
    )
    assert patched.json()["name"] == "prometheus" and patched.json()["grouping"] == {"mode": "group"}
    hook = f"/api/v1/webhooks/webhook/{world.integration_token}"
    assert (await world.client.post(hook, json={"title": "cached"})).status_code == 202
    await world.client.patch(url, headers=admin, json={"enabled": False})
    assert (await world.client.post(hook, json={"title": "cached"})).status_code == 403  # cache cleared at once
    await world.client.patch(url, headers=admin, json={"enabled": True})
    rotated = (await world.client.post(f"{url}/rotate-token", headers=admin)).json()
    assert rotated["token"] != world.integration_token
    old = await world.client.post(f"/api/v1/webhooks/alertmanager/{world.integration_token}", json={})
    assert old.status_code == 404
    assert (await world.client.delete(url, headers=admin)).status_code == 204
    assert (await world.client.get(url, headers=admin)).status_code == 404
    actions = [e["action"] for e in (await world.client.get("/api/v1/audit", headers=admin)).json()]
    assert {"integration.update", "integration.rotate_token", "integration.delete"} <= set(actions)


async def test_only_team_admins_configure_integrations(world: World) -> None:
    reply = await world.client.post(
        "/api/v1/integrations",
        headers=world.auth(world.responder_key),
        json={"team_id": world.team_id, "name": "x", "kind": "webhook"},
    )
    assert reply.status_code == 403
    bad_kind = await world.client.post(
        "/api/v1/integrations",
        headers=world.auth(world.admin_key),
        json={"team_id": world.team_id, "name": "x", "kind": "carrier-pigeon"},
    )
    assert bad_kind.status_code == 422 and bad_kind.json()["error"]["field"] == "kind"
    bad_route = await world.client.put(
        f"/api/v1/integrations/{world.integration_id}/routes",
        headers=world.auth(world.admin_key),
        json=[{"matchers": [{"label": "a", "op": "=~", "value": "("}]}],
    )
    assert (
        bad_route.status_code == 422 and bad_route.json()["error"]["field"] == "routes[0].matchers[0].value"
    )


async def test_api_keys_shown_once_stored_hashed_and_revocable(world: World) -> None:
    hdr = world.auth(world.responder_key)
    created = await world.client.post(
        "/api/v1/api-keys", headers=hdr, json={"name": "laptop", "scopes": ["read"]}
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    listed = (await world.client.get("/api/v1/api-keys", headers=hdr)).json()
    assert all("secret" not in k for k in listed) and len(listed) == 2
    assert (await world.client.get("/api/v1/alerts", headers=world.auth(secret))).status_code == 200
    write = await world.client.post(
        "/api/v1/alerts", headers=world.auth(secret), json={"team_id": world.team_id, "title": "x"}
    )
    assert write.status_code == 403
    revoked = await world.client.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=hdr)
    assert revoked.json()["revoked_at"] is not None
    assert (await world.client.get("/api/v1/alerts", headers=world.auth(secret))).status_code == 401


async def test_teams_users_memberships(world: World) -> None:
    admin = world.auth(world.admin_key)
    team = (await world.client.post("/api/v1/teams", headers=admin, json={"name": "Data Platform"})).json()
    assert team["slug"] == "data-platform"
    user = (
        await world.client.post(
            "/api/v1/users",
            headers=admin,
            json={"email": "New.Person@Example.com", "name": "New Person", "timezone": "Europe/Berlin"},
        )
    ).json()
    assert user["email"] == "new.person@example.com"
    member = await world.client.put(
        f"/api/v1/teams/{team['id']}/members/{user['id']}", headers=admin, json={"role": "responder"}
    )
    assert member.json() == {"team_id": team["id"], "user_id": user["id"], "role": "responder"}
    dup = await world.client.post(
        "/api/v1/users", headers=admin, json={"email": "new.person@example.com", "name": "X"}
    )
    assert dup.status_code == 409 and dup.json()["error"]["field"] == "email"
    tz = await world.client.post(
        "/api/v1/users", headers=admin, json={"email": "a@b.io", "name": "A", "timezone": "Mars/Olympus"}
    )
    assert tz.status_code == 422 and tz.json()["error"]["field"] == "timezone"
    responder = world.auth(world.responder_key)
    assert (
        await world.client.post("/api/v1/teams", headers=responder, json={"name": "Rogue"})
    ).status_code == 403
    assert (await world.client.get("/api/v1/audit", headers=responder)).status_code == 403
    me = (await world.client.get("/api/v1/users/me", headers=responder)).json()
    assert me["id"] == world.responder_id and "password_hash" not in me


async def test_openapi_document_is_served(world: World) -> None:
    spec = (await world.client.get("/api/v1/openapi.json")).json()
    assert spec["info"]["title"] == "Fangorn Sentinel"
    assert "/api/v1/alerts/{alert_id}/acknowledge" in spec["paths"]
    assert "/api/v1/webhooks/{kind}/{token}" in spec["paths"]
