"""Subscriptions over `graphql-transport-ws` in one process (Starlette's websocket test client).

Across processes on PostgreSQL: test_cross_process.py. A subscription is known to be live once a
`ping` sent after `subscribe` is answered: the server handles one message at a time and opens
the bus subscription before it reads the next one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sentinel_app import bus
from sentinel_app.api import create_api
from sentinel_app.api.gql import subscriptions
from sentinel_app.db import utcnow
from sentinel_app.models import ApiKey, Role
from sentinel_app.models.base import require_id
from sentinel_app.security import hash_token
from sentinel_app.services import api_keys, schedules, teams, users

pytestmark = pytest.mark.timeout(60)

WS = "/api/graphql"
Socket = Any  # starlette.testclient.WebSocketTestSession


@dataclass
class Live:
    """An app under a test client, with a team, an outsider's team and keys."""

    client: TestClient
    engine: sa.Engine
    team_id: int
    other_team_id: int
    schedule_id: int
    keys: dict[str, str]
    ids: dict[str, int]

    def post_alert(self, team_id: int, title: str, severity: str = "error", key: str = "admin") -> int:
        """Raise an alert through REST, as a sender would."""
        response = self.client.post(
            "/api/v1/alerts",
            json={"team_id": team_id, "title": title, "severity": severity},
            headers={"Authorization": f"Bearer {self.keys[key]}"},
        )
        assert response.status_code == 201, response.text
        alert_id: int = response.json()["id"]
        return alert_id

    def graphql(self, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
        """An operation over HTTP."""
        response = self.client.post(
            WS,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.keys[key]}"},
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body


@pytest.fixture
def live(engine: sa.Engine) -> Iterator[Live]:
    with Session(engine, expire_on_commit=False) as session:
        team = teams.create_team(session, name="Payments")
        other = teams.create_team(session, name="Search")
        keys, ids = {}, {}
        for name, role, team_row, admin in (
            ("admin", Role.ADMIN, team, True),
            ("responder", Role.RESPONDER, team, False),
            ("outsider", Role.RESPONDER, other, False),
        ):
            person = users.create_user(
                session, email=f"{name}@example.com", name=name.title(), is_admin=admin
            )
            teams.set_membership(session, team_id=require_id(team_row), user_id=require_id(person), role=role)
            _, keys[name] = api_keys.issue_key(
                session, user_id=require_id(person), name="t", scopes=["read", "write"]
            )
            ids[name] = require_id(person)
        schedule = schedules.create_schedule(session, team_id=require_id(team), name="Primary")
        session.commit()
    with TestClient(create_api(engine=engine)) as client:
        yield Live(client, engine, require_id(team), require_id(other), require_id(schedule), keys, ids)


def _connect(ws: Socket, key: str) -> None:
    ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
    assert ws.receive_json() == {"type": "connection_ack"}


def _subscribe(ws: Socket, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
    ws.send_json(
        {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
    )
    ws.send_json({"type": "ping"})
    assert ws.receive_json() == {"type": "pong"}


def _next(ws: Socket, op_id: str) -> dict[str, Any]:
    message = ws.receive_json()
    assert message["type"] == "next" and message["id"] == op_id, message
    payload: dict[str, Any] = message["payload"]
    return payload


CREATED = (
    "subscription($f: AlertFilter) { alertCreated(filter: $f) { id title severity status team { name } } }"
)


def test_alert_created_respects_filter_and_visibility(live: Live) -> None:
    with (
        live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as critical,
        live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as outsider,
    ):
        _connect(critical, live.keys["responder"])
        _subscribe(critical, "c", CREATED, {"f": {"severity": ["CRITICAL"], "text": "database"}})
        _connect(outsider, live.keys["outsider"])
        _subscribe(outsider, "o", CREATED)
        live.post_alert(live.team_id, "Database slow", "warning")
        live.post_alert(live.team_id, "Cache down", "critical")
        wanted = live.post_alert(live.team_id, "Database down", "critical")
        searched = live.post_alert(live.other_team_id, "Search slow")
        got = _next(critical, "c")["data"]["alertCreated"]
        assert got == {
            "id": str(wanted),
            "title": "Database down",
            "severity": "CRITICAL",
            "status": "FIRING",
            "team": {"name": "Payments"},
        }
        # The outsider's first event is their own team's alert: Payments alerts never reach them.
        assert _next(outsider, "o")["data"]["alertCreated"]["id"] == str(searched)


def test_alert_updated_after_a_mutation(live: Live) -> None:
    alert_id = live.post_alert(live.team_id, "Disk full")
    with live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as ws:
        _connect(ws, live.keys["admin"])
        _subscribe(
            ws,
            "u",
            "subscription { alertUpdated { id status acknowledgedBy { name } lastEvent { kind note } } }",
        )
        live.graphql(
            'mutation($id: ID!) { acknowledgeAlert(alertId: $id, note: "mine") { id } }',
            {"id": str(alert_id)},
            "responder",
        )
        assert _next(ws, "u")["data"]["alertUpdated"] == {
            "id": str(alert_id),
            "status": "ACKNOWLEDGED",
            "acknowledgedBy": {"name": "Responder"},
            "lastEvent": {"kind": "acknowledged", "note": "mine"},
        }
        ws.send_json({"id": "u", "type": "complete"})
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


def test_oncall_changed(live: Live) -> None:
    with live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as ws:
        _connect(ws, live.keys["responder"])
        _subscribe(
            ws,
            "s",
            "subscription($s: ID) { oncallChanged(scheduleId: $s) { schedule { name } at oncall { user { name } source } } }",
            {"s": str(live.schedule_id)},
        )
        live.graphql(
            """mutation($s: ID!, $u: ID!) { createOverride(scheduleId: $s, userId: $u,
                 start: "2020-01-01T00:00:00Z", end: "2100-01-01T00:00:00Z") { id } }""",
            {"s": str(live.schedule_id), "u": str(live.ids["responder"])},
            "responder",
        )
        change = _next(ws, "s")["data"]["oncallChanged"]
        assert change["schedule"] == {"name": "Primary"}
        assert change["oncall"] == [{"user": {"name": "Responder"}, "source": "OVERRIDE"}]
        # Someone else's schedule does not exist for the outsider.
    with live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as ws:
        _connect(ws, live.keys["outsider"])
        ws.send_json(
            {
                "id": "x",
                "type": "subscribe",
                "payload": {
                    "query": f'subscription {{ oncallChanged(scheduleId: "{live.schedule_id}") {{ at }} }}'
                },
            }
        )
        message = ws.receive_json()
        assert message["type"] == "error" and message["id"] == "x"
        assert [e["extensions"]["code"] for e in message["payload"]] == ["NOT_FOUND"]


def test_connection_init_authenticates(live: Live) -> None:
    for payload in ({"Authorization": "Bearer sk_wrong"}, {}, None):
        with live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": payload})
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4403
    with live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": "subscription { alertCreated { id } }"}}
        )
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401  # subscribe before connection_init
    # The upgrade request's own header works for clients that can set one.
    with live.client.websocket_connect(
        WS, subprotocols=["graphql-transport-ws"], headers={"Authorization": f"Bearer {live.keys['admin']}"}
    ) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json() == {"type": "connection_ack"}


def test_queries_and_mutations_over_the_socket(live: Live) -> None:
    alert_id = live.post_alert(live.team_id, "Disk full")
    with live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as ws:
        _connect(ws, live.keys["responder"])
        ws.send_json({"id": "q", "type": "subscribe", "payload": {"query": "{ me { name } alerts { id } }"}})
        assert _next(ws, "q") == {"data": {"me": {"name": "Responder"}, "alerts": [{"id": str(alert_id)}]}}
        assert ws.receive_json() == {"type": "complete", "id": "q"}
        mutation = {"query": f'mutation {{ resolveAlert(alertId: "{alert_id}") {{ status }} }}'}
        ws.send_json({"id": "m", "type": "subscribe", "payload": mutation})
        assert _next(ws, "m") == {"data": {"resolveAlert": {"status": "RESOLVED"}}}


def test_lost_events_end_the_subscription(live: Live, memory_bus: bus.Bus) -> None:
    with live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as ws:
        _connect(ws, live.keys["admin"])
        _subscribe(ws, "u", "subscription { alertUpdated { id } }")
        asyncio.run(memory_bus.publish_now(bus.RECONNECTED, {}))
        payload = _next(ws, "u")
        assert [e["extensions"]["code"] for e in payload["errors"]] == ["EVENTS_LOST"]
        assert ws.receive_json() == {"type": "complete", "id": "u"}


def test_revoked_credentials_end_live_updates(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscriptions, "RECHECK_CREDENTIAL", dt.timedelta(0))
    with live.client.websocket_connect(WS, subprotocols=["graphql-transport-ws"]) as ws:
        _connect(ws, live.keys["responder"])
        _subscribe(ws, "c", "subscription { alertCreated { id } }")
        first = live.post_alert(live.team_id, "Before")
        assert _next(ws, "c") == {"data": {"alertCreated": {"id": str(first)}}}
        with Session(live.engine) as session:
            key = session.exec(
                select(ApiKey).where(ApiKey.key_hash == hash_token(live.keys["responder"]))
            ).one()
            api_keys.revoke_key(session, key=key, now=utcnow())
            session.commit()
        live.post_alert(live.team_id, "After")
        payload = _next(ws, "c")
        assert [e["extensions"]["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]
        assert ws.receive_json() == {"type": "complete", "id": "c"}
