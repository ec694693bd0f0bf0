"""An API client on a fresh database, with a team, people of every role and their keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest_asyncio
import sqlalchemy as sa
from sqlmodel import Session

from sentinel_app.api import create_api
from sentinel_app.models import Role
from sentinel_app.services import api_keys, integrations, teams, users


@dataclass
class World:
    """Who and what exists in the test installation."""

    client: httpx.AsyncClient
    engine: sa.Engine
    team_id: int
    other_team_id: int
    admin_key: str
    responder_key: str
    viewer_key: str
    outsider_key: str
    responder_id: int
    integration_id: int
    integration_token: str
    pd_token: str

    def auth(self, key: str) -> dict[str, str]:
        """Authorization header for `key`."""
        return {"Authorization": f"Bearer {key}"}


@pytest_asyncio.fixture
async def world(engine: sa.Engine) -> AsyncIterator[World]:
    with Session(engine, expire_on_commit=False) as session:
        team = teams.create_team(session, name="Payments")
        other = teams.create_team(session, name="Search")
        assert team.id is not None and other.id is not None
        keys: dict[str, str] = {}
        ids: dict[str, int] = {}
        for name, role, team_id, admin in (
            ("admin", Role.ADMIN, team.id, True),
            ("responder", Role.RESPONDER, team.id, False),
            ("viewer", Role.VIEWER, team.id, False),
            ("outsider", Role.RESPONDER, other.id, False),
        ):
            person = users.create_user(
                session, email=f"{name}@example.com", name=name.title(), is_admin=admin
            )
            assert person.id is not None
            teams.set_membership(session, team_id=team_id, user_id=person.id, role=role)
            _, keys[name] = api_keys.issue_key(
                session, user_id=person.id, name="test", scopes=["read", "write", "admin"]
            )
            ids[name] = person.id
        integ, token = integrations.create_integration(
            session, team_id=team.id, name="prom", kind="alertmanager"
        )
        _, pd_token = integrations.create_integration(session, team_id=team.id, name="pd", kind="pagerduty")
        assert integ.id is not None
        session.commit()
    transport = httpx.ASGITransport(app=create_api(engine=engine, max_body_bytes=64 * 1024))
    async with httpx.AsyncClient(transport=transport, base_url="http://sentinel.test") as client:
        yield World(
            client=client,
            engine=engine,
            team_id=team.id,
            other_team_id=other.id,
            admin_key=keys["admin"],
            responder_key=keys["responder"],
            viewer_key=keys["viewer"],
            outsider_key=keys["outsider"],
            responder_id=ids["responder"],
            integration_id=integ.id,
            integration_token=token,
            pd_token=pd_token,
        )
