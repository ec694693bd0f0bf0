"""Escalation policies over REST: CRUD of policies and steps, reordering, validation, permissions, dry runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session, col, func, select

from sentinel_app import bus
from sentinel_app.models import (
    AuditEntry,
    EscalationPolicy,
    EscalationStep,
    Integration,
    IntegrationRoute,
    Role,
    Schedule,
    User,
)
from sentinel_app.services import api_keys, integrations, teams, users
from tests.api.conftest import World

pytestmark = pytest.mark.asyncio

API = "/api/v1"
POLICIES = f"{API}/escalation-policies"


class RecordingBus(bus.MemoryBus):
    """The in-process bus, remembering every event it delivers."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[bus.Event] = []

    def _fanout(self, event: bus.Event) -> None:
        self.delivered.append(event)
        super()._fanout(event)

    def policy_changes(self) -> list[dict[str, Any]]:
        return [e.data for e in self.delivered if e.kind == "escalation_policy.changed"]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingBus]:
    recorder = RecordingBus()
    monkeypatch.setattr(bus, "_bus", recorder)
    yield recorder


@dataclass
class Crew:
    """Three responders of the world's team and a team administrator who is no global admin."""

    ids: dict[str, int]
    team_admin_key: str
    read_only_key: str


@pytest.fixture
def crew(world: World) -> Crew:
    ids: dict[str, int] = {}
    with Session(world.engine, expire_on_commit=False) as session:
        for name in ("ana", "ben", "chen", "lead"):
            person = users.create_user(session, email=f"{name}@example.com", name=name.title())
            assert person.id is not None
            role = Role.ADMIN if name == "lead" else Role.RESPONDER
            teams.set_membership(session, team_id=world.team_id, user_id=person.id, role=role)
            ids[name] = person.id
        _, team_admin_key = api_keys.issue_key(
            session, user_id=ids["lead"], name="lead", scopes=["read", "write", "admin"]
        )
        _, read_only_key = api_keys.issue_key(session, user_id=ids["lead"], name="ro", scopes=["read"])
        session.commit()
    return Crew(ids=ids, team_admin_key=team_admin_key, read_only_key=read_only_key)


