"""Contact methods (phone, email, Slack user, webhook URL), their verification, and profile basics.

Verification: `send_verification` stores only an HMAC (keyed with the server secret) of a fresh
6-digit code and writes an outbox row that carries the code to the address; `verify_code`
compares in constant time. At most five codes per method per hour, and a code is burnt after
five wrong guesses. Failed guesses are counted through the audit log, so a caller that gets
`ValidationFailed` from `verify_code` must still commit the session (the REST route does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app.models import (
    AuditEntry,
    Channel,
    ContactKind,
    ContactMethod,
    Notification,
    NotificationRule,
    NotificationStatus,
    User,
)
from sentinel_app.models.base import require_id
from sentinel_app.notify.base import OutgoingMessage
from sentinel_app.services import audit, users
from sentinel_app.services.errors import Conflict, NotFound, ServiceError, ValidationFailed
from sentinel_app.services.outgoing_webhooks import validate_target_url
from sentinel_app.settings import get_settings

KINDS = tuple(k.value for k in ContactKind)
# Kinds whose address must prove it reaches the person; Slack ids and webhook URLs are
# chosen by the user or admin and cannot receive a code in a way that proves anything more.
NEEDS_VERIFICATION = frozenset({ContactKind.SMS.value, ContactKind.VOICE.value, ContactKind.EMAIL.value})
CODE_TTL = dt.timedelta(minutes=10)
SEND_WINDOW = dt.timedelta(hours=1)
MAX_SENDS_PER_WINDOW = 5
MAX_SENDS_PER_USER_WINDOW = 15
MAX_WRONG_GUESSES = 5
CODE_DIGITS = 6
MAX_VALUE_LENGTH = 500
MAX_LABEL_LENGTH = 100

_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
# Separators people type in phone numbers; removed before checking E.164.
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}")
_CHANNEL_OF = {
    ContactKind.SMS.value: Channel.SMS,
    ContactKind.VOICE.value: Channel.VOICE,
    ContactKind.EMAIL.value: Channel.EMAIL,
}
_FAILED_ACTION = "contact_method.verify_failed"
_PROFILE_FIELDS = frozenset({"name", "timezone", "notify_on_shift_start", "notify_on_shift_end"})


class RateLimited(ServiceError):
    """Too many requests of one kind; `retry_after_s` says when the next one is allowed."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, field: str | None = None, retry_after_s: int = 60) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s


# --- validation ------------------------------------------------------------------------------


def normalize_value(kind: str, value: str, *, field: str = "value") -> str:
    """Return the canonical address for `kind`, or raise ValidationFailed naming `field`."""
    if kind not in KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}", field="kind")
    raw = value.strip()
    if kind in (ContactKind.SMS, ContactKind.VOICE):
        phone = _PHONE_SEPARATORS.sub("", raw)
        if not _E164.fullmatch(phone):
            raise ValidationFailed(
                "phone numbers must be in E.164 form: + and 8 to 15 digits, e.g. +14155550123", field=field
            )
        return phone
    if kind == ContactKind.EMAIL:
        try:
            return users.normalize_email(raw)
        except ValidationFailed as exc:
            raise ValidationFailed(exc.message, field=field) from None
    if kind == ContactKind.SLACK:
        slack = raw.upper()
        if not _SLACK_USER.fullmatch(slack):
            raise ValidationFailed(
                "Slack user ids start with U or W followed by letters and digits", field=field
            )
        return slack
    return validate_target_url(raw, field=field, max_length=MAX_VALUE_LENGTH)


def _label(label: str) -> str:
    value = label.strip()
    if len(value) > MAX_LABEL_LENGTH:
        raise ValidationFailed(f"label must have at most {MAX_LABEL_LENGTH} characters", field="label")
    return value


def needs_verification(method: ContactMethod) -> bool:
    """Whether this kind of address must be verified before it is used."""
    return method.kind in NEEDS_VERIFICATION


def is_usable(method: ContactMethod) -> bool:
    """Enabled, and verified where the kind needs it."""
    return method.enabled and (method.verified_at is not None or not needs_verification(method))


def verification_pending(method: ContactMethod, *, now: dt.datetime) -> bool:
    """Whether a code was sent and can still be entered."""
    return (
        method.verification_code_hash is not None
        and method.verification_expires_at is not None
        and method.verification_expires_at > now
    )


# --- reads -----------------------------------------------------------------------------------


