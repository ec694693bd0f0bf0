"""The escalation policy service: dense step positions, validation before any write, deletes, dry runs."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, func, select

from sentinel_app.domain.escalation_policy import PolicySnapshot
from sentinel_app.models import (
    Alert,
    AuditEntry,
    EscalationPolicy,
    EscalationStep,
    Role,
    User,
)
from sentinel_app.services import escalation_policies as service
from sentinel_app.services import integrations, teams, users
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import Conflict, ValidationFailed
from tests import factories

UTC = dt.UTC


@dataclass
class Setup:
    """A team with three members, and who acts."""

    team_id: int
    ids: dict[str, int]
    actor: Actor


@pytest.fixture
def setup(db: Session) -> Setup:
    team = teams.create_team(db, name="Core")
    assert team.id is not None
    ids: dict[str, int] = {}
    for name in ("ana", "ben", "chen"):
        person = users.create_user(db, email=f"{name}@example.com", name=name.title())
        assert person.id is not None
        teams.set_membership(db, team_id=team.id, user_id=person.id, role=Role.RESPONDER)
        ids[name] = person.id
    db.commit()
    return Setup(team_id=team.id, ids=ids, actor=Actor(user_id=ids["ana"], label="Ana"))


def _notify(*user_ids: int, delay: int = 0) -> dict[str, Any]:
    return {"kind": "notify_users", "delay_minutes": delay, "targets": {"user_ids": list(user_ids)}}


def _rows(db: Session, policy_id: int) -> list[tuple[int, int]]:
    """(position, id) of the policy's steps as stored."""
    db.expire_all()
    rows = db.exec(
        select(EscalationStep)
        .where(EscalationStep.policy_id == policy_id)
        .order_by(col(EscalationStep.position))
    ).all()
    return [(r.position, r.id or 0) for r in rows]


def _ids(db: Session, policy_id: int) -> list[int]:
    found = _rows(db, policy_id)
    assert [p for p, _ in found] == list(range(len(found))), found
    return [i for _, i in found]


def _count(db: Session, model: Any) -> int:
    return int(db.exec(select(func.count()).select_from(model)).one())


def test_positions_stay_dense_through_inserts_moves_deletes_and_replacements(
    db: Session, setup: Setup
) -> None:
    a, b, c = setup.ids["ana"], setup.ids["ben"], setup.ids["chen"]
    policy, rows = service.create_policy(
        db,
        team_id=setup.team_id,
        name="Dense",
        steps=[_notify(a), _notify(b), _notify(c), {"kind": "wait", "delay_minutes": 5}],
        actor=setup.actor,
    )
    db.commit()
    pid = policy.id or 0
    s = [r.id or 0 for r in rows]
    assert _ids(db, pid) == s
    # Reversal: every row moves, each into a place another row holds.
    service.reorder_steps(db, policy=policy, step_ids=list(reversed(s)), actor=setup.actor)
    db.commit()
    assert _ids(db, pid) == list(reversed(s))
    # A rotation by one.
    rotated = [s[1], s[2], s[3], s[0]]
    service.reorder_steps(db, policy=policy, step_ids=rotated, actor=setup.actor)
    db.commit()
    assert _ids(db, pid) == rotated
    new = service.add_step(db, policy=policy, fields=_notify(a, b), position=1, actor=setup.actor)
    db.commit()
    assert _ids(db, pid) == [s[1], new.id, s[2], s[3], s[0]]
    service.delete_step(
        db, policy=policy, step=service.get_step(db, policy=policy, step_id=s[2]), actor=setup.actor
    )
    db.commit()
    assert _ids(db, pid) == [s[1], new.id, s[3], s[0]]
    # A replacement keeps listed rows (moved), drops the others and inserts new ones between them.
    cursor_row = service.get_step(db, policy=policy, step_id=s[0])
    cursor_row.round_robin_cursor = 7
    db.add(cursor_row)
    db.commit()
    _, replaced = service.update_policy(
        db,
        policy=policy,
        changes={
            "steps": [
                _notify(c),
                {"id": s[0], "kind": "round_robin", "targets": {"user_ids": [a, b, c]}},
                {"id": s[1], **_notify(b, delay=3)},
                {"kind": "wait", "delay_minutes": 1},
            ]
        },
        actor=setup.actor,
    )
    db.commit()
    got = _ids(db, pid)
    assert got[1:3] == [s[0], s[1]] and len(got) == 4
    assert _count(db, EscalationStep) == 4
    fresh = [service.get_step(db, policy=policy, step_id=got[i]) for i in (0, 3)]
    assert [(r.kind, r.targets["user_ids"], r.delay_minutes) for r in fresh] == [
        ("notify_users", [c], 0),
        ("wait", [], 1),
    ]
    kept = service.get_step(db, policy=policy, step_id=s[0])
    assert kept.kind == "round_robin" and kept.round_robin_cursor == 7
    assert [r.id for r in replaced] == got
    # The stored policy still makes a valid snapshot with the step ids the live cursors need.
    snapshot = service.load_snapshots(db, policy_ids=[pid])[pid]
    assert isinstance(snapshot, PolicySnapshot)
    assert [st.step_id for st in snapshot.steps] == got
    assert snapshot.steps[1].user_ids == (a, b, c) and snapshot.steps[2].delay_minutes == 3