def _count(world: World, model: Any) -> int:
    with Session(world.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _notify(*user_ids: int, delay: int = 0, kind: str = "notify_users") -> dict[str, Any]:
    return {"kind": kind, "delay_minutes": delay, "targets": {"user_ids": list(user_ids)}}


async def _create(world: World, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    reply = await world.client.post(
        POLICIES, headers=world.auth(key or world.admin_key), json={"team_id": world.team_id, **body}
    )
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


async def _get(world: World, policy_id: int) -> dict[str, Any]:
    reply = await world.client.get(f"{POLICIES}/{policy_id}", headers=world.auth(world.viewer_key))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _shape(policy: dict[str, Any]) -> list[tuple[int, str, list[int]]]:
    return [(s["position"], s["kind"], s["targets"]["user_ids"]) for s in policy["steps"]]


async def _schedule(world: World, name: str, participants: list[int], start_at: str) -> int:
    admin = world.auth(world.admin_key)
    reply = await world.client.post(
        f"{API}/schedules",
        headers=admin,
        json={"team_id": world.team_id, "name": name, "timezone": "America/New_York"},
    )
    assert reply.status_code == 201, reply.text
    schedule_id = int(reply.json()["id"])
    layer = await world.client.post(
        f"{API}/schedules/{schedule_id}/layers",
        headers=admin,
        json={"name": "Daily", "kind": "daily", "start_at": start_at, "participants": participants},
    )
    assert layer.status_code == 201, layer.text
    return schedule_id


# --- CRUD ------------------------------------------------------------------------------------


async def test_policy_crud_with_steps_is_audited_and_published(
    world: World, crew: Crew, events: RecordingBus
) -> None:
    admin = world.auth(crew.team_admin_key)
    a, b = crew.ids["ana"], crew.ids["ben"]
    created = await _create(
        world,
        {
            "name": "Payments primary",
            "description": "Page the owner, then the team",
            "repeat_count": 2,
            "reescalate_after_ack_minutes": 60,
            "steps": [
                _notify(a, delay=5),
                {
                    "kind": "time_window",
                    "delay_minutes": 10,
                    "config": {
                        "timezone": "America/New_York",
                        "weekdays": [4, 0, 1, 2, 3],
                        "start": "09:00",
                        "end": "17:00:30",
                    },
                },
                {"kind": "notify_team", "important": True, "targets": {"team_ids": [world.team_id]}},
                {"kind": "webhook", "config": {"url": "https://hooks.example.com/page"}},
            ],
        },
        key=crew.team_admin_key,
    )
    policy_id = created["id"]
    assert created["team_id"] == world.team_id and created["repeat_count"] == 2
    assert [s["position"] for s in created["steps"]] == [0, 1, 2, 3]
    window = created["steps"][1]
    # Stored in one normal form: sorted weekdays, "HH:MM" unless seconds matter, unused targets empty.
    assert window["config"] == {
        "timezone": "America/New_York",
        "weekdays": [0, 1, 2, 3, 4],
        "start": "09:00",
        "end": "17:00:30",
    }
    assert window["targets"] == {"user_ids": [], "schedule_ids": [], "team_ids": []}
    assert created["steps"][2]["important"] is True and created["steps"][3]["config"] == {
        "url": "https://hooks.example.com/page"
    }
    assert events.policy_changes() == [
        {"policy_id": policy_id, "team_id": world.team_id, "action": "created"}
    ]

    # Listed for every member of the team, filtered by team on request.
    listed = (await world.client.get(POLICIES, headers=world.auth(world.viewer_key))).json()
    assert [p["name"] for p in listed] == ["Payments primary"] and len(listed[0]["steps"]) == 4
    other = (await world.client.get(POLICIES, headers=admin, params={"team_id": world.other_team_id})).json()
    assert other == []

    # PATCH: fields; then `steps` replaces them all (an `id` keeps that row).
    patched = await world.client.patch(
        f"{POLICIES}/{policy_id}",
        headers=admin,
        json={"name": "Payments", "reescalate_after_ack_minutes": None},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Payments" and patched.json()["reescalate_after_ack_minutes"] is None
    kept = created["steps"][2]["id"]
    replaced = await world.client.patch(
        f"{POLICIES}/{policy_id}",
        headers=admin,
        json={
            "steps": [
                _notify(b),
                {"id": kept, "kind": "notify_team", "targets": {"team_ids": [world.team_id]}},
            ]
        },
    )
    assert replaced.status_code == 200, replaced.text
    steps = replaced.json()["steps"]
    assert [(s["position"], s["kind"]) for s in steps] == [(0, "notify_users"), (1, "notify_team")]
    assert steps[1]["id"] == kept and steps[1]["important"] is False
    assert _count(world, EscalationStep) == 2

    # An unchanged PATCH writes nothing and tells nobody.
    audit_rows = _count(world, AuditEntry)
    published = len(events.policy_changes())
    same = await world.client.patch(f"{POLICIES}/{policy_id}", headers=admin, json={"name": "Payments"})
    assert same.status_code == 200
    assert _count(world, AuditEntry) == audit_rows and len(events.policy_changes()) == published

    deleted = await world.client.delete(f"{POLICIES}/{policy_id}", headers=admin)
    assert deleted.status_code == 204
    assert (await world.client.get(f"{POLICIES}/{policy_id}", headers=admin)).status_code == 404
    assert _count(world, EscalationStep) == 0
    with Session(world.engine) as session:
        entries = session.exec(
            select(AuditEntry)
            .where(AuditEntry.entity_type == "escalation_policy")
            .order_by(col(AuditEntry.id))
        ).all()
    assert [e.action for e in entries] == [
        "escalation_policy.create",
        "escalation_policy.update",
        "escalation_policy.update",
        "escalation_policy.delete",
    ]
    assert all(e.actor_user_id == crew.ids["lead"] and e.team_id == world.team_id for e in entries)
    assert entries[0].before == {} and len(entries[0].after["steps"]) == 4
    assert entries[1].before["name"] == "Payments primary" and entries[1].after["name"] == "Payments"
    assert [s["kind"] for s in entries[2].after["steps"]] == ["notify_users", "notify_team"]
    assert entries[3].after == {} and entries[3].before["name"] == "Payments"
    assert [e["action"] for e in events.policy_changes()] == ["created", "updated", "updated", "deleted"]


async def test_steps_insert_update_delete_and_reorder_keep_positions_dense(
    world: World, crew: Crew, events: RecordingBus
) -> None:
    admin = world.auth(world.admin_key)
    a, b, c = crew.ids["ana"], crew.ids["ben"], crew.ids["chen"]
    policy = await _create(world, {"name": "Steps", "steps": [_notify(a), _notify(b)]})
    url = f"{POLICIES}/{policy['id']}/steps"

    first = await world.client.post(url, headers=admin, json={**_notify(c), "position": 0})
    assert first.status_code == 201, first.text
    assert first.json()["position"] == 0
    last = await world.client.post(url, headers=admin, json={"kind": "wait", "delay_minutes": 15})
    assert last.status_code == 201 and last.json()["position"] == 3
    middle = await world.client.post(
        url, headers=admin, json={"kind": "round_robin", "targets": {"user_ids": [a, b]}, "position": 2}
    )
    assert middle.status_code == 201
    assert _shape(await _get(world, policy["id"])) == [
        (0, "notify_users", [c]),
        (1, "notify_users", [a]),
        (2, "round_robin", [a, b]),
        (3, "notify_users", [b]),
        (4, "wait", []),
    ]

    # A new kind keeps the targets it reads: notify_users → round_robin keeps user_ids.
    step_a = (await _get(world, policy["id"]))["steps"][1]
    patched = await world.client.patch(f"{url}/{step_a['id']}", headers=admin, json={"kind": "round_robin"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["kind"] == "round_robin" and patched.json()["targets"]["user_ids"] == [a]
    # ...and notify_users → webhook drops them.
    step_b = (await _get(world, policy["id"]))["steps"][3]
    hook = await world.client.patch(
        f"{url}/{step_b['id']}",
        headers=admin,
        json={"kind": "webhook", "config": {"url": "http://pager.internal:8080/x"}, "delay_minutes": 3},
    )
    assert hook.status_code == 200, hook.text
    assert hook.json()["targets"]["user_ids"] == [] and hook.json()["delay_minutes"] == 3

    ids = [s["id"] for s in (await _get(world, policy["id"]))["steps"]]
    assert (await world.client.delete(f"{url}/{ids[2]}", headers=admin)).status_code == 204
    after_delete = await _get(world, policy["id"])
    assert [s["id"] for s in after_delete["steps"]] == [ids[0], ids[1], ids[3], ids[4]]
    assert [s["position"] for s in after_delete["steps"]] == [0, 1, 2, 3]

    order = [ids[4], ids[0], ids[3], ids[1]]
    reordered = await world.client.put(f"{url}/order", headers=admin, json={"step_ids": order})
    assert reordered.status_code == 200, reordered.text
    assert [s["id"] for s in reordered.json()["steps"]] == order
    assert [s["id"] for s in (await _get(world, policy["id"]))["steps"]] == order
    assert [s["position"] for s in (await _get(world, policy["id"]))["steps"]] == [0, 1, 2, 3]
    got = await world.client.get(f"{url}/{ids[3]}", headers=world.auth(world.viewer_key))
    assert got.status_code == 200 and got.json()["position"] == 2

    with Session(world.engine) as session:
        actions = [
            e.action
            for e in session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.entity_type).in_(["escalation_step", "escalation_policy"]))
                .order_by(col(AuditEntry.id))
            )
        ]
        reorder = session.exec(
            select(AuditEntry).where(AuditEntry.action == "escalation_policy.reorder")
        ).one()
    assert actions == [
        "escalation_policy.create",
        "escalation_step.create",
        "escalation_step.create",
        "escalation_step.create",
        "escalation_step.update",
        "escalation_step.update",
        "escalation_step.delete",
        "escalation_policy.reorder",
    ]
    assert reorder.before == {"step_ids": [ids[0], ids[1], ids[3], ids[4]]} and reorder.after == {
        "step_ids": order
    }
    assert len(events.policy_changes()) == len(actions)


# --- validation ------------------------------------------------------------------------------


def _window(**config: Any) -> dict[str, Any]:
    base = {"timezone": "America/New_York", "weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}
    return {"kind": "time_window", "config": {**base, **config}}


# (what is sent, the field named in the 422); `{...}` placeholders are filled in by the test.
CREATE_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("negative delay", {"steps": ["ANA", {**_notify(0), "delay_minutes": -5}]}, "steps[1].delay_minutes"),
    ("week-long delay", {"steps": [{"kind": "wait", "delay_minutes": 10081}]}, "steps[0].delay_minutes"),
    ("too many repeats", {"repeat_count": 11}, "repeat_count"),
    ("zero re-escalation", {"reescalate_after_ack_minutes": 0}, "reescalate_after_ack_minutes"),
    ("unknown kind", {"steps": [{"kind": "page_everyone"}]}, "steps[0].kind"),
    ("no targets", {"steps": [{"kind": "notify_users"}]}, "steps[0].targets.user_ids"),
    ("empty round robin", {"steps": ["ANA", {"kind": "round_robin"}]}, "steps[1].targets.user_ids"),
    ("unknown user", {"steps": [_notify(987654)]}, "steps[0].targets.user_ids[0]"),
    ("user twice", {"steps": ["ANA_TWICE"]}, "steps[0].targets.user_ids[1]"),
    ("disabled user", {"steps": ["DISABLED"]}, "steps[0].targets.user_ids[0]"),
    ("zero id", {"steps": [_notify(0)]}, "steps[0].targets.user_ids[0]"),
    ("other team's schedule", {"steps": ["FOREIGN_SCHEDULE"]}, "steps[0].targets.schedule_ids[0]"),
    (
        "unknown team",
        {"steps": [{"kind": "notify_team", "targets": {"team_ids": [424242]}}]},
        "steps[0].targets.team_ids[0]",
    ),
    ("unused targets", {"steps": ["ANA_WITH_TEAM"]}, "steps[0].targets.team_ids"),
    (
        "unused config",
        {"steps": [{"kind": "webhook", "config": {"url": "https://x.example", "timezone": "UTC"}}]},
        "steps[0].config.timezone",
    ),
    (
        "wait with targets",
        {"steps": [{"kind": "wait", "targets": {"user_ids": [1]}}]},
        "steps[0].targets.user_ids",
    ),
    ("bad timezone", {"steps": [_window(timezone="Mars/Olympus_Mons")]}, "steps[0].config.timezone"),
    ("no weekdays", {"steps": [_window(weekdays=[])]}, "steps[0].config.weekdays"),
    ("weekday 7", {"steps": [_window(weekdays=[1, 7])]}, "steps[0].config.weekdays"),
    ("bad start", {"steps": [_window(start="25:00")]}, "steps[0].config.start"),
    ("empty window", {"steps": [_window(end="09:00")]}, "steps[0].config.end"),
    ("missing window", {"steps": [{"kind": "time_window"}]}, "steps[0].config"),
    (
        "ftp webhook",
        {"steps": [{"kind": "webhook", "config": {"url": "ftp://files.example"}}]},
        "steps[0].config.url",
    ),
    ("webhook without url", {"steps": [{"kind": "webhook"}]}, "steps[0].config.url"),
    ("unknown step field", {"steps": [{"kind": "wait", "delay": 5}]}, "steps[0].delay"),
    ("huge id", {"steps": [_notify(2**63)]}, "steps[0].targets.user_ids[0]"),
    ("missing team", {"team_id": 999999}, "team_id"),
]


async def test_every_create_error_names_its_field_and_writes_nothing(world: World, crew: Crew) -> None:
    admin = world.auth(world.admin_key)
    a = crew.ids["ana"]
    with Session(world.engine, expire_on_commit=False) as session:
        foreign = Schedule(team_id=world.other_team_id, name="Theirs")
        disabled = users.create_user(session, email="gone@example.com", name="Gone")
        disabled.is_active = False
        session.add_all([foreign, disabled])
        session.commit()
    placeholders: dict[str, dict[str, Any]] = {
        "ANA": _notify(a),
        "ANA_TWICE": _notify(a, a),
        "DISABLED": _notify(disabled.id or 0),
        "FOREIGN_SCHEDULE": {"kind": "notify_schedule", "targets": {"schedule_ids": [foreign.id]}},
        "ANA_WITH_TEAM": {"kind": "notify_users", "targets": {"user_ids": [a], "team_ids": [world.team_id]}},
    }
    before = (_count(world, EscalationPolicy), _count(world, EscalationStep), _count(world, AuditEntry))
    for label, body, field in CREATE_ERRORS:
        sent = {"team_id": world.team_id, "name": f"Bad {label}", **body}
        sent["steps"] = [placeholders[s] if isinstance(s, str) else s for s in body.get("steps", [])]
        reply = await world.client.post(POLICIES, headers=admin, json=sent)
        assert reply.status_code == 422, (label, reply.text)
        assert reply.json()["error"]["field"] == field, (label, reply.json())
    after = (_count(world, EscalationPolicy), _count(world, EscalationStep), _count(world, AuditEntry))
    assert after == before


async def test_every_change_error_names_its_field_and_writes_nothing(world: World, crew: Crew) -> None:
    admin = world.auth(world.admin_key)
    a, b = crew.ids["ana"], crew.ids["ben"]
    policy = await _create(
        world,
        {
            "name": "Stable",
            "steps": [_notify(a), _window(), {"kind": "round_robin", "targets": {"user_ids": [a, b]}}],
        },
    )
    pid = policy["id"]
    s0, s1, s2 = (s["id"] for s in policy["steps"])
    await _create(world, {"name": "Taken"})
    stranger = (await _create(world, {"name": "Other", "steps": [_notify(b)]}))["steps"][0]["id"]
    cases: list[tuple[str, str, str, dict[str, Any], int, str]] = [
        ("rename to a taken name", "PATCH", f"{POLICIES}/{pid}", {"name": "Taken"}, 409, "name"),
        ("blank name", "PATCH", f"{POLICIES}/{pid}", {"name": "   "}, 422, "name"),
        ("negative repeats", "PATCH", f"{POLICIES}/{pid}", {"repeat_count": -1}, 422, "repeat_count"),
        ("moving teams", "PATCH", f"{POLICIES}/{pid}", {"team_id": world.other_team_id}, 422, "team_id"),
        (
            "replacement with a foreign step id",
            "PATCH",
            f"{POLICIES}/{pid}",
            {"steps": [{"id": stranger, **_notify(a)}]},
            422,
            "steps[0].id",
        ),
        (
            "replacement listing a step twice",
            "PATCH",
            f"{POLICIES}/{pid}",
            {"steps": [{"id": s0, **_notify(a)}, {"id": s0, **_notify(b)}]},
            422,
            "steps[1].id",
        ),
        (
            "replacement with a bad step",
            "PATCH",
            f"{POLICIES}/{pid}",
            {"steps": [_notify(a), {"kind": "round_robin", "targets": {"user_ids": []}}]},
            422,
            "steps[1].targets.user_ids",
        ),
        (
            "insert past the end",
            "POST",
            f"{POLICIES}/{pid}/steps",
            {**_notify(a), "position": 4},
            422,
            "position",
        ),
        (
            "insert before the start",
            "POST",
            f"{POLICIES}/{pid}/steps",
            {**_notify(a), "position": -1},
            422,
            "position",
        ),
        (
            "new step too slow",
            "POST",
            f"{POLICIES}/{pid}/steps",
            {**_notify(a), "delay_minutes": 99999},
            422,
            "delay_minutes",
        ),
        (
            "new step unknown user",
            "POST",
            f"{POLICIES}/{pid}/steps",
            _notify(a, 55555),
            422,
            "targets.user_ids[1]",
        ),
        (
            "window zone",
            "PATCH",
            f"{POLICIES}/{pid}/steps/{s1}",
            {"config": {"timezone": "Nowhere/Land"}},
            422,
            "config.timezone",
        ),
        ("window end", "PATCH", f"{POLICIES}/{pid}/steps/{s1}", _window(end="17:61"), 422, "config.end"),
        ("kind needs a url", "PATCH", f"{POLICIES}/{pid}/steps/{s0}", {"kind": "webhook"}, 422, "config.url"),
        ("unknown kind", "PATCH", f"{POLICIES}/{pid}/steps/{s0}", {"kind": "carrier_pigeon"}, 422, "kind"),
        (
            "round robin emptied",
            "PATCH",
            f"{POLICIES}/{pid}/steps/{s2}",
            {"targets": {"user_ids": []}},
            422,
            "targets.user_ids",
        ),
        (
            "order misses a step",
            "PUT",
            f"{POLICIES}/{pid}/steps/order",
            {"step_ids": [s2, s1]},
            422,
            "step_ids",
        ),
        (
            "order repeats a step",
            "PUT",
            f"{POLICIES}/{pid}/steps/order",
            {"step_ids": [s2, s1, s1]},
            422,
            "step_ids",
        ),
        (
            "order with a stranger",
            "PUT",
            f"{POLICIES}/{pid}/steps/order",
            {"step_ids": [s2, s1, stranger]},
            422,
            "step_ids",
        ),
        (
            "step of another policy",
            "PATCH",
            f"{POLICIES}/{pid}/steps/{stranger}",
            {"delay_minutes": 1},
            404,
            "step_id",
        ),
    ]
    snapshot = await _get(world, pid)
    before = (_count(world, EscalationPolicy), _count(world, EscalationStep), _count(world, AuditEntry))
    for label, method, url, body, status, field in cases:
        reply = await world.client.request(method, url, headers=admin, json=body)
        assert reply.status_code == status, (label, reply.text)
        assert reply.json()["error"]["field"] == field, (label, reply.json())
    assert await _get(world, pid) == snapshot
    after = (_count(world, EscalationPolicy), _count(world, EscalationStep), _count(world, AuditEntry))
    assert after == before


# --- permissions -----------------------------------------------------------------------------


async def test_permission_matrix(world: World, crew: Crew) -> None:
    a = crew.ids["ana"]
    policy = await _create(world, {"name": "Guarded", "steps": [_notify(a)]})
    pid, sid = policy["id"], policy["steps"][0]["id"]
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PATCH", f"{POLICIES}/{pid}", {"description": "mine"}),
        ("PATCH", f"{POLICIES}/{pid}/steps/{sid}", {"delay_minutes": 1}),
        ("PUT", f"{POLICIES}/{pid}/steps/order", {"step_ids": [sid]}),
        ("POST", f"{POLICIES}/{pid}/steps", _notify(a)),
        ("DELETE", f"{POLICIES}/{pid}/steps/{sid}", None),
        ("DELETE", f"{POLICIES}/{pid}", None),
    ]
    reads: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"{POLICIES}/{pid}", None),
        ("GET", f"{POLICIES}/{pid}/steps/{sid}", None),
        ("POST", f"{POLICIES}/{pid}/test", {"start_at": "2026-05-01T12:00:00Z"}),
    ]
    create = {"team_id": world.team_id, "name": "Sneaky"}
    for who, key, read_status, write_status in (
        ("viewer", world.viewer_key, 200, 403),
        ("responder", world.responder_key, 200, 403),
        ("read-only admin key", crew.read_only_key, 200, 403),
        ("outsider", world.outsider_key, 404, 404),
    ):
        for method, url, body in reads:
            reply = await world.client.request(method, url, headers=world.auth(key), json=body)
            assert reply.status_code == read_status, (who, method, url, reply.text)
        for method, url, body in writes:
            reply = await world.client.request(method, url, headers=world.auth(key), json=body)
            assert reply.status_code == write_status, (who, method, url, reply.text)
            if write_status == 404:
                assert reply.json()["error"]["message"] == f"escalation policy {pid} not found"
        reply = await world.client.post(POLICIES, headers=world.auth(key), json=create)
        assert reply.status_code == 403, (who, reply.text)
    listed = (await world.client.get(POLICIES, headers=world.auth(world.outsider_key))).json()
    assert listed == []
    scoped = await world.client.get(
        POLICIES, headers=world.auth(world.outsider_key), params={"team_id": world.team_id}
    )
    assert scoped.json() == []
    assert await _get(world, pid) == policy
    assert _count(world, EscalationPolicy) == 1
    # The team's own administrator (no global admin) may do all of it.
    for method, url, body in writes:
        reply = await world.client.request(method, url, headers=world.auth(crew.team_admin_key), json=body)
        assert reply.status_code in (200, 201, 204), (method, url, reply.text)
    assert _count(world, EscalationPolicy) == 0
    # A missing policy looks exactly like another team's.
    missing = await world.client.get(f"{POLICIES}/{pid}", headers=world.auth(world.admin_key))
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "policy_id"


