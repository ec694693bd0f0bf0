"""REST alerts: raising, listing, lifecycle, permissions and validation."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import Session, func, select

from sentinel_app.models import Alert, AlertEvent
from tests.api.conftest import World

pytestmark = pytest.mark.asyncio


def _count(world: World, table: type) -> int:
    with Session(world.engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


async def _raise(world: World, **body: object) -> dict[str, object]:
    payload = {"team_id": world.team_id, "title": "Checkout latency high", **body}
    reply = await world.client.post("/api/v1/alerts", json=payload, headers=world.auth(world.responder_key))
    assert reply.status_code == 201, reply.text
    return reply.json()


async def test_authentication_is_required(world: World) -> None:
    assert (await world.client.get("/api/v1/alerts")).status_code == 401
    reply = await world.client.get("/api/v1/alerts", headers=world.auth("sk_wrong"))
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "unauthenticated"
    assert reply.headers["www-authenticate"] == "Bearer"


async def test_raise_repeat_and_detail(world: World) -> None:
    first = await _raise(world, dedup_key="latency", severity="critical", labels={"service": "checkout"})
    again = await _raise(world, dedup_key="latency", severity="critical", labels={"service": "checkout"})
    assert again["id"] == first["id"] and again["occurrence_count"] == 2
    detail = (
        await world.client.get(f"/api/v1/alerts/{first['id']}", headers=world.auth(world.viewer_key))
    ).json()
    assert [e["kind"] for e in detail["timeline"]] == ["created", "escalated", "occurrence"]
    assert detail["timeline"][0]["actor"] == "Responder"


async def test_lifecycle_with_conflicts(world: World) -> None:
    alert = await _raise(world)
    url, hdr = f"/api/v1/alerts/{alert['id']}", world.auth(world.responder_key)
    acked = await world.client.post(f"{url}/acknowledge", json={"note": "on it"}, headers=hdr)
    assert acked.status_code == 200
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_by_id"] == acked.json()["assigned_to_id"] == world.responder_id
    twice = await world.client.post(f"{url}/acknowledge", headers=hdr)
    assert twice.status_code == 409
    assert "status: acknowledged" in twice.json()["error"]["message"]
    assert (await world.client.post(f"{url}/unacknowledge", headers=hdr)).json()["status"] == "firing"
    silenced = await world.client.post(f"{url}/silence", json={"duration_minutes": 30}, headers=hdr)
    assert silenced.json()["silenced_until"] is not None
    assert (await world.client.post(f"{url}/unsilence", headers=hdr)).json()["silenced_until"] is None
    assert (
        await world.client.post(f"{url}/notes", json={"note": "root cause: GC"}, headers=hdr)
    ).status_code == 201
    resolved = await world.client.post(f"{url}/resolve", json={"resolution_note": "fixed"}, headers=hdr)
    assert resolved.json()["status"] == "resolved"
    again = await world.client.post(f"{url}/resolve", headers=hdr)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    timeline = (await world.client.get(url, headers=hdr)).json()["timeline"]
    assert [e["kind"] for e in timeline] == [
        "created",
        "escalated",
        "acknowledged",
        "unacknowledged",
        "silenced",
        "unsilenced",
        "note",
        "resolved",
    ]
    assert timeline[2]["note"] == "on it" and timeline[-1]["note"] == "fixed"
    # A firing after resolution opens a new alert.
    assert (await _raise(world))["id"] != alert["id"]


async def test_roles_and_team_scoping(world: World) -> None:
    alert = await _raise(world)
    url = f"/api/v1/alerts/{alert['id']}"
    viewer = await world.client.post(f"{url}/acknowledge", headers=world.auth(world.viewer_key))
    assert viewer.status_code == 403
    outsider = await world.client.get(url, headers=world.auth(world.outsider_key))
    assert outsider.status_code == 404
    listed = await world.client.get("/api/v1/alerts", headers=world.auth(world.outsider_key))
    assert listed.json()["items"] == []
    foreign = await world.client.post(
        "/api/v1/alerts",
        json={"team_id": world.team_id, "title": "x"},
        headers=world.auth(world.outsider_key),
    )
    assert foreign.status_code == 403


async def test_filters_and_cursor_pagination(world: World) -> None:
    for index in range(7):
        await _raise(
            world,
            title=f"alert {index}",
            dedup_key=f"k{index}",
            severity="critical" if index % 2 else "warning",
            labels={"shard": str(index % 3)},
        )
    hdr = world.auth(world.viewer_key)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await world.client.get("/api/v1/alerts", params=params, headers=hdr)).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and len(set(seen)) == 7 and seen == sorted(seen, reverse=True)
    critical = (await world.client.get("/api/v1/alerts", params={"severity": "critical"}, headers=hdr)).json()
    assert {a["title"] for a in critical["items"]} == {"alert 1", "alert 3", "alert 5"}
    by_label = (await world.client.get("/api/v1/alerts", params=[("label", "shard=0")], headers=hdr)).json()
    assert {a["title"] for a in by_label["items"]} == {"alert 0", "alert 3", "alert 6"}
    text = (await world.client.get("/api/v1/alerts", params={"q": "ALERT 4"}, headers=hdr)).json()
    assert [a["title"] for a in text["items"]] == ["alert 4"]
    firing = (await world.client.get("/api/v1/alerts", params={"status": ["firing"]}, headers=hdr)).json()
    assert len(firing["items"]) == 7


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"title": "no team"}, 422, "team_id"),
        ({"team_id": 1, "title": ""}, 422, "title"),
        ({"team_id": 1, "title": "x", "severity": "loud"}, 422, "severity"),
        ({"team_id": 1, "title": "x", "labels": {"a": 1}}, 422, "labels.a"),
        ({"team_id": 1, "title": "x", "colour": "red"}, 422, "colour"),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    world: World, body: dict[str, object], status: int, field: str
) -> None:
    before = _count(world, Alert)
    reply = await world.client.post("/api/v1/alerts", json=body, headers=world.auth(world.admin_key))
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["field"] == field
    assert _count(world, Alert) == before
    metrics = (await world.client.get("/metrics")).text
    assert 'sentinel_api_rejected_total{reason="validation_error"}' in metrics


async def test_malformed_json_is_400(world: World) -> None:
    reply = await world.client.post(
        "/api/v1/alerts",
        content=b"{nope",
        headers={**world.auth(world.admin_key), "Content-Type": "application/json"},
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "malformed_json"


async def test_concurrent_acknowledgements_record_exactly_one(world: World) -> None:
    alert = await _raise(world)
    url = f"/api/v1/alerts/{alert['id']}/acknowledge"
    replies = await asyncio.gather(
        *[world.client.post(url, headers=world.auth(world.responder_key)) for _ in range(10)]
    )
    assert sorted(r.status_code for r in replies) == [200] + [409] * 9
    with Session(world.engine) as session:
        kinds = session.exec(select(AlertEvent.kind).where(AlertEvent.alert_id == alert["id"])).all()
    assert list(kinds).count("acknowledged") == 1
