"""Push devices: mobile app installations that receive APNs / FCM notifications."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from sentinel_app.models import PushDevice, PushPlatform
from sentinel_app.services import audit
from sentinel_app.services.errors import NotFound, ValidationFailed

PLATFORMS = tuple(p.value for p in PushPlatform)
# APNs device tokens are 32 bytes in hex today; Apple reserves the right to lengthen them.
_APNS_TOKEN = re.compile(r"[0-9a-f]{64,200}")
# FCM registration tokens are opaque printable strings (about 150-200 characters in practice).
_FCM_TOKEN = re.compile(r"[\x21-\x7e]{100,4096}")
MAX_NAME_LENGTH = 200
MAX_VERSION_LENGTH = 64
MAX_REASON_LENGTH = 200


def normalize_token(platform: str, token: str) -> str:
    """The canonical token of `platform` (APNs hex lower-cased), or ValidationFailed naming the field."""
    if platform not in PLATFORMS:
        raise ValidationFailed(f"platform must be one of {', '.join(PLATFORMS)}", field="platform")
    if platform == PushPlatform.APNS:
        value = token.strip().lower()
        if not _APNS_TOKEN.fullmatch(value):
            raise ValidationFailed("APNs device tokens are 64 to 200 hexadecimal characters", field="token")
        return value
    value = token.strip()
    if not _FCM_TOKEN.fullmatch(value):
        raise ValidationFailed(
            "FCM registration tokens are 100 to 4096 printable characters without spaces", field="token"
        )
    return value


def token_hint(device: PushDevice) -> str:
    """The end of the token, enough to tell devices apart without revealing it."""
    return f"…{device.token[-6:]}"


def _snapshot(device: PushDevice) -> dict[str, Any]:
    # A push token lets anyone who holds the provider credentials reach the phone: keep it out.
    data = audit.snapshot(device)
    data.pop("token", None)
    data["token_hint"] = token_hint(device)
    return data


def _text(value: str, *, field: str, limit: int) -> str:
    clean = value.strip()
    if len(clean) > limit:
        raise ValidationFailed(f"{field} must have at most {limit} characters", field=field)
    return clean


def find_device(session: Session, *, platform: str, token: str) -> PushDevice | None:
    """The device row with this (already normalized) platform and token, if any."""
    return session.exec(
        select(PushDevice).where(PushDevice.platform == platform, PushDevice.token == token)
    ).first()


def list_devices(session: Session, *, user_id: int) -> list[PushDevice]:
    """A user's devices (active and deactivated), newest first."""
    return list(
        session.exec(
            select(PushDevice).where(PushDevice.user_id == user_id).order_by(col(PushDevice.id).desc())
        ).all()
    )


def active_devices(session: Session, *, user_ids: Collection[int]) -> dict[int, list[PushDevice]]:
    """Per given user (possibly an empty list): active push devices by id."""
    result: dict[int, list[PushDevice]] = {uid: [] for uid in user_ids}
    if not result:
        return result
    rows = session.exec(
        select(PushDevice)
        .where(col(PushDevice.user_id).in_(list(result)), col(PushDevice.active).is_(True))
        .order_by(col(PushDevice.id))
    ).all()
    for row in rows:
        result[row.user_id].append(row)
    return result


def register_device(
    session: Session,
    *,
    user_id: int,
    platform: str,
    token: str,
    name: str = "",
    app_version: str = "",
    now: dt.datetime,
) -> PushDevice:
    """Register a device for push, or refresh it: a known (platform, token) moves to this user and is reactivated."""
    clean = normalize_token(platform, token)
    clean_name = _text(name, field="name", limit=MAX_NAME_LENGTH)
    version = _text(app_version, field="app_version", limit=MAX_VERSION_LENGTH)
    device = find_device(session, platform=platform, token=clean)
    if device is None:
        device = PushDevice(
            user_id=user_id,
            platform=platform,
            token=clean,
            name=clean_name,
            app_version=version,
            last_seen_at=now,
            created_at=now,
        )
        try:
            # A concurrent registration of the same token loses the insert and updates instead.
            with session.begin_nested():
                session.add(device)
                session.flush()
        except IntegrityError:
            device = find_device(session, platform=platform, token=clean)
            if device is None:
                raise
        else:
            audit.record(
                session,
                action="push_device.register",
                entity_type="push_device",
                entity_id=device.id,
                after=_snapshot(device),
                actor_user_id=user_id,
            )
            return device
    before = _snapshot(device)
    device.user_id = user_id
    device.active = True
    device.deactivated_at = None
    device.deactivation_reason = ""
    device.last_seen_at = now
    if clean_name:
        device.name = clean_name
    if version:
        device.app_version = version
    session.add(device)
    session.flush()
    audit.record(
        session,
        action="push_device.reregister",
        entity_type="push_device",
        entity_id=device.id,
        before=before,
        after=_snapshot(device),
        actor_user_id=user_id,
    )
    return device


def unregister_device(session: Session, *, user_id: int, device_id: int, now: dt.datetime) -> None:
    """Remove one of the user's devices (NotFound, field device_id, for anyone else's)."""
    device = session.get(PushDevice, device_id)
    if device is None or device.user_id != user_id:
        raise NotFound(f"device {device_id} not found", field="device_id")
    entry = audit.record(
        session,
        action="push_device.unregister",
        entity_type="push_device",
        entity_id=device_id,
        before=_snapshot(device),
        actor_user_id=user_id,
    )
    entry.created_at = now
    session.delete(device)


def deactivate(session: Session, *, device_id: int, reason: str, now: dt.datetime) -> PushDevice | None:
    """Stop pushing to a device whose token the provider rejected; None if it no longer exists.

    Re-registering the token (the app does on every start) reactivates it. A device that is
    already inactive keeps its first reason.
    """
    device = session.get(PushDevice, device_id)
    if device is None or not device.active:
        return device
    before = _snapshot(device)
    device.active = False
    device.deactivated_at = now
    device.deactivation_reason = reason.strip()[:MAX_REASON_LENGTH]
    session.add(device)
    session.flush()
    entry = audit.record(
        session,
        action="push_device.deactivate",
        entity_type="push_device",
        entity_id=device_id,
        before=before,
        after=_snapshot(device),
    )
    entry.created_at = now
    return device