# --- delete ----------------------------------------------------------------------------------


async def test_delete_of_a_policy_in_use_needs_force(world: World, crew: Crew, events: RecordingBus) -> None:
    admin = world.auth(world.admin_key)
    policy = await _create(world, {"name": "Used", "steps": [_notify(crew.ids["ana"])]})
    pid = policy["id"]
    with Session(world.engine, expire_on_commit=False) as session:
        prom = session.get(Integration, world.integration_id)
        assert prom is not None
        prom.default_escalation_policy_id = pid
        session.add(prom)
        pd = session.exec(select(Integration).where(Integration.name == "pd")).one()
        integrations.replace_routes(
            session,
            integration=pd,
            routes=[
                {
                    "matchers": [{"label": "severity", "op": "=", "value": "critical"}],
                    "escalation_policy_id": pid,
                }
            ],
        )
        session.commit()
        pd_id = pd.id
    refused = await world.client.delete(f"{POLICIES}/{pid}", headers=admin)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["field"] == "policy_id"
    assert f"integration {world.integration_id} 'prom' (default policy)" in error["message"]
    assert f"route 0 of integration {pd_id} 'pd'" in error["message"]
    assert _count(world, EscalationPolicy) == 1 and len(events.policy_changes()) == 1

    forced = await world.client.delete(f"{POLICIES}/{pid}", headers=admin, params={"force": "true"})
    assert forced.status_code == 204, forced.text
    with Session(world.engine) as session:
        prom_after = session.get(Integration, world.integration_id)
        route = session.exec(select(IntegrationRoute).where(IntegrationRoute.integration_id == pd_id)).one()
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "escalation_policy.delete")).one()
    assert prom_after is not None and prom_after.default_escalation_policy_id is None
    assert route.escalation_policy_id is None
    assert entry.before["used_by"]["integration_ids"] == [world.integration_id]
    assert len(entry.before["used_by"]["route_ids"]) == 1
    assert _count(world, EscalationStep) == 0


