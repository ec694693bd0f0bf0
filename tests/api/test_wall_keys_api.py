"""NOC wall keys over REST: administrators issue them, and they open nothing but the wall."""

from __future__ import annotations

import pytest

from tests.api.conftest import World

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        ("admin", {"name": "NOC TV", "scopes": ["wall"]}, 201),
        ("admin", {"name": "NOC TV", "scopes": ["wall", "read"]}, 422),
        ("responder", {"name": "NOC TV", "scopes": ["wall"]}, 403),
        ("viewer", {"name": "NOC TV", "scopes": ["wall"]}, 403),
    ],
)
async def test_only_administrators_issue_wall_keys_and_they_stand_alone(
    world: World, who: str, body: dict[str, object], status: int
) -> None:
    key = {"admin": world.admin_key, "responder": world.responder_key, "viewer": world.viewer_key}[who]
    reply = await world.client.post("/api/v1/api-keys", headers=world.auth(key), json=body)
    assert reply.status_code == status, reply.text
    if status == 201:
        assert reply.json()["scopes"] == ["wall"] and reply.json()["secret"].startswith("sk_")


async def test_a_team_wall_key_needs_admin_rights_in_that_team(world: World) -> None:
    admin = await world.client.post(
        "/api/v1/api-keys",
        headers=world.auth(world.admin_key),
        json={"name": "Payments wall", "scopes": ["wall"], "team_id": world.team_id},
    )
    assert admin.status_code == 201 and admin.json()["team_id"] == world.team_id
    outsider = await world.client.post(
        "/api/v1/api-keys",
        headers=world.auth(world.outsider_key),
        json={"name": "Not mine", "scopes": ["wall"], "team_id": world.team_id},
    )
    assert outsider.status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v1/teams", "/api/v1/users/me", "/api/v1/api-keys"])
async def test_a_wall_key_opens_no_api_route(world: World, path: str) -> None:
    created = await world.client.post(
        "/api/v1/api-keys", headers=world.auth(world.admin_key), json={"name": "wall", "scopes": ["wall"]}
    )
    wall_key = created.json()["secret"]
    reply = await world.client.get(path, headers=world.auth(wall_key))
    assert reply.status_code == 401
    assert reply.json()["error"]["message"] == "this key only opens the NOC wall"
