"""REST for a person's notification settings: profile, contact methods and their verification,
personal notification rules, and push devices.

Everyone manages their own settings (viewers too); installation administrators manage anyone's.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from sentinel_app.api.deps import Principal, principal, read_db, write_db
from sentinel_app.api.errors import ApiError
from sentinel_app.api.schemas import Strict
from sentinel_app.db import utcnow
from sentinel_app.domain.notification_plan import Rule
from sentinel_app.models import ContactMethod, NotificationRule, PushDevice, User
from sentinel_app.models.base import require_id
from sentinel_app.services import contacts, devices, notification_rules
from sentinel_app.services.errors import ValidationFailed

router = APIRouter(prefix="/api/v1", tags=["people"])

MAX_ID = 2**63 - 1
# Ids beyond a 64-bit integer cannot exist; refusing them early keeps PostgreSQL from erroring.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]
Kind = Literal["sms", "voice", "email", "slack", "webhook"]
Method = Literal["push", "sms", "voice", "email", "slack", "webhook"]


# --- bodies ----------------------------------------------------------------------------------


class ProfileOut(BaseModel):
    """The caller's profile and on-call shift notification preferences."""

    id: int
    email: str
    name: str
    timezone: str
    is_admin: bool
    notify_on_shift_start: bool
    notify_on_shift_end: bool
    created_at: dt.datetime


class ProfilePatch(Strict):
    """Changes to the caller's profile; omitted fields stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64, description="IANA zone, e.g. Europe/Berlin")
    notify_on_shift_start: bool | None = None
    notify_on_shift_end: bool | None = None


class ContactMethodIn(Strict):
    """A new contact method: E.164 phone (sms, voice), email, Slack user id or webhook URL."""

    kind: Kind
    value: str = Field(min_length=1, max_length=500, examples=["+14155550123"])
    label: str = Field(default="", max_length=100)
    enabled: bool = True


class ContactMethodPatch(Strict):
    """Changes to a contact method; a new value must be verified again."""

    value: str | None = Field(default=None, min_length=1, max_length=500)
    label: str | None = Field(default=None, max_length=100)
    enabled: bool | None = None


class ContactMethodOut(BaseModel):
    """A contact method; `usable` says whether notifications will use it."""

    id: int
    user_id: int
    kind: str
    value: str
    label: str
    enabled: bool
    needs_verification: bool
    verified: bool
    verified_at: dt.datetime | None
    verification_pending: bool
    verification_expires_at: dt.datetime | None
    usable: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class VerificationSent(BaseModel):
    """A verification code is on its way (the code itself is never returned)."""

    contact_method_id: int
    channel: str
    target: str
    expires_at: dt.datetime


class VerifyIn(Strict):
    """The code the person received."""

    code: str = Field(min_length=1, max_length=32)


class RuleIn(Strict):
    """One personal rule: reach me by `method` this many minutes after the page."""

    method: Method
    delay_minutes: int = Field(default=0, ge=0, le=notification_rules.MAX_DELAY_MINUTES)
    contact_method_id: BodyId | None = Field(
        default=None, description="one address of that kind; omitted: every usable address of that kind"
    )


class RulesIn(Strict):
    """Both rule lists; a PUT replaces them together."""

    default: list[RuleIn] = Field(max_length=notification_rules.MAX_RULES_PER_URGENCY)
    important: list[RuleIn] = Field(max_length=notification_rules.MAX_RULES_PER_URGENCY)


class RuleOut(BaseModel):
    """A stored rule."""

    id: int
    method: str
    delay_minutes: int
    contact_method_id: int | None


class RulesOut(BaseModel):
    """A person's rules per urgency, each ordered by delay then id."""

    default: list[RuleOut]
    important: list[RuleOut]


class DeviceIn(Strict):
    """A mobile app installation registering for push."""

    platform: Literal["apns", "fcm"]
    token: str = Field(min_length=1, max_length=4096)
    name: str = Field(default="", max_length=200)
    app_version: str = Field(default="", max_length=64)


class DeviceOut(BaseModel):
    """A push device (only the end of its token is shown)."""

    id: int
    platform: str
    token_hint: str
    name: str
    app_version: str
    active: bool
    last_seen_at: dt.datetime | None
    deactivated_at: dt.datetime | None
    deactivation_reason: str
    created_at: dt.datetime


# --- helpers ---------------------------------------------------------------------------------