# --- dry run ---------------------------------------------------------------------------------


async def test_dry_run_follows_the_schedule_at_each_instant_and_warns_about_gaps(
    world: World, crew: Crew
) -> None:
    a, b = crew.ids["ana"], crew.ids["ben"]
    # Daily hand-off at 09:00 New York from Saturday 2026-03-07 (EST); Sunday 03-08 clocks spring forward.
    schedule_id = await _schedule(world, "Primary", [a, b], "2026-03-07T09:00:00-05:00")
    policy = await _create(
        world,
        {
            "name": "Follow the sun",
            "repeat_count": 1,
            "steps": [
                {
                    "kind": "notify_schedule",
                    "delay_minutes": 1440,
                    "targets": {"schedule_ids": [schedule_id]},
                },
                {"kind": "webhook", "config": {"url": "https://hooks.example.com/x"}},
            ],
        },
    )
    counts = (_count(world, AuditEntry), _count(world, EscalationStep))
    url = f"{POLICIES}/{policy['id']}/test"
    # 08:00 EST: an hour before the rotation starts; a day later it is 09:00 EDT, Ben's hand-off instant.
    reply = await world.client.post(
        url, headers=world.auth(world.viewer_key), json={"start_at": "2026-03-07T13:00:00Z"}
    )
    assert reply.status_code == 200, reply.text
    run = reply.json()
    got = [
        (
            i["offset_seconds"],
            _at(i["at"]),
            i["step_index"],
            i["cycle"],
            i["action"],
            [t["user_id"] for t in i["targets"]],
        )
        for i in run["items"]
    ]
    assert got == [
        (0, _at("2026-03-07T13:00:00Z"), 0, 0, "notify_schedule", []),
        (86400, _at("2026-03-08T13:00:00Z"), 1, 0, "webhook", []),
        (86400, _at("2026-03-08T13:00:00Z"), 0, 1, "notify_schedule", [b]),
        (172800, _at("2026-03-09T13:00:00Z"), 1, 1, "webhook", []),
    ]
    assert run["items"][2]["targets"] == [{"user_id": b, "name": "Ben", "email": "ben@example.com"}]
    assert run["items"][1]["webhook_url"] == "https://hooks.example.com/x"
    codes = [(w["code"], w["step_index"], w["cycle"]) for w in run["warnings"]]
    assert codes == [("gap", 0, 0), ("nobody", 0, 0)]
    assert "'Primary' has nobody on call" in run["warnings"][0]["message"]
    # 10:00 EST: Ana holds Saturday; Sunday 10:00 EDT is Ben's.
    later = (
        await world.client.post(
            url, headers=world.auth(world.viewer_key), json={"start_at": "2026-03-07T15:00:00Z"}
        )
    ).json()
    assert [
        [t["name"] for t in i["targets"]] for i in later["items"] if i["action"] == "notify_schedule"
    ] == [
        ["Ana"],
        ["Ben"],
    ]
    assert later["warnings"] == []
    # Acknowledged at once and never re-escalated: only the first page.
    acked = (
        await world.client.post(
            url,
            headers=world.auth(world.viewer_key),
            json={"start_at": "2026-03-07T15:00:00Z", "assume_unacknowledged": False},
        )
    ).json()
    assert [i["action"] for i in acked["items"]] == ["notify_schedule"]
    # Nothing was written, and without a body it runs from now.
    assert (_count(world, AuditEntry), _count(world, EscalationStep)) == counts
    now = await world.client.post(url, headers=world.auth(world.viewer_key))
    assert now.status_code == 200 and now.json()["items"][0]["offset_seconds"] == 0


