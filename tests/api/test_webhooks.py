"""Webhooks: real sender payloads, dedup under concurrency, tokens, signatures and bad input."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path

import pytest
from sqlmodel import Session, select

from sentinel_app.api.metrics import REGISTRY
from sentinel_app.models import Alert, AlertEvent, Integration
from sentinel_app.services import integrations
from tests.api.conftest import World

pytestmark = pytest.mark.asyncio
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ingest"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _alerts(world: World) -> list[Alert]:
    with Session(world.engine) as session:
        return list(session.exec(select(Alert).order_by(Alert.id)).all())  # type: ignore[arg-type]


async def _post(world: World, path: str, body: bytes, **headers: str) -> dict[str, object]:
    reply = await world.client.post(
        path, content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert reply.status_code == 202, reply.text
    return reply.json()


async def test_alertmanager_firing_then_resolved(world: World) -> None:
    url = f"/api/v1/webhooks/alertmanager/{world.integration_token}"
    await _post(world, url, _fixture("alertmanager-0.25-firing.json"))
    [alert] = _alerts(world)
    assert (alert.status, alert.severity, alert.title) == ("firing", "critical", "Disk full on db-1")
    assert alert.labels["instance"] == "db-1" and alert.team_id == world.team_id
    await _post(world, url, _fixture("alertmanager-0.25-firing.json"))
    [alert] = _alerts(world)
    assert alert.occurrence_count == 2
    await _post(world, url, _fixture("alertmanager-0.25-resolved.json"))
    [alert] = _alerts(world)
    assert alert.status == "resolved" and alert.resolved_at is not None
    with Session(world.engine) as session:
        events = session.exec(select(AlertEvent.kind).where(AlertEvent.alert_id == alert.id)).all()
    assert list(events) == ["created", "escalated", "occurrence", "resolved"]
    await _post(world, url, _fixture("alertmanager-0.25-firing.json"))
    assert [a.status for a in _alerts(world)] == ["resolved", "firing"]


async def test_token_in_bearer_header_and_grafana_oncall_path(world: World) -> None:
    body = _fixture("alertmanager-0.25-firing.json")
    await _post(
        world, "/api/v1/webhooks/alertmanager", body, Authorization=f"Bearer {world.integration_token}"
    )
    await _post(world, f"/integrations/v1/alertmanager/{world.integration_token}/", body)
    [alert] = _alerts(world)
    assert alert.occurrence_count == 2


async def test_unknown_token_is_404_and_writes_nothing(world: World) -> None:
    reply = await world.client.post(
        "/api/v1/webhooks/alertmanager/it_doesnotexist",
        content=_fixture("alertmanager-0.25-firing.json"),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 404
    assert reply.json()["error"] == {"code": "not_found", "message": "unknown integration", "field": "token"}
    assert _alerts(world) == []


async def test_same_alert_posted_50_times_concurrently_opens_exactly_one(world: World) -> None:
    url = f"/api/v1/webhooks/alertmanager/{world.integration_token}"
    body = _fixture("alertmanager-0.25-firing.json")
    replies = await asyncio.gather(
        *[
            world.client.post(url, content=body, headers={"Content-Type": "application/json"})
            for _ in range(50)
        ]
    )
    assert [r.status_code for r in replies] == [202] * 50
    alerts = _alerts(world)
    assert len(alerts) == 1 and alerts[0].occurrence_count == 50
    actions = [r.json()["alerts"][0]["action"] for r in replies]
    assert actions.count("create") == 1 and actions.count("occurrence") == 49


async def test_pagerduty_events_v2_trigger_acknowledge_resolve(world: World) -> None:
    event = {
        "routing_key": world.pd_token,
        "event_action": "trigger",
        "dedup_key": "srv01/HTTP",
        "payload": {"summary": "HTTP down on srv01", "source": "srv01", "severity": "critical"},
    }
    reply = await world.client.post("/api/v1/webhooks/pagerduty/enqueue", json=event)
    assert reply.status_code == 202
    assert reply.json() == {"status": "success", "message": "Event processed", "dedup_key": "srv01/HTTP"}
    for action, status in (("acknowledge", "acknowledged"), ("resolve", "resolved")):
        reply = await world.client.post(
            "/v2/enqueue",
            json={"routing_key": world.pd_token, "event_action": action, "dedup_key": "srv01/HTTP"},
        )
        assert reply.status_code == 202
        assert _alerts(world)[0].status == status


async def test_pagerduty_invalid_event_answers_like_pagerduty(world: World) -> None:
    reply = await world.client.post(
        "/api/v1/webhooks/pagerduty/enqueue",
        json={
            "routing_key": world.pd_token,
            "event_action": "trigger",
            "payload": {"summary": "x", "source": "y"},
        },
    )
    assert reply.status_code == 400
    body = reply.json()
    assert body["status"] == "invalid event" and body["errors"]
    assert body["error"]["field"] == "payload.severity"
    assert _alerts(world) == []


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "malformed_json"),
        (b"<xml/>", {"Content-Type": "application/xml"}, 415, "unsupported_media_type"),
        (b'{"version": "4", "alerts": "nope"}', {"Content-Type": "application/json"}, 422, "invalid_payload"),
        (b"[1, 2, 3]", {"Content-Type": "application/json"}, 422, "invalid_payload"),
        (b'{"a": "' + b"x" * 70_000 + b'"}', {"Content-Type": "application/json"}, 413, "payload_too_large"),
    ],
)
async def test_bad_webhook_input(
    world: World, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    reply = await world.client.post(
        f"/api/v1/webhooks/alertmanager/{world.integration_token}", content=body, headers=headers
    )
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code
    assert _alerts(world) == []
    metrics = (await world.client.get("/metrics")).text
    assert f'sentinel_api_rejected_total{{reason="{code}"}}' in metrics


async def test_signed_integration_requires_a_valid_signature(world: World) -> None:
    with Session(world.engine) as session:
        integration = session.get(Integration, world.integration_id)
        assert integration is not None
        integrations.set_signing_secret(integration, "a-long-shared-signing-secret")
        session.add(integration)
        session.commit()
    url = f"/api/v1/webhooks/alertmanager/{world.integration_token}"
    body = _fixture("alertmanager-0.25-firing.json")
    unsigned = await world.client.post(url, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["field"] == "x-sentinel-signature"
    assert _alerts(world) == []
    signature = "sha256=" + hmac.new(b"a-long-shared-signing-secret", body, hashlib.sha256).hexdigest()
    await _post(world, url, body, **{"X-Sentinel-Signature": signature})
    assert len(_alerts(world)) == 1


async def test_routing_rules_pick_the_policy_and_metrics_count(world: World) -> None:
    admin = world.auth(world.admin_key)
    created = {"source": "alertmanager", "outcome": "create"}
    before = REGISTRY.get_sample_value("sentinel_ingest_alerts_total", created) or 0.0
    policy = await _make_policy(world)
    reply = await world.client.put(
        f"/api/v1/integrations/{world.integration_id}/routes",
        headers=admin,
        json=[
            {
                "matchers": [{"label": "severity", "op": "=", "value": "critical"}],
                "escalation_policy_id": policy,
            }
        ],
    )
    assert reply.status_code == 200, reply.text
    await _post(
        world,
        f"/api/v1/webhooks/alertmanager/{world.integration_token}",
        _fixture("alertmanager-0.25-firing.json"),
    )
    assert _alerts(world)[0].escalation_policy_id == policy
    assert REGISTRY.get_sample_value("sentinel_ingest_alerts_total", created) == before + 1
    metrics = (await world.client.get("/metrics")).text
    assert 'sentinel_ingest_alerts_total{outcome="create",source="alertmanager"}' in metrics
    assert "sentinel_ingest_request_seconds_bucket" in metrics


async def _make_policy(world: World) -> int:
    from sentinel_app.models import EscalationPolicy

    with Session(world.engine) as session:
        policy = EscalationPolicy(team_id=world.team_id, name="critical")
        session.add(policy)
        session.commit()
        assert policy.id is not None
        return policy.id
