"""Users: creation, lookup and passwords."""

from __future__ import annotations

import re
import zoneinfo

from sqlmodel import Session, select

from sentinel_app.models import User
from sentinel_app.security import hash_password
from sentinel_app.services import audit, notification_rules
from sentinel_app.services.errors import Conflict, ValidationFailed

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10


def normalize_email(email: str) -> str:
    """Lower-cased, trimmed email, validated."""
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 320:
        raise ValidationFailed("not a valid email address", field="email")
    return value


def validate_timezone(name: str, *, field: str = "timezone") -> str:
    """Return `name` if it is a known IANA zone."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"unknown timezone {name!r}", field=field) from None
    return name


def get_by_email(session: Session, *, email: str) -> User | None:
    """The user with this email, if any."""
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    password: str | None = None,
    is_admin: bool = False,
    timezone: str = "UTC",
    actor_user_id: int | None = None,
) -> User:
    """Create a user; the email must be new."""
    email = normalize_email(email)
    if not name.strip():
        raise ValidationFailed("name must not be empty", field="name")
    validate_timezone(timezone)
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if get_by_email(session, email=email) is not None:
        raise Conflict(f"a user with email {email} already exists", field="email")
    user = User(
        email=email,
        name=name.strip(),
        password_hash=hash_password(password) if password else None,
        is_admin=is_admin,
        timezone=timezone,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        after=audit.snapshot(user),
        actor_user_id=actor_user_id,
    )
    notification_rules.seed_default_rules(session, user=user, actor_user_id=actor_user_id)
    return user


def set_password(session: Session, *, user: User, password: str) -> None:
    """Replace a user's password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    user.password_hash = hash_password(password)
    session.add(user)