async def test_dry_run_skips_a_time_window_by_the_new_york_clock_across_dst(world: World, crew: Crew) -> None:
    a = crew.ids["ana"]
    # Sundays 01:00-04:00 New York. On 2026-03-08 the clock jumps 02:00 → 03:00, so that occurrence
    # lasts two hours: 06:00Z (01:00 EST) to 08:00Z (04:00 EDT), not three.
    policy = await _create(
        world,
        {
            "name": "Night shift",
            "steps": [
                {
                    "kind": "time_window",
                    "delay_minutes": 30,
                    "config": {
                        "timezone": "America/New_York",
                        "weekdays": [6],
                        "start": "01:00",
                        "end": "04:00",
                    },
                },
                _notify(a),
            ],
        },
    )
    url = f"{POLICIES}/{policy['id']}/test"
    viewer = world.auth(world.viewer_key)
    inside = (await world.client.post(url, headers=viewer, json={"start_at": "2026-03-08T07:30:00Z"})).json()
    assert [(i["offset_seconds"], i["action"], _at(i["at"])) for i in inside["items"]] == [
        (1800, "notify_users", _at("2026-03-08T08:00:00Z"))
    ]
    outside = (await world.client.post(url, headers=viewer, json={"start_at": "2026-03-08T08:15:00Z"})).json()
    assert [(i["offset_seconds"], i["kind"], i["action"]) for i in outside["items"]] == [
        (0, "time_window", "skipped"),
        (0, "notify_users", "notify_users"),
    ]
    assert outside["items"][0]["reason"] == "outside the time window Sun 01:00-04:00 America/New_York"
    assert outside["items"][0]["targets"] == [] and outside["warnings"] == []
    # A week earlier (no DST change) 08:15Z is 03:15 EST: inside.
    week_before = (
        await world.client.post(url, headers=viewer, json={"start_at": "2026-03-01T08:15:00Z"})
    ).json()
    assert [i["action"] for i in week_before["items"]] == ["notify_users"]


