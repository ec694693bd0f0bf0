"""People services: contact methods and verification, personal rules, push devices, outgoing webhooks."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app.db import session_scope
from sentinel_app.domain.notification_plan import Rule
from sentinel_app.models import AuditEntry, ContactMethod, Notification, NotificationRule, PushDevice
from sentinel_app.models.base import require_id
from sentinel_app.notify.base import OutgoingMessage
from sentinel_app.services import contacts, devices, notification_rules, outgoing_webhooks, teams, users
from sentinel_app.services.errors import Conflict, NotFound, ValidationFailed

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
APNS = "ab" * 32
FCM = "fcm:" + "x" * 140


@pytest.fixture(autouse=True)
def _secret_key(settings_env: pytest.MonkeyPatch) -> Iterator[None]:
    settings_env.setenv("SENTINEL_SECRET_KEY", "people-services-test-secret-key-0123456789")
    yield


def _user(session: Session, name: str = "ana") -> int:
    return require_id(users.create_user(session, email=f"{name}@example.com", name=name.title()))


def _code(row: Notification) -> str:
    match = re.search(r"verification code is (\d{6})\b", row.payload["body"])
    assert match, row.payload
    return match.group(1)


# --- contact method validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [
        ("sms", "+14155550123", "+14155550123"),
        ("voice", "+49 (30) 1234-5678", "+493012345678"),
        ("email", " Ana@Example.COM ", "ana@example.com"),
        ("slack", "u024bE7lh", "U024BE7LH"),
        ("slack", "W0123ABCD", "W0123ABCD"),
        ("webhook", "https://hooks.example.com/page?x=1", "https://hooks.example.com/page?x=1"),
        ("webhook", "http://8.8.8.8:8080/hook", "http://8.8.8.8:8080/hook"),
    ],
)
def test_contact_values_are_normalized(kind: str, value: str, stored: str) -> None:
    assert contacts.normalize_value(kind, value) == stored


@pytest.mark.parametrize(
    ("kind", "value", "field"),
    [
        ("sms", "4155550123", "value"),  # no +
        ("sms", "+1415555", "value"),  # 7 digits
        ("voice", "+1234567890123456", "value"),  # 16 digits
        ("voice", "+0123456789", "value"),  # no country code starts with 0
        ("sms", "+1415555012a", "value"),
        ("email", "not-an-email", "value"),
        ("slack", "C0123ABCD", "value"),  # a channel, not a user
        ("slack", "U", "value"),
        ("webhook", "ftp://example.com/x", "value"),
        ("webhook", "https://", "value"),
        ("webhook", "https://user:pw@example.com/", "value"),
        ("webhook", "http://127.0.0.1/hook", "value"),
        ("webhook", "http://10.1.2.3/hook", "value"),
        ("webhook", "http://169.254.169.254/latest/meta-data", "value"),
        ("webhook", "http://[::1]:80/", "value"),
        ("webhook", "http://localhost:9000/", "value"),
        ("webhook", "https://example.com/a b", "value"),
        ("pager", "1234", "kind"),
    ],
)
def test_bad_contact_values_name_the_field(kind: str, value: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        contacts.normalize_value(kind, value)
    assert err.value.field == field


def test_duplicate_and_change_of_value(db: Session) -> None:
    uid = _user(db)
    method = contacts.create_contact_method(db, user_id=uid, kind="sms", value="+14155550123")
    with pytest.raises(Conflict) as err:
        contacts.create_contact_method(db, user_id=uid, kind="sms", value="+1 415 555 0123")
    assert err.value.field == "value"
    method.verified_at = NOW
    contacts.update_contact_method(db, method=method, changes={"label": "work"})
    assert method.verified_at == NOW  # a label change keeps the verification
    contacts.update_contact_method(db, method=method, changes={"value": "+14155550199"})
    assert method.verified_at is None and method.value == "+14155550199"
    with pytest.raises(ValidationFailed) as bad:
        contacts.update_contact_method(db, method=method, changes={"kind": "email"})
    assert bad.value.field == "kind"


def test_usable_contact_methods(db: Session) -> None:
    ana, ben, cy = _user(db, "ana"), _user(db, "ben"), _user(db, "cy")
    sms = contacts.create_contact_method(db, user_id=ana, kind="sms", value="+14155550123")
    email = contacts.create_contact_method(db, user_id=ana, kind="email", value="ana@example.com")
    slack = contacts.create_contact_method(db, user_id=ana, kind="slack", value="U0123ABCD")
    off = contacts.create_contact_method(
        db, user_id=ana, kind="webhook", value="https://x.example/", enabled=False
    )
    hook = contacts.create_contact_method(db, user_id=ben, kind="webhook", value="https://y.example/")
    email.verified_at = NOW
    db.add(email)
    db.commit()
    usable = contacts.usable_contact_methods(db, user_ids=[ana, ben, cy])
    assert [m.id for m in usable[ana]] == [email.id, slack.id]
    assert [m.id for m in usable[ben]] == [hook.id]
    assert usable[cy] == []
    assert sms.id not in {m.id for m in usable[ana]} and off.id not in {m.id for m in usable[ana]}
    assert contacts.usable_contact_methods(db, user_ids=[]) == {}


# --- verification ----------------------------------------------------------------------------


def test_verification_round_trip_writes_an_outbox_row_and_stores_only_a_hash(db: Session) -> None:
    uid = _user(db)
    method = contacts.create_contact_method(db, user_id=uid, kind="sms", value="+14155550123")
    row = contacts.send_verification(db, method=method, now=NOW)
    db.commit()
    code = _code(row)
    assert (row.purpose, row.channel, row.status, row.user_id) == ("verification", "sms", "pending", uid)
    assert (row.contact_method_id, row.target, row.next_attempt_at) == (method.id, "+14155550123", NOW)
    assert row.idempotency_key == f"verify:{method.id}:1"
    message = OutgoingMessage.from_payload(row.channel, row.target, row.payload)
    assert message.body.startswith(f"Your Fangorn Sentinel verification code is {code}")
    assert method.verification_code_hash and code not in method.verification_code_hash
    assert method.verification_expires_at == NOW + dt.timedelta(minutes=10)
    entries = db.exec(select(AuditEntry).where(AuditEntry.entity_type == "contact_method")).all()
    assert all(code not in str(e.before) + str(e.after) for e in entries)
    assert all("verification_code_hash" not in e.after for e in entries)

    contacts.verify_code(db, method=method, code=code, now=NOW + dt.timedelta(minutes=9))
    assert method.verified_at == NOW + dt.timedelta(minutes=9)
    assert method.verification_code_hash is None and contacts.is_usable(method)
    with pytest.raises(Conflict):
        contacts.send_verification(db, method=method, now=NOW)


@pytest.mark.parametrize(
    ("kind", "value", "channel"), [("voice", "+14155550123", "voice"), ("email", "a@b.io", "email")]
)
def test_voice_and_email_codes_go_out_on_their_channel(
    db: Session, kind: str, value: str, channel: str
) -> None:
    method = contacts.create_contact_method(db, user_id=_user(db), kind=kind, value=value)
    row = contacts.send_verification(db, method=method, now=NOW)
    assert row.channel == channel and row.target == value
    contacts.verify_code(db, method=method, code=_code(row), now=NOW)
    assert method.verified_at == NOW


def test_slack_and_webhook_need_no_verification(db: Session) -> None:
    method = contacts.create_contact_method(db, user_id=_user(db), kind="slack", value="U0123ABCD")
    with pytest.raises(ValidationFailed) as err:
        contacts.send_verification(db, method=method, now=NOW)
    assert err.value.field == "kind"


def test_expired_code_is_refused(db: Session) -> None:
    method = contacts.create_contact_method(db, user_id=_user(db), kind="email", value="a@b.io")
    code = _code(contacts.send_verification(db, method=method, now=NOW))
    with pytest.raises(ValidationFailed, match="expired") as err:
        contacts.verify_code(db, method=method, code=code, now=NOW + dt.timedelta(minutes=10))
    assert err.value.field == "code" and method.verified_at is None


def test_five_wrong_guesses_burn_the_code(engine: sa.Engine) -> None:
    with session_scope(write=True, engine=engine) as session:
        uid = _user(session)
        method_id = require_id(
            contacts.create_contact_method(session, user_id=uid, kind="sms", value="+14155550123")
        )
        method = contacts.get_contact_method(session, user_id=uid, method_id=method_id)
        code = _code(contacts.send_verification(session, method=method, now=NOW))
    wrong = "000000" if code != "000000" else "111111"
    for attempt in range(1, 6):
        # Each guess in its own transaction, committed even though it fails, as the route does.
        with Session(engine, expire_on_commit=False) as session:
            method = contacts.get_contact_method(session, user_id=uid, method_id=method_id)
            with pytest.raises(ValidationFailed) as err:
                contacts.verify_code(
                    session, method=method, code=wrong, now=NOW + dt.timedelta(seconds=attempt)
                )
            session.commit()
        assert err.value.field == "code"
    assert "no longer works" in err.value.message
    with Session(engine) as session:
        method = contacts.get_contact_method(session, user_id=uid, method_id=method_id)
        assert method.verification_code_hash is None
        with pytest.raises(ValidationFailed, match="no verification code is pending"):
            contacts.verify_code(session, method=method, code=code, now=NOW + dt.timedelta(seconds=6))
    # A new code starts a fresh count.
    with session_scope(write=True, engine=engine) as session:
        method = contacts.get_contact_method(session, user_id=uid, method_id=method_id)
        fresh = _code(contacts.send_verification(session, method=method, now=NOW + dt.timedelta(minutes=1)))
        with pytest.raises(ValidationFailed, match="4 attempts left"):
            contacts.verify_code(
                session,
                method=method,
                code=wrong if wrong != fresh else "222222",
                now=NOW + dt.timedelta(minutes=2),
            )
    with session_scope(write=True, engine=engine) as session:
        method = contacts.get_contact_method(session, user_id=uid, method_id=method_id)
        contacts.verify_code(session, method=method, code=fresh, now=NOW + dt.timedelta(minutes=3))
        assert method.verified_at is not None


def test_sends_are_rate_limited_per_method_and_hour(db: Session) -> None:
    uid = _user(db)
    method = contacts.create_contact_method(db, user_id=uid, kind="sms", value="+14155550123")
    other = contacts.create_contact_method(db, user_id=uid, kind="email", value="a@b.io")
    rows = [
        contacts.send_verification(db, method=method, now=NOW + dt.timedelta(minutes=i)) for i in range(5)
    ]
    with pytest.raises(contacts.RateLimited) as err:
        contacts.send_verification(db, method=method, now=NOW + dt.timedelta(minutes=30))
    assert err.value.status == 429 and err.value.retry_after_s == 30 * 60 + 1
    contacts.send_verification(db, method=other, now=NOW + dt.timedelta(minutes=30))  # per method
    later = contacts.send_verification(db, method=method, now=NOW + dt.timedelta(minutes=60, seconds=1))
    db.flush()
    # Only the newest code's message is still worth sending.
    statuses = [r.status for r in rows]
    assert statuses == ["cancelled"] * 5 and later.status == "pending"
    keys = db.exec(
        select(Notification.idempotency_key)
        .where(Notification.contact_method_id == method.id)
        .order_by(col(Notification.id))
    ).all()
    assert keys == [f"verify:{method.id}:{n}" for n in range(1, 7)]


def test_recreating_a_number_does_not_reset_the_person_limit(db: Session) -> None:
    uid, other = _user(db, "ana"), _user(db, "ben")
    sent = 0
    for round_ in range(3):
        method = contacts.create_contact_method(db, user_id=uid, kind="sms", value="+14155550123")
        for _ in range(contacts.MAX_SENDS_PER_WINDOW):
            contacts.send_verification(db, method=method, now=NOW + dt.timedelta(minutes=sent))
            sent += 1
        if round_ < 2:
            contacts.delete_contact_method(db, method=method)
            db.flush()
    assert sent == contacts.MAX_SENDS_PER_USER_WINDOW
    fresh = contacts.create_contact_method(db, user_id=uid, kind="email", value="ana@example.com")
    with pytest.raises(contacts.RateLimited, match="per person") as err:
        contacts.send_verification(db, method=fresh, now=NOW + dt.timedelta(minutes=20))
    assert err.value.retry_after_s == 40 * 60 + 1  # when the first of the 15 leaves the window
    theirs = contacts.create_contact_method(db, user_id=other, kind="email", value="ben@example.com")
    contacts.send_verification(db, method=theirs, now=NOW + dt.timedelta(minutes=20))
    assert contacts.send_verification(db, method=fresh, now=NOW + dt.timedelta(minutes=60, seconds=1))


# --- rules -----------------------------------------------------------------------------------


def test_new_users_get_default_rules(db: Session) -> None:
    uid = _user(db)
    grouped = notification_rules.list_rules(db, user_id=uid)
    assert [(r.method, r.delay_minutes) for r in grouped["default"]] == [
        ("push", 0),
        ("email", 0),
        ("sms", 5),
    ]
    assert [(r.method, r.delay_minutes) for r in grouped["important"]] == [
        ("push", 0),
        ("sms", 0),
        ("voice", 2),
    ]
    assert notification_rules.rules_for(db, user_ids=[uid])[uid] == list(notification_rules.DEFAULT_RULES)


def test_replace_rules_and_rules_for_order(db: Session) -> None:
    ana, ben = _user(db, "ana"), _user(db, "ben")
    phone = contacts.create_contact_method(db, user_id=ana, kind="voice", value="+14155550123")
    notification_rules.replace_rules(
        db,
        user_id=ana,
        rules=[
            Rule("voice", 10, phone.id, urgency="important"),
            Rule("email", 3),
            Rule("push", 0, urgency="important"),
            Rule("push", 0),
        ],
    )
    notification_rules.replace_rules(db, user_id=ben, rules=[])
    found = notification_rules.rules_for(db, user_ids=[ben, ana, 999_999])
    assert found[ana] == [
        Rule("push", 0),
        Rule("email", 3),
        Rule("push", 0, urgency="important"),
        Rule("voice", 10, phone.id, urgency="important"),
    ]
    assert found[ben] == [] and found[999_999] == []
    assert (
        db.exec(
            select(sa.func.count()).select_from(NotificationRule).where(NotificationRule.user_id == ana)
        ).one()
        == 4
    )


def test_rule_validation_names_the_field_and_changes_nothing(db: Session) -> None:
    ana, ben = _user(db, "ana"), _user(db, "ben")
    sms = contacts.create_contact_method(db, user_id=ana, kind="sms", value="+14155550123")
    bens = contacts.create_contact_method(db, user_id=ben, kind="email", value="ben@example.com")
    cases = [
        ([Rule("push"), Rule("fax")], "default[1].method"),
        (
            [Rule("push", urgency="important"), Rule("sms", 1441, urgency="important")],
            "important[1].delay_minutes",
        ),
        ([Rule("sms", -1)], "default[0].delay_minutes"),
        ([Rule("email", 0, bens.id)], "default[0].contact_method_id"),
        (
            [Rule("push", urgency="important"), Rule("voice", 0, sms.id, urgency="important")],
            "important[1].contact_method_id",
        ),
        ([Rule("push", 0, sms.id)], "default[0].contact_method_id"),
        ([Rule("push", urgency="urgent")], "urgency"),
    ]
    before = notification_rules.rules_for(db, user_ids=[ana])
    for rules, field in cases:
        with pytest.raises(ValidationFailed) as err:
            notification_rules.replace_rules(db, user_id=ana, rules=rules)
        assert err.value.field == field, (rules, err.value.message)
    assert notification_rules.rules_for(db, user_ids=[ana]) == before


def test_deleting_a_contact_method_keeps_its_rules(db: Session) -> None:
    uid = _user(db)
    sms = contacts.create_contact_method(db, user_id=uid, kind="sms", value="+14155550123")
    notification_rules.replace_rules(db, user_id=uid, rules=[Rule("sms", 5, sms.id)])
    contacts.delete_contact_method(db, method=sms)
    db.commit()
    assert notification_rules.rules_for(db, user_ids=[uid])[uid] == [Rule("sms", 5, None)]
    assert db.exec(select(ContactMethod)).all() == []


# --- devices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "token", "field"),
    [
        ("apns", "ab" * 31, "token"),  # 62 hex
        ("apns", "zz" * 32, "token"),
        ("apns", "a" * 201, "token"),
        ("fcm", "x" * 99, "token"),
        ("fcm", "x" * 60 + " " + "x" * 60, "token"),
        ("fcm", "x" * 4097, "token"),
        ("webpush", APNS, "platform"),
    ],
)
def test_bad_device_tokens(platform: str, token: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        devices.normalize_token(platform, token)
    assert err.value.field == field


def test_register_upserts_moves_and_reactivates(db: Session) -> None:
    ana, ben = _user(db, "ana"), _user(db, "ben")
    first = devices.register_device(
        db, user_id=ana, platform="apns", token=APNS.upper(), name="iPhone", now=NOW
    )
    assert first.token == APNS and first.active and first.last_seen_at == NOW
    fcm = devices.register_device(db, user_id=ana, platform="fcm", token=FCM, now=NOW)
    dead = devices.deactivate(db, device_id=require_id(first), reason="410 Unregistered", now=NOW)
    assert dead is not None and not dead.active and dead.deactivation_reason == "410 Unregistered"
    again = devices.deactivate(
        db, device_id=require_id(first), reason="other", now=NOW + dt.timedelta(hours=1)
    )
    assert again is not None and again.deactivation_reason == "410 Unregistered"
    assert devices.deactivate(db, device_id=10**12, reason="x", now=NOW) is None
    later = NOW + dt.timedelta(days=1)
    moved = devices.register_device(
        db, user_id=ben, platform="apns", token=APNS, app_version="2.1", now=later
    )
    assert moved.id == first.id and moved.user_id == ben and moved.active
    assert moved.deactivated_at is None and moved.deactivation_reason == ""
    assert (moved.name, moved.app_version, moved.last_seen_at) == ("iPhone", "2.1", later)
    db.commit()
    assert [d.id for d in devices.list_devices(db, user_id=ana)] == [fcm.id]
    assert {u: [d.id for d in ds] for u, ds in devices.active_devices(db, user_ids=[ana, ben]).items()} == {
        ana: [fcm.id],
        ben: [first.id],
    }
    with pytest.raises(NotFound) as err:
        devices.unregister_device(db, user_id=ana, device_id=require_id(first), now=later)
    assert err.value.field == "device_id"
    devices.unregister_device(db, user_id=ben, device_id=require_id(first), now=later)
    db.commit()
    assert db.get(PushDevice, first.id) is None
    audit_rows = db.exec(select(AuditEntry).where(AuditEntry.entity_type == "push_device")).all()
    assert {e.action for e in audit_rows} >= {
        "push_device.register",
        "push_device.deactivate",
        "push_device.reregister",
        "push_device.unregister",
    }
    assert all(APNS not in str(e.before) + str(e.after) for e in audit_rows)


# --- outgoing webhooks -----------------------------------------------------------------------


def test_subscriptions_and_secret(db: Session) -> None:
    team = require_id(teams.create_team(db, name="Payments"))
    other = require_id(teams.create_team(db, name="Search"))
    fired, secret = outgoing_webhooks.create_webhook(
        db, team_id=team, name="chatops", url="https://chat.example/in", events=["resolved", "fired"]
    )
    assert fired.events == ["fired", "resolved"]  # canonical order
    outgoing_webhooks.create_webhook(
        db, team_id=team, name="off", url="https://x.example/", events=["fired"], enabled=False
    )
    theirs, _ = outgoing_webhooks.create_webhook(
        db, team_id=other, name="x", url="https://y.example/", events=["fired"]
    )
    db.commit()
    assert secret.startswith("whsec_") and fired.secret_encrypted and secret not in fired.secret_encrypted
    assert outgoing_webhooks.secret_of(fired) == secret
    assert [h.id for h in outgoing_webhooks.subscriptions_for(db, team_ids=[team], event="fired")] == [
        fired.id
    ]
    both = outgoing_webhooks.subscriptions_for(db, team_ids=[team, other], event="fired")
    assert [h.id for h in both] == [fired.id, theirs.id]
    assert outgoing_webhooks.subscriptions_for(db, team_ids=[team], event="acknowledged") == []
    assert outgoing_webhooks.subscriptions_for(db, team_ids=[], event="fired") == []
    with pytest.raises(ValueError):
        outgoing_webhooks.subscriptions_for(db, team_ids=[team], event="exploded")
    new_secret = outgoing_webhooks.rotate_secret(db, hook=fired)
    assert new_secret != secret and outgoing_webhooks.secret_of(fired) == new_secret
    audit_rows = db.exec(select(AuditEntry).where(AuditEntry.entity_type == "outgoing_webhook")).all()
    assert audit_rows and all("secret_encrypted" not in e.after for e in audit_rows)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["fired", "paged"]}, "events"),
        ({"url": "gopher://x"}, "url"),
        ({"name": "  "}, "name"),
        ({"name": "other"}, "name"),  # taken
        ({"enabled": None}, "enabled"),
        ({"team_id": 3}, "team_id"),
    ],
)
def test_webhook_update_validation(db: Session, changes: dict[str, object], field: str) -> None:
    team = require_id(teams.create_team(db, name="Payments"))
    hook, _ = outgoing_webhooks.create_webhook(
        db, team_id=team, name="a", url="https://a.example/", events=["fired"]
    )
    outgoing_webhooks.create_webhook(
        db, team_id=team, name="other", url="https://b.example/", events=["fired"]
    )
    with pytest.raises((ValidationFailed, Conflict)) as err:
        outgoing_webhooks.update_webhook(db, hook=hook, changes=changes)
    assert err.value.field == field