def _subject(session: Session, who: Principal, user_id: int, action: str) -> User:
    """The user whose settings are read (`read`) or changed (`write`), if the caller may."""
    if user_id != who.user_id and not who.can("admin", None):
        raise ApiError(
            403,
            "only installation administrators manage other people's notification settings",
            field="user_id",
        )
    if not who.has_scope(action):
        raise ApiError(403, f"this API key lacks the {action} scope")
    user = session.get(User, user_id)
    if user is None:
        raise ApiError(404, f"user {user_id} not found", field="user_id")
    return user


def _contact_out(method: ContactMethod, now: dt.datetime) -> ContactMethodOut:
    pending = contacts.verification_pending(method, now=now)
    return ContactMethodOut(
        id=require_id(method),
        user_id=method.user_id,
        kind=method.kind,
        value=method.value,
        label=method.label,
        enabled=method.enabled,
        needs_verification=contacts.needs_verification(method),
        verified=method.verified_at is not None,
        verified_at=method.verified_at,
        verification_pending=pending,
        verification_expires_at=method.verification_expires_at if pending else None,
        usable=contacts.is_usable(method),
        created_at=method.created_at,
        updated_at=method.updated_at,
    )


def _rules_out(grouped: dict[str, list[NotificationRule]]) -> RulesOut:
    def items(urgency: str) -> list[RuleOut]:
        return [RuleOut.model_validate(r, from_attributes=True) for r in grouped.get(urgency, [])]

    return RulesOut(default=items("default"), important=items("important"))


def _device_out(device: PushDevice) -> DeviceOut:
    return DeviceOut(
        id=require_id(device),
        platform=device.platform,
        token_hint=devices.token_hint(device),
        name=device.name,
        app_version=device.app_version,
        active=device.active,
        last_seen_at=device.last_seen_at,
        deactivated_at=device.deactivated_at,
        deactivation_reason=device.deactivation_reason,
        created_at=device.created_at,
    )


def _profile_out(user: User) -> ProfileOut:
    return ProfileOut.model_validate(user, from_attributes=True)


# --- profile ---------------------------------------------------------------------------------


@router.get("/me", response_model=ProfileOut)
def get_profile(who: Principal = Depends(principal), session: Session = Depends(read_db)) -> ProfileOut:
    """The caller's profile with on-call shift notification preferences."""
    return _profile_out(_subject(session, who, who.user_id, "read"))