async def test_dry_run_round_robin_starts_at_the_live_cursor(world: World, crew: Crew) -> None:
    a, b, c = crew.ids["ana"], crew.ids["ben"], crew.ids["chen"]
    policy = await _create(
        world,
        {
            "name": "Take turns",
            "repeat_count": 3,
            "steps": [{"kind": "round_robin", "delay_minutes": 10, "targets": {"user_ids": [a, b, c]}}],
        },
    )
    with Session(world.engine) as session:
        step = session.get(EscalationStep, policy["steps"][0]["id"])
        assert step is not None
        step.round_robin_cursor = 1
        session.add(step)
        session.commit()
    reply = await world.client.post(
        f"{POLICIES}/{policy['id']}/test",
        headers=world.auth(world.responder_key),
        json={"start_at": "2026-06-01T00:00:00+02:00"},
    )
    run = reply.json()
    assert [
        (i["offset_seconds"], i["cycle"], [t["user_id"] for t in i["targets"]]) for i in run["items"]
    ] == [
        (0, 0, [b]),
        (600, 1, [c]),
        (1200, 2, [a]),
        (1800, 3, [b]),
    ]
    assert _at(run["start_at"]) == _at("2026-05-31T22:00:00Z")
    # The dry run did not move the live cursor.
    with Session(world.engine) as session:
        cursor = session.exec(select(EscalationStep.round_robin_cursor)).one()
    assert cursor == 1