def test_step_changes_merge_targets_and_config_and_follow_a_new_kind(db: Session, setup: Setup) -> None:
    a, b = setup.ids["ana"], setup.ids["ben"]
    window = {"timezone": "Europe/Berlin", "weekdays": [5, 6], "start": "22:00", "end": "06:00"}
    policy, (users_step, window_step) = service.create_policy(
        db,
        team_id=setup.team_id,
        name="Merge",
        steps=[_notify(a), {"kind": "time_window", "config": window}],
        actor=setup.actor,
    )
    db.commit()
    changed = service.update_step(
        db, policy=policy, step=window_step, changes={"config": {"end": "07:30"}}, actor=setup.actor
    )
    assert changed.config == {**window, "end": "07:30"}
    rr = service.update_step(
        db, policy=policy, step=users_step, changes={"kind": "round_robin"}, actor=setup.actor
    )
    assert rr.targets["user_ids"] == [a]
    rr = service.update_step(
        db, policy=policy, step=users_step, changes={"targets": {"user_ids": [b, a]}}, actor=setup.actor
    )
    assert rr.targets == {"user_ids": [b, a], "schedule_ids": [], "team_ids": []}
    hook = service.update_step(
        db,
        policy=policy,
        step=users_step,
        changes={"kind": "webhook", "config": {"url": "https://example.com/hook"}},
        actor=setup.actor,
    )
    assert hook.targets["user_ids"] == [] and hook.config == {"url": "https://example.com/hook"}
    db.commit()
    entries = db.exec(
        select(AuditEntry).where(AuditEntry.entity_type == "escalation_step").order_by(col(AuditEntry.id))
    ).all()
    assert [e.action for e in entries] == ["escalation_step.update"] * 4
    assert entries[0].before["config"]["end"] == "06:00" and entries[0].after["config"]["end"] == "07:30"
    assert entries[3].before["kind"] == "round_robin" and entries[3].after["kind"] == "webhook"
    assert all(e.actor_user_id == setup.ids["ana"] for e in entries)


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ("not a list", "steps"),
        (["not an object"], "steps[0]"),
        ([{"delay_minutes": 5}], "steps[0].kind"),
        ([{"kind": "wait", "delay_minutes": "5"}], "steps[0].delay_minutes"),
        ([{"kind": "wait", "important": "yes"}], "steps[0].important"),
        ([{"kind": "wait", "priority": 1}], "steps[0].priority"),
        ([{"kind": "notify_users", "targets": [1]}], "steps[0].targets"),
        ([{"kind": "notify_users", "targets": {"users": [1]}}], "steps[0].targets.users"),
        ([{"kind": "notify_users", "targets": {"user_ids": "1"}}], "steps[0].targets.user_ids"),
        ([{"kind": "notify_users", "targets": {"user_ids": ["1"]}}], "steps[0].targets.user_ids[0]"),
        ([{"kind": "webhook", "config": {"url": 5}}], "steps[0].config.url"),
        ([{"kind": "webhook", "config": {"url": "https://a b.example"}}], "steps[0].config.url"),
        ([{"kind": "time_window", "config": {"timezone": "UTC", "weekdays": 1}}], "steps[0].config.weekdays"),
        (
            [
                {
                    "kind": "time_window",
                    "config": {"timezone": "UTC", "weekdays": [1], "start": "09:00+02:00", "end": "10:00"},
                }
            ],
            "steps[0].config.start",
        ),
        ([{"kind": "wait"}] * 51, "steps"),
    ],
)
def test_malformed_input_from_any_caller_names_its_field_and_writes_nothing(
    db: Session, setup: Setup, steps: Any, field: str
) -> None:
    before = (_count(db, EscalationPolicy), _count(db, EscalationStep), _count(db, AuditEntry))
    with pytest.raises(ValidationFailed) as caught:
        service.create_policy(db, team_id=setup.team_id, name="Bad", steps=steps, actor=setup.actor)
    assert caught.value.field == field
    assert not db.new and not db.dirty and not db.deleted
    db.commit()
    assert (_count(db, EscalationPolicy), _count(db, EscalationStep), _count(db, AuditEntry)) == before