@router.patch("/me", response_model=ProfileOut)
def update_profile(
    body: ProfilePatch, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> ProfileOut:
    """Change the caller's name, timezone or shift start/end notifications."""
    user = _subject(session, who, who.user_id, "write")
    contacts.update_profile(
        session, user=user, changes=body.model_dump(exclude_unset=True), actor_user_id=who.user_id
    )
    return _profile_out(user)


# --- contact methods -------------------------------------------------------------------------


@router.get("/users/{user_id}/contact-methods", response_model=list[ContactMethodOut])
def list_contact_methods(
    user_id: PathId, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> list[ContactMethodOut]:
    """A person's contact methods."""
    _subject(session, who, user_id, "read")
    now = utcnow()
    return [_contact_out(m, now) for m in contacts.list_contact_methods(session, user_id=user_id)]


@router.post("/users/{user_id}/contact-methods", response_model=ContactMethodOut, status_code=201)
def create_contact_method(
    user_id: PathId,
    body: ContactMethodIn,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> ContactMethodOut:
    """Add a contact method; sms, voice and email ones must be verified before they are used."""
    _subject(session, who, user_id, "write")
    method = contacts.create_contact_method(
        session,
        user_id=user_id,
        kind=body.kind,
        value=body.value,
        label=body.label,
        enabled=body.enabled,
        actor_user_id=who.user_id,
    )
    return _contact_out(method, utcnow())


@router.get("/users/{user_id}/contact-methods/{contact_method_id}", response_model=ContactMethodOut)
def get_contact_method(
    user_id: PathId,
    contact_method_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
) -> ContactMethodOut:
    """One contact method."""
    _subject(session, who, user_id, "read")
    method = contacts.get_contact_method(session, user_id=user_id, method_id=contact_method_id)
    return _contact_out(method, utcnow())


@router.patch("/users/{user_id}/contact-methods/{contact_method_id}", response_model=ContactMethodOut)
def update_contact_method(
    user_id: PathId,
    contact_method_id: PathId,
    body: ContactMethodPatch,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> ContactMethodOut:
    """Change a contact method; a changed value is unverified again."""
    _subject(session, who, user_id, "write")
    method = contacts.get_contact_method(session, user_id=user_id, method_id=contact_method_id, lock=True)
    contacts.update_contact_method(
        session, method=method, changes=body.model_dump(exclude_unset=True), actor_user_id=who.user_id
    )
    return _contact_out(method, utcnow())


@router.delete("/users/{user_id}/contact-methods/{contact_method_id}", status_code=204)
def delete_contact_method(
    user_id: PathId,
    contact_method_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> None:
    """Delete a contact method; rules that named it then use every usable method of its kind."""
    _subject(session, who, user_id, "write")
    method = contacts.get_contact_method(session, user_id=user_id, method_id=contact_method_id, lock=True)
    contacts.delete_contact_method(session, method=method, actor_user_id=who.user_id)


@router.post(
    "/users/{user_id}/contact-methods/{contact_method_id}/send-verification",
    response_model=VerificationSent,
    status_code=202,
)
def send_verification(
    user_id: PathId,
    contact_method_id: PathId,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> VerificationSent:
    """Send a 6-digit code (valid 10 minutes) to an sms, voice or email method; at most 5 an hour."""
    _subject(session, who, user_id, "write")
    method = contacts.get_contact_method(session, user_id=user_id, method_id=contact_method_id, lock=True)
    try:
        row = contacts.send_verification(session, method=method, now=utcnow(), actor_user_id=who.user_id)
    except contacts.RateLimited as exc:
        raise ApiError(
            429, exc.message, field=exc.field, headers={"Retry-After": str(exc.retry_after_s)}
        ) from None
    assert method.verification_expires_at is not None
    return VerificationSent(
        contact_method_id=contact_method_id,
        channel=row.channel,
        target=method.value,
        expires_at=method.verification_expires_at,
    )


@router.post("/users/{user_id}/contact-methods/{contact_method_id}/verify", response_model=ContactMethodOut)
def verify_contact_method(
    user_id: PathId,
    contact_method_id: PathId,
    body: VerifyIn,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> ContactMethodOut:
    """Enter the code; five wrong guesses burn it."""
    _subject(session, who, user_id, "write")
    method = contacts.get_contact_method(session, user_id=user_id, method_id=contact_method_id, lock=True)
    now = utcnow()
    try:
        contacts.verify_code(session, method=method, code=body.code, now=now, actor_user_id=who.user_id)
    except ValidationFailed:
        # The failed guess (and a burnt code) must outlive this request's rollback.
        session.commit()
        raise
    return _contact_out(method, now)


# --- notification rules ----------------------------------------------------------------------


@router.get("/users/{user_id}/notification-rules", response_model=RulesOut)
def get_rules(
    user_id: PathId, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> RulesOut:
    """A person's rules for default and important pages."""
    _subject(session, who, user_id, "read")
    return _rules_out(notification_rules.list_rules(session, user_id=user_id))


@router.put("/users/{user_id}/notification-rules", response_model=RulesOut)
def replace_rules(
    user_id: PathId,
    body: RulesIn,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> RulesOut:
    """Replace both rule lists at once (an empty list falls back to the other list, then push + email)."""
    _subject(session, who, user_id, "write")
    rules = [
        Rule(item.method, item.delay_minutes, item.contact_method_id, urgency=urgency)
        for urgency, items in (("default", body.default), ("important", body.important))
        for item in items
    ]
    grouped = notification_rules.replace_rules(
        session, user_id=user_id, rules=rules, actor_user_id=who.user_id
    )
    return _rules_out(grouped)


# --- push devices ----------------------------------------------------------------------------


@router.get("/me/devices", response_model=list[DeviceOut])
def list_devices(who: Principal = Depends(principal), session: Session = Depends(read_db)) -> list[DeviceOut]:
    """The caller's push devices, newest first (deactivated ones say why)."""
    _subject(session, who, who.user_id, "read")
    return [_device_out(d) for d in devices.list_devices(session, user_id=who.user_id)]


@router.post("/me/devices", response_model=DeviceOut, status_code=201)
def register_device(
    body: DeviceIn,
    response: Response,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> DeviceOut:
    """Register this app installation for push (201), or refresh a known token (200): it moves to the caller."""
    _subject(session, who, who.user_id, "write")
    token = devices.normalize_token(body.platform, body.token)
    if devices.find_device(session, platform=body.platform, token=token) is not None:
        response.status_code = 200
    device = devices.register_device(
        session,
        user_id=who.user_id,
        platform=body.platform,
        token=token,
        name=body.name,
        app_version=body.app_version,
        now=utcnow(),
    )
    return _device_out(device)


@router.delete("/me/devices/{device_id}", status_code=204)
def unregister_device(
    device_id: PathId, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> None:
    """Stop pushing to one of the caller's devices."""
    _subject(session, who, who.user_id, "write")
    devices.unregister_device(session, user_id=who.user_id, device_id=device_id, now=utcnow())
