"""A person's notification settings over REST: profile, contact methods, verification, rules, devices."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, col, select

from sentinel_app.models import AuditEntry, ContactMethod, Notification
from sentinel_app.services import devices
from tests.api.conftest import World

pytestmark = pytest.mark.asyncio

APNS = "0123456789abcdef" * 4
FCM = "fcm-token:" + "A1b2_-" * 30


@pytest.fixture(autouse=True)
def _secret_key(settings_env: pytest.MonkeyPatch) -> Iterator[None]:
    settings_env.setenv("SENTINEL_SECRET_KEY", "people-api-test-secret-key-0123456789abcdef")
    yield


async def _user_id(world: World, key: str) -> int:
    reply = await world.client.get("/api/v1/users/me", headers=world.auth(key))
    assert reply.status_code == 200, reply.text
    return int(reply.json()["id"])


def _base(user_id: int) -> str:
    return f"/api/v1/users/{user_id}/contact-methods"


async def _create(world: World, key: str, user_id: int, kind: str, value: str) -> dict[str, Any]:
    reply = await world.client.post(
        _base(user_id), headers=world.auth(key), json={"kind": kind, "value": value}
    )
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def _latest_code(world: World, method_id: int) -> tuple[Notification, str]:
    with Session(world.engine) as session:
        row = session.exec(
            select(Notification)
            .where(Notification.contact_method_id == method_id, Notification.purpose == "verification")
            .order_by(col(Notification.id).desc())
        ).first()
    assert row is not None
    match = re.search(r"verification code is (\d{6})\b", row.payload["body"])
    assert match, row.payload
    return row, match.group(1)


def _audit(world: World, entity_type: str) -> list[AuditEntry]:
    with Session(world.engine) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.entity_type == entity_type)).all())


# --- contact methods -------------------------------------------------------------------------


async def test_contact_method_crud_is_audited(world: World) -> None:
    hdr = world.auth(world.responder_key)
    me = world.responder_id
    created = await _create(world, world.responder_key, me, "sms", "+1 (415) 555-0123")
    assert created["value"] == "+14155550123" and created["user_id"] == me
    assert (created["needs_verification"], created["verified"], created["usable"]) == (True, False, False)
    slack = await _create(world, world.responder_key, me, "slack", "U024BE7LH")
    assert slack["usable"] is True and slack["needs_verification"] is False
    listed = (await world.client.get(_base(me), headers=hdr)).json()
    assert [m["id"] for m in listed] == [slack["id"], created["id"]]  # by kind, then id
    url = f"{_base(me)}/{created['id']}"
    patched = await world.client.patch(url, headers=hdr, json={"label": "Work phone", "enabled": False})
    assert patched.status_code == 200 and patched.json()["label"] == "Work phone"
    assert patched.json()["enabled"] is False
    assert (await world.client.get(url, headers=hdr)).json()["label"] == "Work phone"
    dup = await world.client.post(_base(me), headers=hdr, json={"kind": "slack", "value": "u024be7lh"})
    assert dup.status_code == 409 and dup.json()["error"]["field"] == "value"
    assert (await world.client.delete(url, headers=hdr)).status_code == 204
    assert (await world.client.get(url, headers=hdr)).status_code == 404
    actions = {e.action for e in _audit(world, "contact_method")}
    assert {"contact_method.create", "contact_method.update", "contact_method.delete"} <= actions


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "sms", "value": "555-0123"}, "value"),
        ({"kind": "voice", "value": "+12"}, "value"),
        ({"kind": "email", "value": "nobody"}, "value"),
        ({"kind": "slack", "value": "#general"}, "value"),
        ({"kind": "webhook", "value": "javascript:alert(1)"}, "value"),
        ({"kind": "webhook", "value": "http://127.0.0.1:8080/"}, "value"),
        ({"kind": "pigeon", "value": "x"}, "kind"),
        ({"kind": "sms"}, "value"),
        ({"kind": "sms", "value": "+14155550123", "label": "x" * 101}, "label"),
        ({"kind": "sms", "value": "+14155550123", "colour": "red"}, "colour"),
    ],
)
async def test_contact_method_validation_names_the_field(
    world: World, body: dict[str, Any], field: str
) -> None:
    reply = await world.client.post(
        _base(world.responder_id), headers=world.auth(world.responder_key), json=body
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == field


async def test_people_manage_only_their_own_settings_unless_admin(world: World) -> None:
    viewer_id = await _user_id(world, world.viewer_key)
    admin_id = await _user_id(world, world.admin_key)
    # A viewer manages their own settings.
    own = await _create(world, world.viewer_key, viewer_id, "email", "viewer@example.com")
    rules = {"default": [{"method": "push"}], "important": []}
    put = await world.client.put(
        f"/api/v1/users/{viewer_id}/notification-rules", headers=world.auth(world.viewer_key), json=rules
    )
    assert put.status_code == 200, put.text
    # Nobody else but an installation administrator does.
    targets = [
        ("GET", _base(viewer_id), None),
        ("POST", _base(viewer_id), {"kind": "slack", "value": "U0123ABCD"}),
        ("PATCH", f"{_base(viewer_id)}/{own['id']}", {"label": "x"}),
        ("DELETE", f"{_base(viewer_id)}/{own['id']}", None),
        ("POST", f"{_base(viewer_id)}/{own['id']}/send-verification", None),
        ("POST", f"{_base(viewer_id)}/{own['id']}/verify", {"code": "123456"}),
        ("GET", f"/api/v1/users/{viewer_id}/notification-rules", None),
        ("PUT", f"/api/v1/users/{viewer_id}/notification-rules", rules),
    ]
    for key in (world.responder_key, world.outsider_key):
        for method, url, body in targets:
            reply = await world.client.request(method, url, headers=world.auth(key), json=body)
            assert reply.status_code == 403, (method, url, reply.text)
            assert reply.json()["error"]["field"] == "user_id"
    admin = world.auth(world.admin_key)
    assert (await world.client.get(_base(viewer_id), headers=admin)).json()[0]["id"] == own["id"]
    by_admin = await world.client.post(
        _base(viewer_id), headers=admin, json={"kind": "slack", "value": "U0123ABCD"}
    )
    assert by_admin.status_code == 201 and by_admin.json()["user_id"] == viewer_id
    entry = next(e for e in _audit(world, "contact_method") if e.entity_id == str(by_admin.json()["id"]))
    assert entry.actor_user_id == admin_id
    assert (await world.client.get(_base(10**9), headers=admin)).status_code == 404
    # Someone else's method id under your own user is simply not found.
    mine = await world.client.get(
        f"{_base(world.responder_id)}/{own['id']}", headers=world.auth(world.responder_key)
    )
    assert mine.status_code == 404 and mine.json()["error"]["field"] == "contact_method_id"


# --- verification ----------------------------------------------------------------------------


async def test_verification_end_to_end(world: World) -> None:
    hdr = world.auth(world.responder_key)
    method = await _create(world, world.responder_key, world.responder_id, "sms", "+14155550123")
    url = f"{_base(world.responder_id)}/{method['id']}"
    sent = await world.client.post(f"{url}/send-verification", headers=hdr)
    assert sent.status_code == 202, sent.text
    assert sent.json()["channel"] == "sms" and sent.json()["target"] == "+14155550123"
    row, code = _latest_code(world, method["id"])
    assert code not in sent.text
    assert (row.purpose, row.channel, row.status, row.user_id) == (
        "verification",
        "sms",
        "pending",
        world.responder_id,
    )
    assert row.target == "+14155550123" and row.idempotency_key == f"verify:{method['id']}:1"
    assert row.payload["body"].startswith(f"Your Fangorn Sentinel verification code is {code}")
    shown = (await world.client.get(url, headers=hdr)).json()
    assert shown["verification_pending"] is True and shown["verification_expires_at"] is not None
    wrong = "000000" if code != "000000" else "999999"
    bad = await world.client.post(f"{url}/verify", headers=hdr, json={"code": wrong})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "code"
    good = await world.client.post(f"{url}/verify", headers=hdr, json={"code": code})
    assert good.status_code == 200, good.text
    assert (good.json()["verified"], good.json()["usable"], good.json()["verification_pending"]) == (
        True,
        True,
        False,
    )
    with Session(world.engine) as session:
        stored = session.get(ContactMethod, method["id"])
        assert stored is not None and stored.verification_code_hash is None and stored.verified_at is not None
    again = await world.client.post(f"{url}/send-verification", headers=hdr)
    assert again.status_code == 409
    # A new number must be verified again.
    changed = await world.client.patch(url, headers=hdr, json={"value": "+14155550199"})
    assert changed.json()["verified"] is False and changed.json()["usable"] is False
    # Codes never reach the audit log, nor do their hashes.
    for entry in _audit(world, "contact_method"):
        text = str(entry.before) + str(entry.after)
        assert code not in text and "verification_code_hash" not in text


async def test_wrong_guesses_burn_the_code(world: World) -> None:
    hdr = world.auth(world.responder_key)
    method = await _create(world, world.responder_key, world.responder_id, "email", "me@example.org")
    url = f"{_base(world.responder_id)}/{method['id']}"
    assert (await world.client.post(f"{url}/send-verification", headers=hdr)).status_code == 202
    row, code = _latest_code(world, method["id"])
    assert row.channel == "email"
    wrong = "000000" if code != "000000" else "999999"
    messages = []
    for _ in range(5):
        reply = await world.client.post(f"{url}/verify", headers=hdr, json={"code": wrong})
        assert reply.status_code == 422 and reply.json()["error"]["field"] == "code"
        messages.append(reply.json()["error"]["message"])
    assert "4 attempts left" in messages[0] and "no longer works" in messages[-1]
    late = await world.client.post(f"{url}/verify", headers=hdr, json={"code": code})
    assert late.status_code == 422 and "no verification code is pending" in late.json()["error"]["message"]
    # A fresh code works.
    assert (await world.client.post(f"{url}/send-verification", headers=hdr)).status_code == 202
    _, fresh = _latest_code(world, method["id"])
    assert (await world.client.post(f"{url}/verify", headers=hdr, json={"code": fresh})).json()[
        "verified"
    ] is True


async def test_expired_code_is_refused(world: World) -> None:
    hdr = world.auth(world.responder_key)
    method = await _create(world, world.responder_key, world.responder_id, "voice", "+442071838750")
    url = f"{_base(world.responder_id)}/{method['id']}"
    assert (await world.client.post(f"{url}/send-verification", headers=hdr)).status_code == 202
    row, code = _latest_code(world, method["id"])
    assert row.channel == "voice"
    with Session(world.engine) as session:
        stored = session.get(ContactMethod, method["id"])
        assert stored is not None
        stored.verification_expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.add(stored)
        session.commit()
    reply = await world.client.post(f"{url}/verify", headers=hdr, json={"code": code})
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "code"
    assert "expired" in reply.json()["error"]["message"]


async def test_sending_codes_is_rate_limited(world: World) -> None:
    hdr = world.auth(world.responder_key)
    method = await _create(world, world.responder_key, world.responder_id, "sms", "+14155550123")
    url = f"{_base(world.responder_id)}/{method['id']}/send-verification"
    for _ in range(5):
        assert (await world.client.post(url, headers=hdr)).status_code == 202
    limited = await world.client.post(url, headers=hdr)
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "5 verification codes per contact method per hour" in limited.json()["error"]["message"]
    assert 3500 <= int(limited.headers["Retry-After"]) <= 3601
    with Session(world.engine) as session:
        rows = session.exec(
            select(Notification)
            .where(Notification.contact_method_id == method["id"])
            .order_by(col(Notification.id))
        ).all()
    assert [r.status for r in rows] == ["cancelled"] * 4 + ["pending"]  # only the newest code is sent
    slack = await _create(world, world.responder_key, world.responder_id, "slack", "U0123ABCD")
    needless = await world.client.post(
        f"{_base(world.responder_id)}/{slack['id']}/send-verification", headers=hdr
    )
    assert needless.status_code == 422 and needless.json()["error"]["field"] == "kind"


# --- notification rules ----------------------------------------------------------------------


async def test_rules_default_replace_and_validation(world: World) -> None:
    hdr = world.auth(world.responder_key)
    url = f"/api/v1/users/{world.responder_id}/notification-rules"
    seeded = (await world.client.get(url, headers=hdr)).json()
    assert [(r["method"], r["delay_minutes"]) for r in seeded["default"]] == [
        ("push", 0),
        ("email", 0),
        ("sms", 5),
    ]
    assert [(r["method"], r["delay_minutes"]) for r in seeded["important"]] == [
        ("push", 0),
        ("sms", 0),
        ("voice", 2),
    ]
    phone = await _create(world, world.responder_key, world.responder_id, "voice", "+14155550123")
    body = {
        "default": [{"method": "email", "delay_minutes": 10}, {"method": "push"}],
        "important": [
            {"method": "voice", "delay_minutes": 1, "contact_method_id": phone["id"]},
            {"method": "push", "delay_minutes": 0},
        ],
    }
    put = await world.client.put(url, headers=hdr, json=body)
    assert put.status_code == 200, put.text
    got = (await world.client.get(url, headers=hdr)).json()
    assert got == put.json()
    assert [(r["method"], r["delay_minutes"]) for r in got["default"]] == [("push", 0), ("email", 10)]
    assert [(r["method"], r["contact_method_id"]) for r in got["important"]] == [
        ("push", None),
        ("voice", phone["id"]),
    ]
    other = await _create(
        world, world.viewer_key, await _user_id(world, world.viewer_key), "sms", "+14155550100"
    )
    bad_cases = [
        ({"default": [{"method": "fax"}], "important": []}, "default[0].method"),
        (
            {"default": [], "important": [{"method": "sms", "delay_minutes": 1441}]},
            "important[0].delay_minutes",
        ),
        ({"default": [{"method": "sms", "delay_minutes": -1}], "important": []}, "default[0].delay_minutes"),
        ({"default": []}, "important"),
        (
            {"default": [{"method": "sms", "contact_method_id": phone["id"]}], "important": []},
            "default[0].contact_method_id",
        ),
        (
            {
                "default": [],
                "important": [{"method": "push"}, {"method": "sms", "contact_method_id": other["id"]}],
            },
            "important[1].contact_method_id",
        ),
        (
            {"default": [{"method": "push", "contact_method_id": phone["id"]}], "important": []},
            "default[0].contact_method_id",
        ),
        ({"default": [{"method": "push", "urgent": True}], "important": []}, "default[0].urgent"),
    ]
    for bad, field in bad_cases:
        reply = await world.client.put(url, headers=hdr, json=bad)
        assert reply.status_code == 422, (bad, reply.text)
        assert reply.json()["error"]["field"] == field, (bad, reply.json())
    assert (await world.client.get(url, headers=hdr)).json() == got  # nothing half-written
    assert (await world.client.put(url, headers=hdr, json={"default": [], "important": []})).json() == {
        "default": [],
        "important": [],
    }
    actions = [
        e.action for e in _audit(world, "notification_rules") if e.entity_id == str(world.responder_id)
    ]
    assert actions.count("notification_rules.seed") == 1 and actions.count("notification_rules.replace") == 2


async def test_users_created_over_the_api_get_default_rules(world: World) -> None:
    admin = world.auth(world.admin_key)
    user = (
        await world.client.post(
            "/api/v1/users", headers=admin, json={"email": "new@example.com", "name": "New"}
        )
    ).json()
    rules = (await world.client.get(f"/api/v1/users/{user['id']}/notification-rules", headers=admin)).json()
    assert len(rules["default"]) == 3 and len(rules["important"]) == 3


# --- profile ---------------------------------------------------------------------------------


async def test_profile_read_and_update(world: World) -> None:
    hdr = world.auth(world.viewer_key)
    me = (await world.client.get("/api/v1/me", headers=hdr)).json()
    assert (me["email"], me["notify_on_shift_start"], me["notify_on_shift_end"]) == (
        "viewer@example.com",
        True,
        False,
    )
    patched = await world.client.patch(
        "/api/v1/me",
        headers=hdr,
        json={"name": "Vera Viewer", "timezone": "Europe/Berlin", "notify_on_shift_end": True},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["timezone"], patched.json()["notify_on_shift_end"]) == (
        "Vera Viewer",
        "Europe/Berlin",
        True,
    )
    for body, field in (
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"name": ""}, "name"),
        ({"notify_on_shift_start": None}, "notify_on_shift_start"),
        ({"email": "x@example.com"}, "email"),
    ):
        reply = await world.client.patch("/api/v1/me", headers=hdr, json=body)
        assert reply.status_code == 422 and reply.json()["error"]["field"] == field, reply.text
    assert (await world.client.get("/api/v1/me", headers=hdr)).json()["timezone"] == "Europe/Berlin"
    assert any(e.action == "user.update" for e in _audit(world, "user"))


# --- devices ---------------------------------------------------------------------------------


async def test_device_register_upsert_list_and_delete(world: World) -> None:
    responder, viewer = world.auth(world.responder_key), world.auth(world.viewer_key)
    body = {"platform": "apns", "token": APNS.upper(), "name": "iPhone", "app_version": "1.0"}
    first = await world.client.post("/api/v1/me/devices", headers=responder, json=body)
    assert first.status_code == 201, first.text
    device = first.json()
    assert device["active"] is True and device["token_hint"] == "…" + APNS[-6:] and "token" not in device
    fcm = await world.client.post(
        "/api/v1/me/devices", headers=responder, json={"platform": "fcm", "token": FCM}
    )
    assert fcm.status_code == 201
    # The provider reports the token dead; the dispatcher deactivates the device.
    with Session(world.engine) as session:
        devices.deactivate(
            session, device_id=device["id"], reason="410 Unregistered", now=dt.datetime.now(dt.UTC)
        )
        session.commit()
    listed = (await world.client.get("/api/v1/me/devices", headers=responder)).json()
    assert [(d["id"], d["active"], d["deactivation_reason"]) for d in listed] == [
        (fcm.json()["id"], True, ""),
        (device["id"], False, "410 Unregistered"),
    ]
    # The phone now belongs to someone else: re-registering moves it and makes it active again.
    moved = await world.client.post("/api/v1/me/devices", headers=viewer, json={**body, "app_version": "1.1"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["id"], moved.json()["active"], moved.json()["app_version"]) == (
        device["id"],
        True,
        "1.1",
    )
    assert [d["id"] for d in (await world.client.get("/api/v1/me/devices", headers=responder)).json()] == [
        fcm.json()["id"]
    ]
    stolen = await world.client.delete(f"/api/v1/me/devices/{device['id']}", headers=responder)
    assert stolen.status_code == 404 and stolen.json()["error"]["field"] == "device_id"
    assert (
        await world.client.delete(f"/api/v1/me/devices/{device['id']}", headers=viewer)
    ).status_code == 204
    assert (await world.client.get("/api/v1/me/devices", headers=viewer)).json() == []
    entries = _audit(world, "push_device")
    assert {
        "push_device.register",
        "push_device.deactivate",
        "push_device.reregister",
        "push_device.unregister",
    } <= {e.action for e in entries}
    assert all(APNS not in str(e.before) + str(e.after) and FCM not in str(e.after) for e in entries)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "apns", "token": "abc"}, "token"),
        ({"platform": "apns", "token": "g" * 64}, "token"),
        ({"platform": "fcm", "token": "short"}, "token"),
        ({"platform": "fcm", "token": "a b" * 50}, "token"),
        ({"platform": "webpush", "token": APNS}, "platform"),
        ({"platform": "apns", "token": APNS, "name": "n" * 201}, "name"),
        ({"platform": "apns"}, "token"),
    ],
)
async def test_device_validation_names_the_field(world: World, body: dict[str, Any], field: str) -> None:
    reply = await world.client.post("/api/v1/me/devices", headers=world.auth(world.viewer_key), json=body)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == field
