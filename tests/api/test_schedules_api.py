"""Schedules over REST: CRUD, on-call answers across DST, overrides and swaps, iCalendar, export/import."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import icalendar
import pytest
import sqlalchemy as sa
from sqlmodel import Session, func, select

from sentinel_app import bus
from sentinel_app.models import AuditEntry, LayerParticipant, Role, RotationLayer, Schedule, ScheduleOverride
from sentinel_app.services import teams, users
from tests.api.conftest import World

pytestmark = pytest.mark.asyncio

UTC = dt.UTC
API = "/api/v1"


class RecordingBus(bus.MemoryBus):
    """The in-process bus, remembering every event it delivers."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[bus.Event] = []

    def _fanout(self, event: bus.Event) -> None:
        self.delivered.append(event)
        super()._fanout(event)

    def oncall_changes(self) -> list[dict[str, Any]]:
        return [e.data for e in self.delivered if e.kind == "oncall.changed"]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingBus]:
    recorder = RecordingBus()
    monkeypatch.setattr(bus, "_bus", recorder)
    yield recorder


@dataclass
class Crew:
    """Three responders of the world's team, by name."""

    ids: dict[str, int]
    emails: dict[str, str]


@pytest.fixture
def crew(world: World) -> Crew:
    ids: dict[str, int] = {}
    with Session(world.engine, expire_on_commit=False) as session:
        for name in ("ana", "ben", "chen"):
            person = users.create_user(session, email=f"{name}@example.com", name=name.title())
            assert person.id is not None
            teams.set_membership(session, team_id=world.team_id, user_id=person.id, role=Role.RESPONDER)
            ids[name] = person.id
        session.commit()
    return Crew(ids=ids, emails={n: f"{n}@example.com" for n in ids})


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _count(world: World, model: Any) -> int:
    with Session(world.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


async def _schedule(world: World, name: str = "Primary", timezone: str = "America/New_York") -> int:
    reply = await world.client.post(
        f"{API}/schedules",
        headers=world.auth(world.admin_key),
        json={"team_id": world.team_id, "name": name, "timezone": timezone},
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


async def _layer(world: World, schedule_id: int, **fields: Any) -> dict[str, Any]:
    reply = await world.client.post(
        f"{API}/schedules/{schedule_id}/layers", headers=world.auth(world.admin_key), json=fields
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def _who(world: World, schedule_id: int, at: str) -> list[int]:
    reply = await world.client.get(
        f"{API}/schedules/{schedule_id}/oncall", params={"at": at}, headers=world.auth(world.viewer_key)
    )
    assert reply.status_code == 200, reply.text
    return [p["user_id"] for p in reply.json()["on_call"]]


async def test_schedule_crud_is_team_scoped_audited_and_published(
    world: World, crew: Crew, events: RecordingBus
) -> None:
    admin = world.auth(world.admin_key)
    schedule_id = await _schedule(world)
    assert events.oncall_changes() == [{"schedule_id": schedule_id, "team_id": world.team_id}]
    listed = (await world.client.get(f"{API}/schedules", headers=world.auth(world.viewer_key))).json()
    assert [s["name"] for s in listed] == ["Primary"] and listed[0]["calendar_feed"] is False
    # Other teams neither see it nor learn that it exists.
    outsider = world.auth(world.outsider_key)
    assert (await world.client.get(f"{API}/schedules", headers=outsider)).json() == []
    assert (await world.client.get(f"{API}/schedules/{schedule_id}", headers=outsider)).status_code == 404
    # Only team administrators configure schedules.
    denied = await world.client.patch(
        f"{API}/schedules/{schedule_id}", headers=world.auth(world.responder_key), json={"name": "Mine"}
    )
    assert denied.status_code == 403
    patched = await world.client.patch(
        f"{API}/schedules/{schedule_id}",
        headers=admin,
        json={"name": "Primary on-call", "timezone": "Europe/Paris"},
    )
    assert patched.status_code == 200 and patched.json()["timezone"] == "Europe/Paris"
    duplicate = await world.client.post(
        f"{API}/schedules", headers=admin, json={"team_id": world.team_id, "name": "Primary on-call"}
    )
    assert duplicate.status_code == 409 and duplicate.json()["error"]["field"] == "name"
    await _layer(
        world,
        schedule_id,
        name="Daily",
        kind="daily",
        start_at="2026-01-01T09:00:00+01:00",
        participants=[crew.ids["ana"]],
    )
    detail = (await world.client.get(f"{API}/schedules/{schedule_id}", headers=admin)).json()
    assert detail["name"] == "Primary on-call" and [layer["name"] for layer in detail["layers"]] == ["Daily"]
    assert (await world.client.delete(f"{API}/schedules/{schedule_id}", headers=admin)).status_code == 204
    assert (await world.client.get(f"{API}/schedules/{schedule_id}", headers=admin)).status_code == 404
    assert _count(world, RotationLayer) == 0 and _count(world, LayerParticipant) == 0
    audit = (await world.client.get(f"{API}/audit", headers=admin)).json()
    actions = {e["action"] for e in audit}
    assert {"schedule.create", "schedule.update", "layer.create", "schedule.delete"} <= actions
    assert all("ical_token_hash" not in e["after"] for e in audit)
    # create, timezone change, layer, delete: each published in its own transaction.
    assert len(events.oncall_changes()) == 4


async def test_weekly_rotation_follows_new_york_wall_clock_across_dst_end(world: World, crew: Crew) -> None:
    schedule_id = await _schedule(world, timezone="America/New_York")
    a, b, c = crew.ids["ana"], crew.ids["ben"], crew.ids["chen"]
    layer = await _layer(
        world,
        schedule_id,
        name="Weekly",
        kind="weekly",
        handoff_weekday=6,  # Sunday: 2026-11-01, the day clocks fall back, is a hand-off day
        handoff_time="09:00",
        start_at="2026-10-04T09:00:00-04:00",
        participants=[a, b, c],
    )
    assert layer["handoff_time"] == "09:00" and layer["participants"] == [a, b, c]
    # 09:00 EDT is 13:00 UTC; 09:00 EST is 14:00 UTC.
    assert await _who(world, schedule_id, "2026-10-25T12:59:59Z") == [c]
    assert await _who(world, schedule_id, "2026-10-25T13:00:00Z") == [a]
    assert await _who(world, schedule_id, "2026-11-01T06:30:00Z") == [a]  # 01:30 EDT, first pass
    assert await _who(world, schedule_id, "2026-11-01T13:30:00Z") == [a]  # 08:30 EST: not yet 09:00
    assert await _who(world, schedule_id, "2026-11-01T14:00:00Z") == [b]
    assert await _who(world, schedule_id, "2026-11-08T13:59:00Z") == [b]
    assert await _who(world, schedule_id, "2026-11-08T14:00:00Z") == [c]
    assert await _who(world, schedule_id, "2026-10-04T12:00:00Z") == []  # before the layer starts
    viewer = world.auth(world.viewer_key)
    nxt = (
        await world.client.get(
            f"{API}/schedules/{schedule_id}/next-handoff",
            params={"at": "2026-10-26T00:00:00Z"},
            headers=viewer,
        )
    ).json()
    assert _at(nxt["next_handoff"]) == _at("2026-11-01T14:00:00Z")
    assert [p["user_id"] for p in nxt["current"]] == [a] and [p["user_id"] for p in nxt["next"]] == [b]
    assert nxt["next"][0]["user_name"] == "Ben" and nxt["next"][0]["source"] == "layer"
    oncall = (
        await world.client.get(
            f"{API}/schedules/{schedule_id}/oncall", params={"at": "2026-10-30T00:00:00Z"}, headers=viewer
        )
    ).json()
    assert _at(oncall["until"]) == _at("2026-11-01T14:00:00Z")
    plan = (
        await world.client.get(
            f"{API}/schedules/{schedule_id}/shifts",
            params={"start": "2026-10-25T00:00:00Z", "end": "2026-11-09T00:00:00Z"},
            headers=viewer,
        )
    ).json()
    got = [(s["user_id"], _at(s["start"]), _at(s["end"])) for s in plan["shifts"]]
    assert got == [
        (c, _at("2026-10-25T00:00:00Z"), _at("2026-10-25T13:00:00Z")),
        (a, _at("2026-10-25T13:00:00Z"), _at("2026-11-01T14:00:00Z")),  # a 169-hour week
        (b, _at("2026-11-01T14:00:00Z"), _at("2026-11-08T14:00:00Z")),
        (c, _at("2026-11-08T14:00:00Z"), _at("2026-11-09T00:00:00Z")),
    ]
    assert plan["gaps"] == [] and plan["shifts"][1]["user_email"] == "ana@example.com"


async def test_layers_priorities_restrictions_update_and_delete(
    world: World, crew: Crew, events: RecordingBus
) -> None:
    admin = world.auth(world.admin_key)
    schedule_id = await _schedule(world, timezone="Europe/Berlin")
    a, b, c = crew.ids["ana"], crew.ids["ben"], crew.ids["chen"]
    base = await _layer(
        world,
        schedule_id,
        name="Base",
        kind="daily",
        handoff_time="08:00",
        start_at="2026-06-01T08:00:00+02:00",
        participants=[a],
    )
    office = await _layer(
        world,
        schedule_id,
        name="Office hours",
        priority=10,
        kind="custom",
        unit="day",
        interval=2,
        handoff_time="09:00",
        start_at="2026-06-01T09:00:00+02:00",
        participants=[b, c, b],  # repeats are allowed
        restrictions=[
            {"kind": "weekly", "start": "09:00", "end": "17:00", "start_weekday": 0, "end_weekday": 4}
        ],
    )
    assert office["participants"] == [b, c, b] and office["restrictions"][0]["end"] == "17:00"
    # Monday 2026-06-01 10:00 Berlin: the office layer (priority 10) wins inside its window...
    assert await _who(world, schedule_id, "2026-06-01T08:00:00Z") == [b]
    # ...which runs from Monday 09:00 to Friday 17:00; the base layer shows through after it.
    assert await _who(world, schedule_id, "2026-06-01T16:00:00Z") == [b]
    assert await _who(world, schedule_id, "2026-06-05T16:00:00Z") == [a]
    assert await _who(world, schedule_id, "2026-06-03T08:00:00Z") == [c]  # every 2 days
    listed = (await world.client.get(f"{API}/schedules/{schedule_id}/layers", headers=admin)).json()
    assert [layer["name"] for layer in listed] == ["Office hours", "Base"]  # best priority first
    # A responder may not change layers.
    url = f"{API}/schedules/{schedule_id}/layers/{office['id']}"
    assert (
        await world.client.patch(url, headers=world.auth(world.responder_key), json={"priority": 0})
    ).status_code == 403
    before = len(events.oncall_changes())
    patched = await world.client.patch(url, headers=admin, json={"participants": [c], "restrictions": []})
    assert patched.status_code == 200, patched.text
    assert patched.json()["participants"] == [c] and patched.json()["interval"] == 2
    assert await _who(world, schedule_id, "2026-06-05T16:00:00Z") == [c]
    assert len(events.oncall_changes()) == before + 1
    # A PATCH that changes nothing writes nothing.
    same = await world.client.patch(url, headers=admin, json={"participants": [c]})
    assert same.status_code == 200 and len(events.oncall_changes()) == before + 1
    # Switching kind drops the custom unit, so the weekly layer stays valid.
    weekly = await world.client.patch(url, headers=admin, json={"kind": "weekly", "interval": 1})
    assert weekly.status_code == 200 and weekly.json()["unit"] is None
    clash = await world.client.patch(url, headers=admin, json={"name": "Base"})
    assert clash.status_code == 409 and clash.json()["error"]["field"] == "name"
    got = await world.client.get(f"{API}/schedules/{schedule_id}/layers/{base['id']}", headers=admin)
    assert got.json()["name"] == "Base"
    assert (await world.client.delete(url, headers=admin)).status_code == 204
    assert await _who(world, schedule_id, "2026-06-01T08:00:00Z") == [a]
    assert (await world.client.get(url, headers=admin)).status_code == 404
    other = await _schedule(world, name="Other")
    wrong = await world.client.delete(f"{API}/schedules/{other}/layers/{base['id']}", headers=admin)
    assert wrong.status_code == 404


async def test_overrides_win_newest_first_and_reject_overlaps(world: World, crew: Crew) -> None:
    responder = world.auth(world.responder_key)
    schedule_id = await _schedule(world, timezone="UTC")
    a, b, c = crew.ids["ana"], crew.ids["ben"], crew.ids["chen"]
    await _layer(
        world, schedule_id, name="Daily", kind="daily", start_at="2026-12-01T09:00:00Z", participants=[a]
    )
    url = f"{API}/schedules/{schedule_id}/overrides"
    first = await world.client.post(
        url,
        headers=responder,
        json={
            "user_id": b,
            "start_at": "2026-12-02T00:00:00Z",
            "end_at": "2026-12-04T00:00:00Z",
            "reason": "dentist",
        },
    )
    assert first.status_code == 201, first.text
    assert first.json()["user_name"] == "Ben" and first.json()["created_by_id"] == world.responder_id
    second = await world.client.post(
        url,
        headers=responder,
        json={"user_id": c, "start_at": "2026-12-03T00:00:00Z", "end_at": "2026-12-03T12:00:00Z"},
    )
    assert second.status_code == 201
    assert await _who(world, schedule_id, "2026-12-01T12:00:00Z") == [a]
    assert await _who(world, schedule_id, "2026-12-02T12:00:00Z") == [b]
    assert await _who(world, schedule_id, "2026-12-03T06:00:00Z") == [c]  # the newer override wins
    assert await _who(world, schedule_id, "2026-12-03T18:00:00Z") == [b]
    oncall = (
        await world.client.get(
            f"{API}/schedules/{schedule_id}/oncall", params={"at": "2026-12-02T12:00:00Z"}, headers=responder
        )
    ).json()
    assert (
        oncall["on_call"][0]["source"] == "override"
        and oncall["on_call"][0]["source_id"] == first.json()["id"]
    )
    # The same person cannot be given two overlapping overrides; nothing is written.
    overlap = await world.client.post(
        url,
        headers=responder,
        json={"user_id": b, "start_at": "2026-12-03T23:00:00Z", "end_at": "2026-12-05T00:00:00Z"},
    )
    assert overlap.status_code == 422 and overlap.json()["error"]["field"] == "start_at"
    assert _count(world, ScheduleOverride) == 2
    # Viewers read but do not write.
    viewer = world.auth(world.viewer_key)
    assert (
        await world.client.post(
            url,
            headers=viewer,
            json={"user_id": c, "start_at": "2026-12-09T00:00:00Z", "end_at": "2026-12-10T00:00:00Z"},
        )
    ).status_code == 403
    ranged = (await world.client.get(url, params={"start": "2026-12-03T13:00:00Z"}, headers=viewer)).json()
    assert [o["user_id"] for o in ranged] == [b]
    assert len((await world.client.get(url, headers=viewer)).json()) == 2
    assert (await world.client.delete(f"{url}/{first.json()['id']}", headers=responder)).status_code == 204
    assert await _who(world, schedule_id, "2026-12-02T12:00:00Z") == [a]
    assert (await world.client.delete(f"{url}/{first.json()['id']}", headers=responder)).status_code == 404


async def test_swap_creates_a_pair_atomically_and_deletes_as_one(world: World, crew: Crew) -> None:
    responder = world.auth(world.responder_key)
    schedule_id = await _schedule(world, timezone="UTC")
    a, b = crew.ids["ana"], crew.ids["ben"]
    await _layer(
        world, schedule_id, name="Weekly", kind="weekly", start_at="2026-12-07T09:00:00Z", participants=[a, b]
    )
    swap: dict[str, Any] = {
        "first": {"user_id": a, "start_at": "2026-12-07T09:00:00Z", "end_at": "2026-12-14T09:00:00Z"},
        "second": {"user_id": b, "start_at": "2026-12-14T09:00:00Z", "end_at": "2026-12-21T09:00:00Z"},
        "reason": "holiday",
    }
    reply = await world.client.post(f"{API}/schedules/{schedule_id}/swaps", headers=responder, json=swap)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert len(body["overrides"]) == 2 and {o["swap_group"] for o in body["overrides"]} == {
        body["swap_group"]
    }
    assert [(o["user_id"], o["reason"]) for o in body["overrides"]] == [(b, "holiday"), (a, "holiday")]
    assert await _who(world, schedule_id, "2026-12-08T00:00:00Z") == [b]
    assert await _who(world, schedule_id, "2026-12-15T00:00:00Z") == [a]
    assert await _who(world, schedule_id, "2026-12-22T00:00:00Z") == [a]  # back to the rotation
    # A second swap clashing with the first writes neither half.
    clash = {
        "first": {"user_id": a, "start_at": "2026-12-28T09:00:00Z", "end_at": "2027-01-04T09:00:00Z"},
        "second": {"user_id": b, "start_at": "2026-12-20T09:00:00Z", "end_at": "2026-12-21T09:00:00Z"},
    }
    refused = await world.client.post(f"{API}/schedules/{schedule_id}/swaps", headers=responder, json=clash)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "second.start_at"
    same = {**swap, "second": {**swap["second"], "user_id": a}}
    refused = await world.client.post(f"{API}/schedules/{schedule_id}/swaps", headers=responder, json=same)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "second.user_id"
    assert _count(world, ScheduleOverride) == 2
    # Deleting one half deletes the pair.
    half = body["overrides"][1]["id"]
    assert (
        await world.client.delete(f"{API}/schedules/{schedule_id}/overrides/{half}", headers=responder)
    ).status_code == 204
    assert _count(world, ScheduleOverride) == 0
    assert await _who(world, schedule_id, "2026-12-08T00:00:00Z") == [a]


LAYER = {"name": "L", "kind": "weekly", "start_at": "2026-10-04T09:00:00-04:00"}
BAD_LAYERS: list[tuple[dict[str, Any], str]] = [
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"participants": []}, "participants"),
    ({"end_at": "2026-10-01T00:00:00Z"}, "end_at"),
    ({"start_at": "2026-10-04T09:00:00"}, "start_at"),
    ({"handoff_time": "9am"}, "handoff_time"),
    ({"handoff_time": "24:00"}, "handoff_time"),
    ({"interval": 0}, "interval"),
    ({"handoff_weekday": 7}, "handoff_weekday"),
    ({"kind": "daily", "shift_length_minutes": 25 * 60}, "shift_length_minutes"),
    ({"start_index": 3}, "start_index"),
    ({"kind": "custom"}, "unit"),
    ({"kind": "fortnightly"}, "kind"),
    ({"restrictions": [{"kind": "daily", "start": "09:00", "end": "09:00"}]}, "restrictions[0].end"),
    ({"restrictions": [{"kind": "daily", "start": "25:00", "end": "09:00"}]}, "restrictions[0].start"),
    (
        {
            "restrictions": [
                {"kind": "daily", "start": "09:00", "end": "17:00"},
                {"kind": "weekly", "start": "09:00", "end": "10:00"},
            ]
        },
        "restrictions[1].start_weekday",
    ),
]


async def test_validation_errors_name_the_field_and_write_nothing(world: World, crew: Crew) -> None:
    admin = world.auth(world.admin_key)
    bad_zone = await world.client.post(
        f"{API}/schedules",
        headers=admin,
        json={"team_id": world.team_id, "name": "X", "timezone": "Mars/Olympus_Mons"},
    )
    assert bad_zone.status_code == 422 and bad_zone.json()["error"]["field"] == "timezone"
    schedule_id = await _schedule(world)
    audit_rows = _count(world, AuditEntry)
    people = [crew.ids["ana"], crew.ids["ben"], crew.ids["chen"]]
    for change, field in BAD_LAYERS:
        body = {**LAYER, "participants": people, **change}
        reply = await world.client.post(f"{API}/schedules/{schedule_id}/layers", headers=admin, json=body)
        assert reply.status_code == 422, (change, reply.text)
        assert reply.json()["error"]["field"] == field, (change, reply.json())
    # A participant from another team.
    outsider = (await world.client.get(f"{API}/users/me", headers=world.auth(world.outsider_key))).json()[
        "id"
    ]
    reply = await world.client.post(
        f"{API}/schedules/{schedule_id}/layers",
        headers=admin,
        json={**LAYER, "participants": [people[0], outsider]},
    )
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "participants[1]"
    overrides = f"{API}/schedules/{schedule_id}/overrides"
    for body, field in (
        (
            {"user_id": people[0], "start_at": "2026-12-02T00:00:00Z", "end_at": "2026-12-01T00:00:00Z"},
            "end_at",
        ),
        (
            {"user_id": people[0], "start_at": "2026-12-02T00:00:00Z", "end_at": "2026-12-02T00:00:00Z"},
            "end_at",
        ),
        (
            {"user_id": outsider, "start_at": "2026-12-01T00:00:00Z", "end_at": "2026-12-02T00:00:00Z"},
            "user_id",
        ),
    ):
        reply = await world.client.post(overrides, headers=admin, json=body)
        assert reply.status_code == 422 and reply.json()["error"]["field"] == field, reply.text
    patch = await world.client.patch(
        f"{API}/schedules/{schedule_id}", headers=admin, json={"timezone": "Nowhere/City"}
    )
    assert patch.status_code == 422 and patch.json()["error"]["field"] == "timezone"
    assert _count(world, RotationLayer) == 0 and _count(world, ScheduleOverride) == 0
    assert _count(world, AuditEntry) == audit_rows
    with Session(world.engine) as session:
        assert session.get(Schedule, schedule_id).timezone == "America/New_York"  # type: ignore[union-attr]
    # A valid layer whose PATCH turns invalid keeps its old values.
    layer = await _layer(world, schedule_id, **LAYER, participants=people, start_index=2)
    reply = await world.client.patch(
        f"{API}/schedules/{schedule_id}/layers/{layer['id']}",
        headers=admin,
        json={"participants": people[:1]},
    )
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "start_index"
    kept = await world.client.get(f"{API}/schedules/{schedule_id}/layers/{layer['id']}", headers=admin)
    assert kept.json()["participants"] == people
    reply = await world.client.patch(
        f"{API}/schedules/{schedule_id}/layers/{layer['id']}",
        headers=admin,
        json={"participants": people[:1], "start_index": 0},
    )
    assert reply.status_code == 200


async def test_shift_queries_check_their_range(world: World, crew: Crew) -> None:
    viewer = world.auth(world.viewer_key)
    schedule_id = await _schedule(world, timezone="UTC")
    await _layer(
        world,
        schedule_id,
        name="Nights",
        kind="daily",
        handoff_time="20:00",
        shift_length_minutes=12 * 60,
        start_at="2026-12-01T20:00:00Z",
        end_at="2026-12-03T08:00:00Z",
        participants=[crew.ids["ana"], crew.ids["ben"]],
    )
    url = f"{API}/schedules/{schedule_id}/shifts"
    plan = (
        await world.client.get(
            url, params={"start": "2026-12-01T00:00:00Z", "end": "2026-12-04T00:00:00Z"}, headers=viewer
        )
    ).json()
    assert [(s["user_name"], s["start"][:16], s["end"][:16]) for s in plan["shifts"]] == [
        ("Ana", "2026-12-01T20:00", "2026-12-02T08:00"),
        ("Ben", "2026-12-02T20:00", "2026-12-03T08:00"),
    ]
    assert [(g["start"][:16], g["end"][:16]) for g in plan["gaps"]] == [
        ("2026-12-01T00:00", "2026-12-01T20:00"),
        ("2026-12-02T08:00", "2026-12-02T20:00"),
        ("2026-12-03T08:00", "2026-12-04T00:00"),
    ]
    for params, field in (
        ({"start": "2026-01-01T00:00:00Z", "end": "2027-03-01T00:00:00Z"}, "end"),
        ({"start": "2026-12-05T00:00:00Z", "end": "2026-12-04T00:00:00Z"}, "end"),
        ({"start": "2026-12-01T00:00:00", "end": "2026-12-04T00:00:00Z"}, "start"),
    ):
        reply = await world.client.get(url, params=params, headers=viewer)
        assert reply.status_code == 422 and reply.json()["error"]["field"] == field, reply.text
    after = (
        await world.client.get(
            f"{API}/schedules/{schedule_id}/next-handoff",
            params={"at": "2026-12-05T00:00:00Z"},
            headers=viewer,
        )
    ).json()
    assert after["next_handoff"] is None and after["current"] == []


async def test_everyone_on_call_now_across_visible_schedules(world: World, crew: Crew) -> None:
    now = dt.datetime.now(UTC)
    first = await _schedule(world, name="Primary", timezone="UTC")
    second = await _schedule(world, name="Secondary", timezone="Asia/Tokyo")
    await _schedule(world, name="Empty")
    start = (now - dt.timedelta(days=3)).replace(microsecond=0).isoformat()
    await _layer(world, first, name="Daily", kind="daily", start_at=start, participants=[crew.ids["ana"]])
    await _layer(
        world,
        second,
        name="Hourly",
        kind="hourly",
        interval=6,
        start_at=start,
        participants=[crew.ids["ben"], crew.ids["chen"]],
    )
    reply = await world.client.get(f"{API}/oncall", headers=world.auth(world.viewer_key))
    assert reply.status_code == 200
    items = {i["schedule_name"]: i for i in reply.json()["items"]}
    assert set(items) == {"Primary", "Secondary"}
    assert items["Primary"]["user_id"] == crew.ids["ana"] and items["Primary"]["shift_end"] is None
    assert items["Primary"]["seconds_left"] is None  # a one-person rotation never hands off
    assert 0 < items["Secondary"]["seconds_left"] <= 6 * 3600
    assert items["Secondary"]["user_id"] in (crew.ids["ben"], crew.ids["chen"])
    assert (await world.client.get(f"{API}/oncall", headers=world.auth(world.outsider_key))).json()[
        "items"
    ] == []
    filtered = await world.client.get(
        f"{API}/oncall", params={"team_id": world.other_team_id}, headers=world.auth(world.viewer_key)
    )
    assert filtered.json()["items"] == []
    now_default = (
        await world.client.get(f"{API}/schedules/{second}/oncall", headers=world.auth(world.viewer_key))
    ).json()
    assert [p["user_id"] for p in now_default["on_call"]] == [items["Secondary"]["user_id"]]


def _events(ics: bytes) -> list[tuple[str, dt.datetime, dt.datetime, str, str]]:
    calendar = icalendar.Calendar.from_ical(ics)
    found = []
    for event in calendar.walk("VEVENT"):
        start, end = event.get("DTSTART").dt, event.get("DTEND").dt
        assert start.utcoffset() == dt.timedelta(0) and end.utcoffset() == dt.timedelta(0)
        found.append(
            (str(event.get("UID")), start, end, str(event.get("SUMMARY")), str(event.get("ATTENDEE")))
        )
    return sorted(found, key=lambda e: e[1])


async def test_calendar_feeds_match_shifts_and_rotate(world: World, crew: Crew) -> None:
    admin = world.auth(world.admin_key)
    schedule_id = await _schedule(world, name="Primary", timezone="Europe/Berlin")
    a, b = crew.ids["ana"], crew.ids["ben"]
    start = (dt.datetime.now(UTC) - dt.timedelta(days=60)).replace(hour=7, minute=0, second=0, microsecond=0)
    await _layer(
        world,
        schedule_id,
        name="Daily",
        kind="daily",
        handoff_time="09:00",
        start_at=start.isoformat(),
        participants=[a, b],
    )
    soon = (dt.datetime.now(UTC) + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    override = await world.client.post(
        f"{API}/schedules/{schedule_id}/overrides",
        headers=admin,
        json={
            "user_id": crew.ids["chen"],
            "start_at": soon.isoformat(),
            "end_at": (soon + dt.timedelta(hours=5)).isoformat(),
        },
    )
    assert override.status_code == 201
    issued = await world.client.post(
        f"{API}/schedules/{schedule_id}/calendar-token", headers=world.auth(world.responder_key)
    )
    assert issued.status_code == 200, issued.text
    url = issued.json()["url"]
    assert url.endswith(".ics") and issued.json()["webcal_url"].startswith("webcal://")
    path = httpx.URL(url).path
    feed = await world.client.get(path)  # no Authorization header: the token is the secret
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    events = _events(feed.content)
    assert len(events) > 100 and len({uid for uid, *_ in events}) == len(events)
    assert "On call: Chen (Primary)" in {summary for *_, summary, _ in events}
    assert "mailto:ana@example.com" in {attendee for *_, attendee in events}
    # The feed spans about 30 days back to 90 days ahead...
    now = dt.datetime.now(UTC)
    assert events[0][1] <= now - dt.timedelta(days=29) and events[-1][2] >= now + dt.timedelta(days=89)
    # ...and says exactly what the shifts API says for the same range.
    plan = (
        await world.client.get(
            f"{API}/schedules/{schedule_id}/shifts",
            params={"start": events[0][1].isoformat(), "end": events[-1][2].isoformat()},
            headers=admin,
        )
    ).json()
    assert plan["gaps"] == []
    assert [(_at(s["start"]), _at(s["end"]), s["user_name"]) for s in plan["shifts"]] == [
        (start_, end_, summary.split(": ")[1].split(" (")[0]) for _, start_, end_, summary, _ in events
    ]
    # UIDs are stable between fetches, so clients update instead of duplicating.
    again = _events((await world.client.get(path)).content)
    # (At most the first and last event differ, should the fetch straddle UTC midnight.)
    assert len({e[0] for e in again} & {e[0] for e in events}) >= len(events) - 2
    listed = (await world.client.get(f"{API}/schedules/{schedule_id}", headers=admin)).json()
    assert listed["calendar_feed"] is True
    # Rotating the token kills the old URL.
    rotated = (await world.client.post(f"{API}/schedules/{schedule_id}/calendar-token", headers=admin)).json()
    assert rotated["token"] != issued.json()["token"]
    assert (await world.client.get(path)).status_code == 404
    assert (await world.client.get(httpx.URL(rotated["url"]).path)).status_code == 200
    assert (await world.client.get(f"{API}/calendars/schedules/cal_nope.ics")).status_code == 404
    assert (
        await world.client.post(
            f"{API}/schedules/{schedule_id}/calendar-token", headers=world.auth(world.viewer_key)
        )
    ).status_code == 403
    # A personal feed holds only that person's shifts, from every schedule.
    personal_key = await _key_for(world, a)
    read_only = world.auth(await _key_for(world, a, ("read",)))
    assert (await world.client.post(f"{API}/users/me/calendar-token", headers=read_only)).status_code == 403
    mine = await world.client.post(f"{API}/users/me/calendar-token", headers=world.auth(personal_key))
    assert mine.status_code == 200
    my_path = httpx.URL(mine.json()["url"]).path
    personal = _events((await world.client.get(my_path)).content)
    assert personal and {e[0] for e in personal} == {e[0] for e in events if "On call: Ana" in e[3]}
    await world.client.post(f"{API}/users/me/calendar-token", headers=world.auth(personal_key))
    assert (await world.client.get(my_path)).status_code == 404
    assert (await world.client.get(f"{API}/calendars/users/{issued.json()['token']}.ics")).status_code == 404
    actions = [e["action"] for e in (await world.client.get(f"{API}/audit", headers=admin)).json()]
    assert "schedule.rotate_calendar_token" in actions and "user.rotate_calendar_token" in actions


async def _key_for(world: World, user_id: int, scopes: tuple[str, ...] = ("read", "write")) -> str:
    from sentinel_app.services import api_keys

    with Session(world.engine, expire_on_commit=False) as session:
        _, key = api_keys.issue_key(session, user_id=user_id, name="cal", scopes=list(scopes))
        session.commit()
    return key


ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Test//Cover//EN\r
BEGIN:VEVENT\r
UID:e1\r
DTSTAMP:20261120T000000Z\r
DTSTART:20261201T140000Z\r
DTEND:20261202T140000Z\r
SUMMARY:Cover for Ana\r
ATTENDEE;CN=Ben:mailto:ben@example.com\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:e2\r
DTSTAMP:20261120T000000Z\r
DTSTART;TZID=America/New_York:20261205T090000\r
DURATION:PT12H\r
SUMMARY:ana@example.com covers Saturday\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:e3\r
DTSTAMP:20261120T000000Z\r
DTSTART;VALUE=DATE:20261210\r
SUMMARY:Holiday cover\r
ORGANIZER:mailto:chen@example.com\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:e4\r
DTSTAMP:20261120T000000Z\r
DTSTART:20261211T140000Z\r
DTEND:20261212T140000Z\r
STATUS:CANCELLED\r
SUMMARY:called off\r
END:VEVENT\r
END:VCALENDAR\r
"""


async def test_ics_import_creates_overrides_once(world: World, crew: Crew, events: RecordingBus) -> None:
    responder = world.auth(world.responder_key)
    schedule_id = await _schedule(world, timezone="America/New_York")
    await _layer(
        world,
        schedule_id,
        name="Daily",
        kind="daily",
        start_at="2026-11-01T09:00:00-05:00",
        participants=[crew.ids["ana"]],
    )
    url = f"{API}/schedules/{schedule_id}/overrides/import-ics"
    published = len(events.oncall_changes())
    reply = await world.client.post(url, headers={**responder, "Content-Type": "text/calendar"}, content=ICS)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["unchanged"], body["skipped"]) == (0, 1)
    got = [(o["user_id"], _at(o["start_at"]), _at(o["end_at"])) for o in body["created"]]
    assert got == [
        (crew.ids["ben"], _at("2026-12-01T14:00:00Z"), _at("2026-12-02T14:00:00Z")),
        (crew.ids["ana"], _at("2026-12-05T14:00:00Z"), _at("2026-12-06T02:00:00Z")),
        (crew.ids["chen"], _at("2026-12-10T05:00:00Z"), _at("2026-12-11T05:00:00Z")),  # a New York day
    ]
    assert body["created"][0]["reason"] == "imported from iCalendar: Cover for Ana"
    assert len(events.oncall_changes()) == published + 1
    assert await _who(world, schedule_id, "2026-12-01T15:00:00Z") == [crew.ids["ben"]]
    # The same file again (as JSON this time) changes nothing.
    again = await world.client.post(url, headers=responder, json={"ics": ICS})
    assert again.status_code == 200 and again.json()["created"] == [] and again.json()["unchanged"] == 3
    assert _count(world, ScheduleOverride) == 3
    bad_cases = [
        (ICS.replace("ben@example.com", "stranger@example.org"), "events[0].attendee"),
        (ICS.replace("DTEND:20261202T140000Z", "DTEND:20261201T130000Z"), "events[0].end_at"),
        (ICS.replace("DURATION:PT12H", "RRULE:FREQ=DAILY"), "events[1].rrule"),
        ("this is not a calendar", "ics"),
    ]
    for text, field in bad_cases:
        refused = await world.client.post(
            url, headers={**responder, "Content-Type": "text/calendar"}, content=text
        )
        assert refused.status_code == 422 and refused.json()["error"]["field"] == field, refused.text
    # Overlapping an existing override of the same person (not the identical one).
    shifted = ICS.replace("DTEND:20261202T140000Z", "DTEND:20261202T150000Z")
    refused = await world.client.post(
        url, headers={**responder, "Content-Type": "text/calendar"}, content=shifted
    )
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "events[0].start_at"
    assert _count(world, ScheduleOverride) == 3
    wrong_type = await world.client.post(
        url, headers={**responder, "Content-Type": "text/plain"}, content=ICS
    )
    assert wrong_type.status_code == 415
    viewer = await world.client.post(
        url, headers={**world.auth(world.viewer_key), "Content-Type": "text/calendar"}, content=ICS
    )
    assert viewer.status_code == 403


async def test_export_import_round_trip_is_idempotent(world: World, crew: Crew, events: RecordingBus) -> None:
    admin = world.auth(world.admin_key)
    schedule_id = await _schedule(world, name="Primary", timezone="America/New_York")
    a, b, c = crew.ids["ana"], crew.ids["ben"], crew.ids["chen"]
    await _layer(
        world,
        schedule_id,
        name="Weekly",
        kind="weekly",
        handoff_weekday=6,
        handoff_time="09:00",
        start_at="2026-10-04T09:00:00-04:00",
        participants=[a, b, c, a],
    )
    await _layer(
        world,
        schedule_id,
        name="Business hours",
        priority=5,
        kind="daily",
        start_at="2026-10-05T09:00:00-04:00",
        participants=[c],
        restrictions=[{"kind": "daily", "start": "09:00", "end": "17:00"}],
    )
    await world.client.post(
        f"{API}/schedules/{schedule_id}/overrides",
        headers=admin,
        json={
            "user_id": b,
            "start_at": "2026-11-02T00:00:00Z",
            "end_at": "2026-11-03T00:00:00Z",
            "reason": "cover",
        },
    )
    await world.client.post(
        f"{API}/schedules/{schedule_id}/swaps",
        headers=admin,
        json={
            "first": {"user_id": a, "start_at": "2026-11-10T00:00:00Z", "end_at": "2026-11-11T00:00:00Z"},
            "second": {"user_id": c, "start_at": "2026-11-12T00:00:00Z", "end_at": "2026-11-13T00:00:00Z"},
        },
    )
    exported = await world.client.get(
        f"{API}/schedules/{schedule_id}/export", headers=world.auth(world.viewer_key)
    )
    assert exported.status_code == 200
    document = exported.json()
    entry = document["schedules"][0]
    assert entry["team"] == "payments" and entry["layers"][0]["participants"] == [
        "ana@example.com",
        "ben@example.com",
        "chen@example.com",
        "ana@example.com",
    ]
    assert len(entry["overrides"]) == 3
    plan_params = {"start": "2026-10-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
    plan = (
        await world.client.get(f"{API}/schedules/{schedule_id}/shifts", params=plan_params, headers=admin)
    ).json()
    # Importing what was exported changes nothing: no writes, no audit entries, no events.
    audit_rows, published = _count(world, AuditEntry), len(events.oncall_changes())
    for _ in range(2):
        reply = await world.client.post(f"{API}/schedules/import", headers=admin, json=document)
        assert reply.status_code == 200, reply.text
        assert reply.json()["items"] == [
            {"schedule_id": schedule_id, "team_id": world.team_id, "name": "Primary", "status": "unchanged"}
        ]
    assert _count(world, AuditEntry) == audit_rows and len(events.oncall_changes()) == published
    # Deleted and imported again, the schedule answers exactly as before.
    assert (await world.client.delete(f"{API}/schedules/{schedule_id}", headers=admin)).status_code == 204
    created = (await world.client.post(f"{API}/schedules/import", headers=admin, json=document)).json()[
        "items"
    ][0]
    assert created["status"] == "created"
    again = (
        await world.client.get(
            f"{API}/schedules/{created['schedule_id']}/shifts", params=plan_params, headers=admin
        )
    ).json()
    strip = lambda p: [(s["user_id"], s["start"], s["end"], s["source"]) for s in p["shifts"]]  # noqa: E731
    assert strip(again) == strip(plan)
    re_exported = (
        await world.client.get(f"{API}/schedules/{created['schedule_id']}/export", headers=admin)
    ).json()
    assert re_exported == document
    # A changed document updates in place: layers by name, overrides merged.
    entry["layers"] = [entry["layers"][1] | {"participants": ["ben@example.com"]}]
    entry["overrides"].append(
        {"user": "chen@example.com", "start_at": "2026-11-20T00:00:00Z", "end_at": "2026-11-21T00:00:00Z"}
    )
    updated = (await world.client.post(f"{API}/schedules/import", headers=admin, json=document)).json()[
        "items"
    ][0]
    assert updated == {**created, "status": "updated"}
    layers = (
        await world.client.get(f"{API}/schedules/{created['schedule_id']}/layers", headers=admin)
    ).json()
    assert [(layer["name"], layer["participants"]) for layer in layers] == [("Business hours", [b])]
    assert _count(world, ScheduleOverride) == 4
    # An invalid document is refused as a whole.
    audit_rows = _count(world, AuditEntry)
    bad = {
        "schedules": [
            entry | {"name": "New one"},
            entry
            | {
                "name": "Broken",
                "layers": [entry["layers"][0] | {"participants": ["ben@example.com", "nobody@example.com"]}],
            },
        ]
    }
    refused = await world.client.post(f"{API}/schedules/import", headers=admin, json=bad)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "schedules[1].layers[0].participants[1]"
    names = [s["name"] for s in (await world.client.get(f"{API}/schedules", headers=admin)).json()]
    assert names == ["Primary"] and _count(world, AuditEntry) == audit_rows
    # Importing into a team needs its administrators.
    denied = await world.client.post(
        f"{API}/schedules/import", headers=world.auth(world.responder_key), json=document
    )
    assert denied.status_code == 403
    unknown_team = await world.client.post(
        f"{API}/schedules/import", headers=admin, json={"schedules": [entry | {"team": "nope"}]}
    )
    assert unknown_team.status_code == 422 and unknown_team.json()["error"]["field"] == "schedules[0].team"


async def test_deleting_a_schedule_paged_by_a_policy_is_refused(world: World, crew: Crew) -> None:
    from sentinel_app.models import EscalationPolicy, EscalationStep

    schedule_id = await _schedule(world)
    with Session(world.engine) as session:
        policy = EscalationPolicy(team_id=world.team_id, name="Default")
        session.add(policy)
        session.flush()
        assert policy.id is not None
        session.add(
            EscalationStep(
                policy_id=policy.id, kind="notify_schedule", targets={"schedule_ids": [schedule_id]}
            )
        )
        session.commit()
    reply = await world.client.delete(f"{API}/schedules/{schedule_id}", headers=world.auth(world.admin_key))
    assert reply.status_code == 409 and reply.json()["error"]["field"] == "schedule_id"
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM schedules")).scalar_one() == 1


async def test_openapi_lists_the_schedule_routes(world: World) -> None:
    paths = (await world.client.get(f"{API}/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/schedules",
        "/api/v1/schedules/{schedule_id}/layers/{layer_id}",
        "/api/v1/schedules/{schedule_id}/swaps",
        "/api/v1/schedules/{schedule_id}/overrides/import-ics",
        "/api/v1/oncall",
        "/api/v1/calendars/schedules/{token}.ics",
        "/api/v1/users/me/calendar-token",
    ):
        assert path in paths, path