async def test_dry_run_warns_about_a_policy_that_pages_nobody(world: World, crew: Crew) -> None:
    with Session(world.engine, expire_on_commit=False) as session:
        empty_team = teams.create_team(session, name="Ghosts")
        session.commit()
    policy = await _create(
        world,
        {
            "name": "Hooks only",
            "steps": [
                {"kind": "wait", "delay_minutes": 5},
                {"kind": "webhook", "config": {"url": "https://hooks.example.com/y"}},
                {"kind": "resolve"},
            ],
        },
    )
    run = (
        await world.client.post(
            f"{POLICIES}/{policy['id']}/test", headers=world.auth(world.viewer_key), json={}
        )
    ).json()
    assert [(i["offset_seconds"], i["action"]) for i in run["items"]] == [(300, "webhook"), (300, "resolve")]
    assert [w["code"] for w in run["warnings"]] == ["no_notify_step"]
    team_policy = await _create(
        world,
        {
            "name": "Ghost team",
            "steps": [{"kind": "notify_team", "targets": {"team_ids": [empty_team.id, world.team_id]}}],
        },
    )
    with Session(world.engine) as session:
        chen = session.get(User, crew.ids["chen"])
        assert chen is not None
        chen.is_active = False
        session.add(chen)
        session.commit()
    run = (
        await world.client.post(
            f"{POLICIES}/{team_policy['id']}/test",
            headers=world.auth(world.viewer_key),
            json={"start_at": "2026-01-01T00:00:00Z"},
        )
    ).json()
    names = [t["name"] for t in run["items"][0]["targets"]]
    # Active members who are not viewers, by user id (as the live escalation pages them); Chen is disabled.
    assert names == ["Admin", "Responder", "Ana", "Ben", "Lead"]
    assert run["warnings"] == []