def list_contact_methods(session: Session, *, user_id: int) -> list[ContactMethod]:
    """A user's contact methods by kind, then id."""
    return list(
        session.exec(
            select(ContactMethod)
            .where(ContactMethod.user_id == user_id)
            .order_by(col(ContactMethod.kind), col(ContactMethod.id))
        ).all()
    )


def get_contact_method(
    session: Session, *, user_id: int, method_id: int, lock: bool = False
) -> ContactMethod:
    """The user's contact method `method_id`, or NotFound (also when it belongs to someone else)."""
    query = select(ContactMethod).where(ContactMethod.id == method_id, ContactMethod.user_id == user_id)
    if lock:
        # Serialises concurrent sends/guesses on one method (PostgreSQL; SQLite locks the database).
        query = query.with_for_update()
    method = session.exec(query).first()
    if method is None:
        raise NotFound(f"contact method {method_id} not found", field="contact_method_id")
    return method


def usable_contact_methods(session: Session, *, user_ids: Collection[int]) -> dict[int, list[ContactMethod]]:
    """Per user (every id given, possibly with an empty list): enabled methods that are verified or need no verification, by id."""
    result: dict[int, list[ContactMethod]] = {uid: [] for uid in user_ids}
    if not result:
        return result
    rows = session.exec(
        select(ContactMethod)
        .where(
            col(ContactMethod.user_id).in_(list(result)),
            col(ContactMethod.enabled).is_(True),
            sa.or_(
                col(ContactMethod.verified_at).is_not(None),
                col(ContactMethod.kind).not_in(sorted(NEEDS_VERIFICATION)),
            ),
        )
        .order_by(col(ContactMethod.id))
    ).all()
    for row in rows:
        result[row.user_id].append(row)
    return result


# --- changes ---------------------------------------------------------------------------------


def _check_unique(session: Session, *, user_id: int, kind: str, value: str, method_id: int | None) -> None:
    other = session.exec(
        select(ContactMethod).where(
            ContactMethod.user_id == user_id, ContactMethod.kind == kind, ContactMethod.value == value
        )
    ).first()
    if other is not None and other.id != method_id:
        raise Conflict(f"you already have this {kind} contact method (id {other.id})", field="value")


def create_contact_method(
    session: Session,
    *,
    user_id: int,
    kind: str,
    value: str,
    label: str = "",
    enabled: bool = True,
    actor_user_id: int | None = None,
) -> ContactMethod:
    """Add an unverified contact method to a user."""
    clean = normalize_value(kind, value)
    _check_unique(session, user_id=user_id, kind=kind, value=clean, method_id=None)
    method = ContactMethod(user_id=user_id, kind=kind, value=clean, label=_label(label), enabled=enabled)
    session.add(method)
    session.flush()
    audit.record(
        session,
        action="contact_method.create",
        entity_type="contact_method",
        entity_id=method.id,
        after=audit.snapshot(method),
        actor_user_id=actor_user_id,
    )
    return method


