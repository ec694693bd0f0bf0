"""GraphQL tests: the REST `world` (team, people of every role, keys) plus a GraphQL helper."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col

from sentinel_app import bus
from sentinel_app.db import session_scope
from sentinel_app.ingest.normalized import NormalizedAlert
from sentinel_app.models import Alert, Incident, Notification
from sentinel_app.models.base import require_id
from sentinel_app.services import alerts as alert_service
from sentinel_app.services import escalation_policies, schedules, users
from sentinel_app.services.actor import Actor
from tests.api.conftest import World, world

__all__ = ["NOW", "Scene", "World", "codes", "data", "gql", "scene", "world"]

URL = "/api/graphql"


@pytest.fixture(autouse=True)
def memory_bus() -> Iterator[bus.Bus]:
    """An in-process bus for in-process apps (cross-process tests install their own)."""
    installed = bus.MemoryBus()
    bus.set_bus(installed)
    yield installed
    bus.set_bus(None)


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    status: int | None = None,
) -> dict[str, Any]:
    """POST an operation; returns the JSON body (asserting the HTTP status when given)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await client.post(URL, json={"query": query, "variables": variables or {}}, headers=headers)
    if status is not None:
        assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    """The extensions.code of every error of a response."""
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def data(body: dict[str, Any]) -> dict[str, Any]:
    """The data of a response that must have no errors."""
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@dataclass
class Scene:
    """Rows most GraphQL tests read: ids of a schedule, a policy, alerts, an incident, people."""

    admin_id: int
    responder_id: int
    viewer_id: int
    outsider_id: int
    schedule_id: int
    layer_id: int
    override_id: int
    policy_id: int
    alert_id: int
    other_alert_id: int
    quiet_alert_id: int
    incident_id: int
    notification_id: int


def _fire(
    session: Session, *, team_id: int, title: str, key: str, at: dt.datetime, policy_id: int | None, **kw: Any
) -> int:
    result = alert_service.upsert_firing(
        session,
        team_id=team_id,
        integration_id=None,
        escalation_policy_id=policy_id,
        alert=NormalizedAlert(action="trigger", dedup_key=key, title=title, source="api", fired_at=at, **kw),
        actor=Actor(label="test", channel="api"),
        now=at,
    )
    assert result.alert_id is not None
    return result.alert_id


@pytest.fixture
def scene(world: World) -> Scene:
    """A schedule (daily rotation admin → responder, one override), a policy, three alerts, an incident."""
    with session_scope(write=True, engine=world.engine) as session:
        ids = {
            name: require_id(user)
            for name in ("admin", "responder", "viewer", "outsider")
            if (user := users.get_by_email(session, email=f"{name}@example.com")) is not None
        }
        schedule = schedules.create_schedule(session, team_id=world.team_id, name="Primary", timezone="UTC")
        layer, _ = schedules.create_layer(
            session,
            schedule=schedule,
            fields={
                "name": "Daily",
                "kind": "daily",
                "start_at": dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC),
                "handoff_time": "09:00",
                "participants": [ids["admin"], ids["responder"]],
            },
        )
        override = schedules.create_override(
            session,
            schedule=schedule,
            user_id=ids["viewer"],
            start_at=dt.datetime(2026, 11, 25, 0, 0, tzinfo=dt.UTC),
            end_at=dt.datetime(2026, 11, 26, 0, 0, tzinfo=dt.UTC),
            reason="covering",
        )
        policy, _ = escalation_policies.create_policy(
            session,
            team_id=world.team_id,
            name="Default",
            steps=[
                {"kind": "notify_users", "targets": {"user_ids": [ids["responder"]]}, "delay_minutes": 5},
                {"kind": "notify_schedule", "targets": {"schedule_ids": [require_id(schedule)]}},
            ],
        )
        alert_id = _fire(
            session,
            team_id=world.team_id,
            title="Database down",
            key="db",
            at=NOW,
            policy_id=require_id(policy),
            severity="critical",
            message="primary unreachable",
            labels={"service": "db", "env": "prod"},
            annotations={"summary": "DB is down"},
            links=[{"kind": "runbook", "url": "https://runbooks.example/db", "title": "Runbook"}],
        )
        quiet_id = _fire(
            session,
            team_id=world.team_id,
            title="Disk almost full",
            key="disk",
            at=NOW - dt.timedelta(hours=2),
            policy_id=None,
            severity="warning",
            labels={"service": "disk"},
        )
        other_id = _fire(
            session, team_id=world.other_team_id, title="Search slow", key="search", at=NOW, policy_id=None
        )
        incident = Incident(team_id=world.team_id, title="Storage outage", created_by_id=ids["admin"])
        session.add(incident)
        session.flush()
        session.execute(
            sa.update(Alert)
            .where(col(Alert.id).in_([alert_id, quiet_id]))
            .values(incident_id=require_id(incident))
        )
        notification = Notification(
            idempotency_key=f"test:{alert_id}",
            alert_id=alert_id,
            user_id=ids["responder"],
            channel="sms",
            target="+15550100",
            status="sent",
            attempts=1,
            created_at=NOW,
            sent_at=NOW,
        )
        session.add(notification)
        session.flush()
        return Scene(
            admin_id=ids["admin"],
            responder_id=ids["responder"],
            viewer_id=ids["viewer"],
            outsider_id=ids["outsider"],
            schedule_id=require_id(schedule),
            layer_id=require_id(layer),
            override_id=require_id(override),
            policy_id=require_id(policy),
            alert_id=alert_id,
            other_alert_id=other_id,
            quiet_alert_id=quiet_id,
            incident_id=require_id(incident),
            notification_id=require_id(notification),
        )
