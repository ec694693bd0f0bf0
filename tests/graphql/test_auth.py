"""Credentials: API keys (as in REST), login sessions (login/logout), scopes and team-limited keys."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app.db import session_scope, utcnow
from sentinel_app.models import ApiKey, AuditEntry, UserSession
from sentinel_app.security import hash_token
from sentinel_app.services import api_keys, users
from tests.graphql.conftest import Scene, World, codes, data, gql

pytestmark = pytest.mark.asyncio

PASSWORD = "correct horse battery"
LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password, client: "ios") { token expiresAt user { name } } }"""


def _set_password(world: World, email: str) -> None:
    with session_scope(write=True, engine=world.engine) as session:
        user = users.get_by_email(session, email=email)
        assert user is not None
        users.set_password(session, user=user, password=PASSWORD)


async def test_missing_or_bad_credentials(world: World) -> None:
    for key in (None, "sk_not-a-real-key", "ss_not-a-real-session"):
        body = await gql(world.client, "{ me { id } }", key=key)
        assert codes(body) == ["UNAUTHENTICATED"], key
    response = await world.client.post(
        "/api/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": "Basic dXNlcjpwdw=="}
    )
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]


async def test_login_session_lifecycle(world: World, scene: Scene) -> None:
    _set_password(world, "responder@example.com")
    for email, password in (("responder@example.com", "wrong password"), ("nobody@example.com", PASSWORD)):
        refused = await gql(world.client, LOGIN, {"email": email, "password": password})
        assert codes(refused) == ["UNAUTHENTICATED"]
        assert refused["errors"][0]["message"] == "invalid email or password"
    # A stale Authorization header does not stop anyone from signing in again.
    login = await gql(
        world.client, LOGIN, {"email": "Responder@Example.com", "password": PASSWORD}, key="ss_stale"
    )
    result = data(login)["login"]
    token = result["token"]
    assert token.startswith("ss_") and result["user"] == {"name": "Responder"}
    expires = dt.datetime.fromisoformat(result["expiresAt"])
    assert dt.timedelta(days=29, hours=23) < expires - utcnow() <= dt.timedelta(days=30)
    with Session(world.engine) as session:
        [row] = session.exec(select(UserSession)).all()
        assert (row.user_id, row.client, row.token_hash) == (scene.responder_id, "ios", hash_token(token))
        assert [
            a.action for a in session.exec(select(AuditEntry).where(AuditEntry.entity_type == "user_session"))
        ] == ["session.create"]
    # The session acts with the user's roles: a responder may acknowledge.
    me = await gql(world.client, "{ me { name } }", key=token)
    assert data(me) == {"me": {"name": "Responder"}}
    ack = await gql(
        world.client,
        "mutation($id: ID!) { acknowledgeAlert(alertId: $id) { acknowledgedBy { name } } }",
        {"id": str(scene.alert_id)},
        key=token,
    )
    assert data(ack)["acknowledgeAlert"]["acknowledgedBy"] == {"name": "Responder"}
    assert data(await gql(world.client, "mutation { logout }", key=token)) == {"logout": True}
    after = await gql(world.client, "{ me { name } }", key=token)
    assert codes(after) == ["UNAUTHENTICATED"]
    with_key = await gql(world.client, "mutation { logout }", key=world.responder_key)
    assert codes(with_key) == ["BAD_USER_INPUT"]


async def test_failed_sign_ins_are_rate_limited(world: World) -> None:
    _set_password(world, "admin@example.com")
    wrong = {"email": "admin@example.com", "password": "not the password"}
    for _ in range(5):
        assert codes(await gql(world.client, LOGIN, wrong)) == ["UNAUTHENTICATED"]
    limited = await gql(world.client, LOGIN, {**wrong, "password": PASSWORD})
    assert codes(limited) == ["RATE_LIMITED"]
    assert limited["errors"][0]["extensions"]["retryAfterSeconds"] > 0


async def test_expired_session_and_disabled_user(world: World) -> None:
    _set_password(world, "viewer@example.com")
    token = data(await gql(world.client, LOGIN, {"email": "viewer@example.com", "password": PASSWORD}))[
        "login"
    ]["token"]
    with session_scope(write=True, engine=world.engine) as session:
        session.execute(sa.update(UserSession).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert codes(await gql(world.client, "{ me { id } }", key=token)) == ["UNAUTHENTICATED"]
    with session_scope(write=True, engine=world.engine) as session:
        session.execute(sa.update(UserSession).values(expires_at=utcnow() + dt.timedelta(days=1)))
    assert data(await gql(world.client, "{ me { name } }", key=token)) == {"me": {"name": "Viewer"}}
    with session_scope(write=True, engine=world.engine) as session:
        user = users.get_by_email(session, email="viewer@example.com")
        assert user is not None
        user.is_active = False
        session.add(user)
    assert codes(await gql(world.client, "{ me { id } }", key=token)) == ["UNAUTHENTICATED"]
    refused = await gql(world.client, LOGIN, {"email": "viewer@example.com", "password": PASSWORD})
    assert codes(refused) == ["UNAUTHENTICATED"]


async def test_key_scopes_and_team_limits(world: World, scene: Scene) -> None:
    with session_scope(write=True, engine=world.engine) as session:
        _, read_only = api_keys.issue_key(session, user_id=scene.responder_id, name="ro", scopes=["read"])
        _, search_only = api_keys.issue_key(
            session,
            user_id=scene.admin_id,
            name="search",
            scopes=["read", "write"],
            team_id=world.other_team_id,
        )
    ack = "mutation($id: ID!) { acknowledgeAlert(alertId: $id) { id } }"
    assert codes(await gql(world.client, ack, {"id": str(scene.alert_id)}, key=read_only)) == ["FORBIDDEN"]
    device = 'mutation { registerDevice(platform: FCM, token: "x") { id } }'
    assert codes(await gql(world.client, device, key=read_only)) == ["FORBIDDEN"]
    assert len(data(await gql(world.client, "{ alerts { id } }", key=read_only))["alerts"]) == 2
    # An admin's key limited to one team sees that team only.
    limited = data(await gql(world.client, "{ alerts { title } teams { name } }", key=search_only))
    assert limited == {"alerts": [{"title": "Search slow"}], "teams": [{"name": "Search"}]}
    assert codes(await gql(world.client, ack, {"id": str(scene.alert_id)}, key=search_only)) == ["NOT_FOUND"]


async def test_revoked_key(world: World) -> None:
    with session_scope(write=True, engine=world.engine) as session:
        key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_token(world.viewer_key))).one()
        api_keys.revoke_key(session, key=key, now=utcnow())
    assert codes(await gql(world.client, "{ me { id } }", key=world.viewer_key)) == ["UNAUTHENTICATED"]
    with Session(world.engine) as session:
        assert session.exec(select(ApiKey).where(col(ApiKey.revoked_at).is_not(None))).one()