def update_contact_method(
    session: Session,
    *,
    method: ContactMethod,
    changes: Mapping[str, Any],
    actor_user_id: int | None = None,
) -> ContactMethod:
    """Change value, label or enabled; a new value is unverified again and voids a pending code."""
    unknown = set(changes) - {"value", "label", "enabled"}
    if unknown:
        raise ValidationFailed(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    for name, given in changes.items():
        if given is None:
            raise ValidationFailed(f"{name} must not be null", field=name)
    before = audit.snapshot(method)
    # Everything is checked before the row changes, so a refusal leaves it untouched.
    value = normalize_value(method.kind, changes["value"]) if "value" in changes else method.value
    label = _label(changes["label"]) if "label" in changes else method.label
    if value != method.value:
        _check_unique(session, user_id=method.user_id, kind=method.kind, value=value, method_id=method.id)
        method.value = value
        method.verified_at = None
        method.verification_code_hash = None
        method.verification_expires_at = None
    method.label = label
    if "enabled" in changes:
        method.enabled = bool(changes["enabled"])
    session.add(method)
    session.flush()
    audit.record(
        session,
        action="contact_method.update",
        entity_type="contact_method",
        entity_id=method.id,
        before=before,
        after=audit.snapshot(method),
        actor_user_id=actor_user_id,
    )
    return method


def delete_contact_method(
    session: Session, *, method: ContactMethod, actor_user_id: int | None = None
) -> None:
    """Delete a contact method; rules that named it fall back to every usable method of its kind.

    Keeping the rules keeps the person's timing (say "SMS after 5 minutes") intact instead of
    silently dropping a step because one phone number was removed.
    """
    method_id = require_id(method)
    rules = session.exec(
        select(NotificationRule).where(NotificationRule.contact_method_id == method_id)
    ).all()
    for rule in rules:
        rule.contact_method_id = None
        session.add(rule)
    session.flush()
    audit.record(
        session,
        action="contact_method.delete",
        entity_type="contact_method",
        entity_id=method_id,
        before=audit.snapshot(method),
        after={"rules_detached": sorted(require_id(r) for r in rules)},
        actor_user_id=actor_user_id,
    )
    session.delete(method)


# --- verification ----------------------------------------------------------------------------


def _code_hash(method_id: int, code: str) -> str:
    # Keyed, so a leaked database does not give away codes by hashing all million of them.
    key = get_settings().resolved_secret_key().encode()
    return hmac.new(key, f"contact-verify:{method_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _message(kind: str, method_id: int, target: str, code: str) -> OutgoingMessage:
    body = f"Your Fangorn Sentinel verification code is {code}"
    if kind == ContactKind.VOICE:
        # Spoken digit by digit, twice, so it can be written down from a phone call.
        spelled = ", ".join(code)
        body = f"{body}. Again: {spelled}. Again: {spelled}."
    else:
        body += f". It expires in {int(CODE_TTL.total_seconds() // 60)} minutes."
    return OutgoingMessage(
        channel=_CHANNEL_OF[kind],
        target=target,
        alert_id=None,
        title="Fangorn Sentinel verification code",
        body=body,
        severity="info",
        collapse_id=f"sentinel-verify-{method_id}",
        extra={"purpose": "verification", "contact_method_id": method_id},
    )


def _check_rate(session: Session, condition: Any, *, limit: int, what: str, now: dt.datetime) -> None:
    recent = session.exec(
        select(Notification.created_at)
        .where(
            condition,
            Notification.purpose == "verification",
            col(Notification.created_at) > now - SEND_WINDOW,
        )
        .order_by(col(Notification.created_at))
    ).all()
    if len(recent) >= limit:
        # The next send is allowed once enough of the window's sends have aged out.
        wait = max(1, int((recent[-limit] + SEND_WINDOW - now).total_seconds()) + 1)
        raise RateLimited(
            f"at most {limit} {what} per hour; try again in {wait} seconds",
            field="contact_method_id",
            retry_after_s=wait,
        )


def send_verification(
    session: Session, *, method: ContactMethod, now: dt.datetime, actor_user_id: int | None = None
) -> Notification:
    """Issue a fresh code for an sms/voice/email method and queue the outbox row that delivers it.

    Earlier codes stop working and their still-pending messages are cancelled.
    Raises RateLimited after MAX_SENDS_PER_WINDOW sends of this method, or
    MAX_SENDS_PER_USER_WINDOW of this person, within SEND_WINDOW.
    """
    method_id = require_id(method)
    if not needs_verification(method):
        raise ValidationFailed(f"{method.kind} contact methods need no verification", field="kind")
    if method.verified_at is not None:
        raise Conflict("this contact method is already verified", field="verified_at")
    _check_rate(
        session,
        Notification.contact_method_id == method_id,
        limit=MAX_SENDS_PER_WINDOW,
        what="verification codes per contact method",
        now=now,
    )
    # Deleting and re-adding a number must not reset the limit (SMS pumping), so people have one too.
    _check_rate(
        session,
        Notification.user_id == method.user_id,
        limit=MAX_SENDS_PER_USER_WINDOW,
        what="verification codes per person",
        now=now,
    )
    prefix = f"verify:{method_id}:"
    # Keys of deleted methods stay in the outbox and SQLite may reuse ids, so count by key.
    sent_before = session.exec(
        select(sa.func.count())
        .select_from(Notification)
        .where(col(Notification.idempotency_key).startswith(prefix, autoescape=True))
    ).one()
    for stale in session.exec(
        select(Notification).where(
            Notification.contact_method_id == method_id,
            Notification.purpose == "verification",
            Notification.status == NotificationStatus.PENDING,
        )
    ):
        stale.status = NotificationStatus.CANCELLED
        stale.error = "superseded by a newer verification code"
        session.add(stale)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    method.verification_code_hash = _code_hash(method_id, code)
    method.verification_expires_at = now + CODE_TTL
    session.add(method)
    row = Notification(
        idempotency_key=f"{prefix}{int(sent_before) + 1}",
        user_id=method.user_id,
        channel=_CHANNEL_OF[method.kind],
        purpose="verification",
        contact_method_id=method_id,
        target=method.value,
        payload=_message(method.kind, method_id, method.value, code).to_payload(),
        status=NotificationStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        action="contact_method.send_verification",
        entity_type="contact_method",
        entity_id=method_id,
        after={"channel": row.channel, "expires_at": method.verification_expires_at.isoformat()},
        actor_user_id=actor_user_id,
    )
    return row


def _failed_guesses(session: Session, *, method_id: int, since: dt.datetime) -> int:
    count = session.exec(
        select(sa.func.count())
        .select_from(AuditEntry)
        .where(
            AuditEntry.entity_type == "contact_method",
            AuditEntry.entity_id == str(method_id),
            AuditEntry.action == _FAILED_ACTION,
            col(AuditEntry.created_at) >= since,
        )
    ).one()
    return int(count)


def verify_code(
    session: Session, *, method: ContactMethod, code: str, now: dt.datetime, actor_user_id: int | None = None
) -> ContactMethod:
    """Mark the method verified if `code` is its pending code.

    Raises ValidationFailed (field ``code``) when no code is pending, it expired, or it is wrong;
    a wrong guess is recorded first and the fifth burns the code, so commit even on failure.
    """
    method_id = require_id(method)
    if method.verified_at is not None:
        raise Conflict("this contact method is already verified", field="verified_at")
    if method.verification_code_hash is None or method.verification_expires_at is None:
        raise ValidationFailed("no verification code is pending; send a new one", field="code")
    if method.verification_expires_at <= now:
        method.verification_code_hash = None
        method.verification_expires_at = None
        session.add(method)
        raise ValidationFailed("the verification code has expired; send a new one", field="code")
    guess = code.strip()
    if hmac.compare_digest(_code_hash(method_id, guess), method.verification_code_hash):
        before = audit.snapshot(method)
        method.verified_at = now
        method.verification_code_hash = None
        method.verification_expires_at = None
        session.add(method)
        session.flush()
        audit.record(
            session,
            action="contact_method.verify",
            entity_type="contact_method",
            entity_id=method_id,
            before=before,
            after=audit.snapshot(method),
            actor_user_id=actor_user_id,
        )
        return method
    issued_at = method.verification_expires_at - CODE_TTL
    failed = _failed_guesses(session, method_id=method_id, since=issued_at) + 1
    entry = audit.record(
        session,
        action=_FAILED_ACTION,
        entity_type="contact_method",
        entity_id=method_id,
        after={"attempt": failed},
        actor_user_id=actor_user_id,
    )
    entry.created_at = now
    if failed >= MAX_WRONG_GUESSES:
        method.verification_code_hash = None
        method.verification_expires_at = None
        session.add(method)
        raise ValidationFailed(
            f"wrong code {MAX_WRONG_GUESSES} times; this code no longer works, send a new one", field="code"
        )
    raise ValidationFailed(
        f"wrong verification code ({MAX_WRONG_GUESSES - failed} attempts left)", field="code"
    )


# --- profile ---------------------------------------------------------------------------------


def update_profile(
    session: Session, *, user: User, changes: Mapping[str, Any], actor_user_id: int | None = None
) -> User:
    """Change a user's name, timezone or on-call shift notifications, with an audit entry."""
    unknown = set(changes) - _PROFILE_FIELDS
    if unknown:
        raise ValidationFailed(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    for name, value in changes.items():
        if value is None:
            raise ValidationFailed(f"{name} must not be null", field=name)
    before = audit.snapshot(user)
    clean: dict[str, Any] = {}
    if "name" in changes:
        clean["name"] = str(changes["name"]).strip()
        if not clean["name"] or len(clean["name"]) > 200:
            raise ValidationFailed("name must have 1 to 200 characters", field="name")
    if "timezone" in changes:
        clean["timezone"] = users.validate_timezone(str(changes["timezone"]))
    for flag in ("notify_on_shift_start", "notify_on_shift_end"):
        if flag in changes:
            clean[flag] = bool(changes[flag])
    for name, value in clean.items():
        setattr(user, name, value)
    session.add(user)
    session.flush()
    audit.record(
        session,
        action="user.update",
        entity_type="user",
        entity_id=user.id,
        before=before,
        after=audit.snapshot(user),
        actor_user_id=actor_user_id,
    )
    return user
