"""Live updates across app processes: two servers on one PostgreSQL database, a real websocket client.

An alert raised on process A, and its acknowledgement there, reach a subscriber connected to
process B through the LISTEN/NOTIFY bus.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from sentinel_app.models import Role
from sentinel_app.models.base import require_id
from sentinel_app.services import api_keys, teams, users
from tests.graphql.serve import serving

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.timeout(180)]

PROTOCOL = "graphql-transport-ws"


async def _receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 15.0) -> dict[str, Any]:
    message: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), timeout)
    return message


async def _next(ws: aiohttp.ClientWebSocketResponse, op_id: str) -> dict[str, Any]:
    message = await _receive(ws)
    assert message["type"] == "next" and message["id"] == op_id, message
    payload: dict[str, Any] = message["payload"]
    assert "errors" not in payload, payload
    return payload["data"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_alert_posted_to_one_process_reaches_a_subscriber_of_another(engine: sa.Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        team = teams.create_team(session, name="Payments")
        person = users.create_user(session, email="responder@example.com", name="Responder")
        teams.set_membership(
            session, team_id=require_id(team), user_id=require_id(person), role=Role.RESPONDER
        )
        _, key = api_keys.issue_key(session, user_id=require_id(person), name="t", scopes=["read", "write"])
        session.commit()
    auth = {"Authorization": f"Bearer {key}"}
    with serving(engine.url.render_as_string(hide_password=False), count=2) as (process_a, process_b):
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{process_b.replace('http', 'ws')}/api/graphql", protocols=(PROTOCOL,)) as ws,
            httpx.AsyncClient(base_url=process_a, headers=auth, timeout=15) as client,
        ):
            assert ws.protocol == PROTOCOL
            await ws.send_json({"type": "connection_init", "payload": auth})
            assert await _receive(ws) == {"type": "connection_ack"}
            for op_id, query in (
                ("created", "subscription { alertCreated { id title team { name } } }"),
                ("updated", "subscription { alertUpdated { id status acknowledgedBy { name } } }"),
            ):
                await ws.send_json({"id": op_id, "type": "subscribe", "payload": {"query": query}})
            await ws.send_json({"type": "ping"})
            assert await _receive(ws) == {"type": "pong"}

            created = await client.post(
                "/api/v1/alerts", json={"team_id": require_id(team), "title": "Database down"}
            )
            assert created.status_code == 201, created.text
            alert_id = str(created.json()["id"])
            assert await _next(ws, "created") == {
                "alertCreated": {"id": alert_id, "title": "Database down", "team": {"name": "Payments"}}
            }
            ack = await client.post(
                "/api/graphql",
                json={
                    "query": "mutation($id: ID!) { acknowledgeAlert(alertId: $id) { status } }",
                    "variables": {"id": alert_id},
                },
            )
            assert ack.json() == {"data": {"acknowledgeAlert": {"status": "ACKNOWLEDGED"}}}
            # The escalation service may publish its own update first; wait for the acknowledged one.
            for _ in range(5):
                update = (await _next(ws, "updated"))["alertUpdated"]
                if update["status"] == "ACKNOWLEDGED":
                    break
            assert update == {
                "id": alert_id,
                "status": "ACKNOWLEDGED",
                "acknowledgedBy": {"name": "Responder"},
            }