def test_duplicate_names_conflict_within_a_team_only(db: Session, setup: Setup) -> None:
    service.create_policy(db, team_id=setup.team_id, name="Default", actor=setup.actor)
    db.commit()
    with pytest.raises(Conflict) as caught:
        service.create_policy(db, team_id=setup.team_id, name=" Default ", actor=setup.actor)
    assert caught.value.field == "name"
    db.rollback()
    other = teams.create_team(db, name="Elsewhere")
    assert other.id is not None
    policy, _ = service.create_policy(db, team_id=other.id, name="Default", actor=setup.actor)
    assert policy.name == "Default"


def test_delete_refuses_while_in_use_then_force_clears_every_reference(db: Session, setup: Setup) -> None:
    policy, _ = service.create_policy(
        db, team_id=setup.team_id, name="Shared", steps=[_notify(setup.ids["ana"])], actor=setup.actor
    )
    db.commit()
    pid = policy.id
    integ = factories.integration(db, setup.team_id, name="grafana", default_escalation_policy_id=pid)
    integrations.replace_routes(db, integration=integ, routes=[{"matchers": [], "escalation_policy_id": pid}])
    alert = factories.alert(db, setup.team_id, escalation_policy_id=pid)
    db.commit()
    usage = service.policy_usage(db, policy_id=pid or 0)
    assert [i.id for i in usage.integrations] == [integ.id] and len(usage.routes) == 1
    with pytest.raises(Conflict) as caught:
        service.delete_policy(db, policy=policy, actor=setup.actor)
    assert caught.value.field == "policy_id" and "'grafana'" in caught.value.message
    db.rollback()
    service.delete_policy(db, policy=policy, force=True, actor=setup.actor)
    db.commit()
    db.expire_all()
    assert db.get(EscalationPolicy, pid) is None and _count(db, EscalationStep) == 0
    refreshed = db.get(type(integ), integ.id)
    assert refreshed is not None and refreshed.default_escalation_policy_id is None
    assert integrations.routes_of(db, integration_id=integ.id or 0)[0].escalation_policy_id is None
    stored_alert = db.get(Alert, alert.id)
    assert stored_alert is not None and stored_alert.escalation_policy_id is None


def test_dry_run_warns_about_disabled_users_and_stops_at_the_item_limit(db: Session, setup: Setup) -> None:
    a, b = setup.ids["ana"], setup.ids["ben"]
    policy, _ = service.create_policy(
        db,
        team_id=setup.team_id,
        name="Ack loop",
        reescalate_after_ack_minutes=30,
        steps=[_notify(a, b, delay=5)],
        actor=setup.actor,
    )
    ben = db.get(User, b)
    assert ben is not None
    ben.is_active = False
    db.add(ben)
    db.commit()
    start = dt.datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    # Acknowledged after every page, re-escalated 30 minutes later: it never ends by itself.
    run = service.dry_run(db, policy=policy, start_at=start, assume_unacknowledged=False, max_items=5)
    assert [i.at - start for i in run.items] == [dt.timedelta(minutes=30 * k) for k in range(5)]
    assert all([p.user_id for p in i.targets] == [a] for i in run.items)
    assert [w.code for w in run.warnings] == ["inactive_user", "truncated"]
    assert run.warnings[0].step_index == 0 and f"user {b}" in run.warnings[0].message
    with pytest.raises(ValidationFailed) as caught:
        service.dry_run(db, policy=policy, start_at=dt.datetime(2026, 3, 8, 6, 0))
    assert caught.value.field == "start_at"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


def _replaced(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(document))
    target: Any = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_input_is_either_stored_valid_or_refused_with_a_field(
    db: Session, setup: Setup, data: st.DataObject
) -> None:
    a = setup.ids["ana"]
    document: dict[str, Any] = {
        "repeat_count": 1,
        "reescalate_after_ack_minutes": 30,
        "steps": [
            _notify(a, delay=5),
            {
                "kind": "time_window",
                "config": {"timezone": "UTC", "weekdays": [0], "start": "09:00", "end": "17:00"},
            },
            {"kind": "webhook", "important": True, "config": {"url": "https://example.com/x"}},
            {"kind": "round_robin", "targets": {"user_ids": [a]}},
            {"kind": "notify_team", "targets": {"team_ids": [setup.team_id]}},
        ],
    }
    path = data.draw(st.sampled_from([p for p in _paths(document) if p]))
    mutated = _replaced(document, path, data.draw(_json))
    try:
        policy, _ = service.create_policy(
            db,
            team_id=setup.team_id,
            name="Fuzz",
            repeat_count=mutated["repeat_count"],
            reescalate_after_ack_minutes=mutated["reescalate_after_ack_minutes"],
            steps=mutated["steps"],
            actor=setup.actor,
        )
    except ValidationFailed as error:
        assert error.field, error
        assert not db.new and not db.dirty and not db.deleted
    else:
        # What was accepted is stored in a form the escalation engine can snapshot.
        pid = policy.id or 0
        assert service.load_snapshots(db, policy_ids=[pid])[pid].policy_id == pid
    finally:
        db.rollback()
