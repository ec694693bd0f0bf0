"""Outgoing webhooks: a team's signed JSON subscriptions to alert events.

The HMAC secret is generated here, shown once to the team admin, and stored encrypted with the
server's secret key (it must be recoverable, the dispatcher signs with it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from sentinel_app.models import OutgoingWebhook

# The integrations service owns the Fernet key derived from the server secret; one derivation
# for every recoverable secret keeps key rotation a single concern.
from sentinel_app.security import decrypt_secret, encrypt_secret, new_token
from sentinel_app.services import audit
from sentinel_app.services.errors import Conflict, ValidationFailed

EVENTS = ("fired", "acknowledged", "resolved", "escalated")
MAX_URL_LENGTH = 2000
_LOCAL_NAMES = re.compile(r"(^|\.)(localhost|localdomain)\.?$", re.IGNORECASE)
_PATCHABLE = frozenset({"name", "url", "events", "enabled"})


def validate_target_url(url: str, *, field: str = "url", max_length: int = MAX_URL_LENGTH) -> str:
    """Return `url` trimmed if it is an absolute http(s) URL we may post to, else ValidationFailed.

    Literal loopback, private, link-local and other non-public addresses (and ``localhost``)
    are refused: the URL is user input and the server would otherwise probe its own network.
    """
    value = url.strip()
    if not value or len(value) > max_length:
        raise ValidationFailed(f"url must have 1 to {max_length} characters", field=field)
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValidationFailed("url must not contain spaces or control characters", field=field)
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValidationFailed("url is not a valid URL", field=field) from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValidationFailed("url must be an absolute http:// or https:// URL", field=field)
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed("url must not contain credentials; use the signing secret", field=field)
    if _LOCAL_NAMES.search(host):
        raise ValidationFailed(f"url host {host!r} is local to this server", field=field)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return value
    if not address.is_global:
        raise ValidationFailed(f"url host {host} is not a public address", field=field)
    return value


def _validate_events(events: Iterable[str]) -> list[str]:
    chosen = list(events)
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown or not chosen:
        raise ValidationFailed(
            f"events must be a non-empty subset of {', '.join(EVENTS)}"
            + (f" (unknown: {', '.join(map(str, unknown))})" if unknown else ""),
            field="events",
        )
    return [e for e in EVENTS if e in chosen]


def _validate_name(name: str) -> str:
    value = name.strip()
    if not value or len(value) > 200:
        raise ValidationFailed("name must have 1 to 200 characters", field="name")
    return value


def _snapshot(hook: OutgoingWebhook) -> dict[str, Any]:
    data = audit.snapshot(hook)
    data.pop("secret_encrypted", None)
    return data


def _check_name_free(session: Session, *, team_id: int, name: str, hook_id: int | None) -> None:
    query = select(OutgoingWebhook).where(OutgoingWebhook.team_id == team_id, OutgoingWebhook.name == name)
    other = session.exec(query).first()
    if other is not None and other.id != hook_id:
        raise Conflict(f"team {team_id} already has an outgoing webhook named {name!r}", field="name")


def _encrypt(secret: str) -> str:
    return encrypt_secret(secret)


def list_webhooks(session: Session, *, team_ids: Collection[int] | None) -> list[OutgoingWebhook]:
    """Outgoing webhooks of `team_ids` (every team when None), by team then name."""
    query = select(OutgoingWebhook).order_by(col(OutgoingWebhook.team_id), col(OutgoingWebhook.name))
    if team_ids is not None:
        query = query.where(col(OutgoingWebhook.team_id).in_(list(team_ids)))
    return list(session.exec(query).all())


def create_webhook(
    session: Session,
    *,
    team_id: int,
    name: str,
    url: str,
    events: Iterable[str],
    enabled: bool = True,
    actor_user_id: int | None = None,
) -> tuple[OutgoingWebhook, str]:
    """Create a subscription and return it with its signing secret (shown once, stored encrypted)."""
    clean_name = _validate_name(name)
    hook = OutgoingWebhook(
        team_id=team_id,
        name=clean_name,
        url=validate_target_url(url),
        events=_validate_events(events),
        enabled=enabled,
    )
    _check_name_free(session, team_id=team_id, name=clean_name, hook_id=None)
    secret = new_token("whsec")
    hook.secret_encrypted = _encrypt(secret)
    session.add(hook)
    session.flush()
    audit.record(
        session,
        action="outgoing_webhook.create",
        entity_type="outgoing_webhook",
        entity_id=hook.id,
        team_id=team_id,
        after=_snapshot(hook),
        actor_user_id=actor_user_id,
    )
    return hook, secret


def update_webhook(
    session: Session, *, hook: OutgoingWebhook, changes: Mapping[str, Any], actor_user_id: int | None = None
) -> OutgoingWebhook:
    """Apply changes to name, url, events or enabled, with an audit entry."""
    unknown = set(changes) - _PATCHABLE
    if unknown:
        raise ValidationFailed(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    before = _snapshot(hook)
    for name, value in changes.items():
        if value is None:
            raise ValidationFailed(f"{name} must not be null", field=name)
    # Everything is checked before the row changes, so a refusal leaves it untouched.
    clean: dict[str, Any] = {}
    if "name" in changes:
        clean["name"] = _validate_name(changes["name"])
        _check_name_free(session, team_id=hook.team_id, name=clean["name"], hook_id=hook.id)
    if "url" in changes:
        clean["url"] = validate_target_url(changes["url"])
    if "events" in changes:
        clean["events"] = _validate_events(changes["events"])
    if "enabled" in changes:
        clean["enabled"] = bool(changes["enabled"])
    for name, value in clean.items():
        setattr(hook, name, value)
    session.add(hook)
    session.flush()
    audit.record(
        session,
        action="outgoing_webhook.update",
        entity_type="outgoing_webhook",
        entity_id=hook.id,
        team_id=hook.team_id,
        before=before,
        after=_snapshot(hook),
        actor_user_id=actor_user_id,
    )
    return hook


def rotate_secret(session: Session, *, hook: OutgoingWebhook, actor_user_id: int | None = None) -> str:
    """Issue a new signing secret (the old one stops being used at once) and return it."""
    secret = new_token("whsec")
    hook.secret_encrypted = _encrypt(secret)
    session.add(hook)
    audit.record(
        session,
        action="outgoing_webhook.rotate_secret",
        entity_type="outgoing_webhook",
        entity_id=hook.id,
        team_id=hook.team_id,
        actor_user_id=actor_user_id,
    )
    return secret


def delete_webhook(session: Session, *, hook: OutgoingWebhook, actor_user_id: int | None = None) -> None:
    """Delete a subscription."""
    audit.record(
        session,
        action="outgoing_webhook.delete",
        entity_type="outgoing_webhook",
        entity_id=hook.id,
        team_id=hook.team_id,
        before=_snapshot(hook),
        actor_user_id=actor_user_id,
    )
    session.delete(hook)


def subscriptions_for(session: Session, *, team_ids: Collection[int], event: str) -> list[OutgoingWebhook]:
    """Enabled webhooks of `team_ids` subscribed to `event` ("fired", "acknowledged", ...), by id."""
    if event not in EVENTS:
        raise ValueError(f"unknown outgoing webhook event {event!r}; expected one of {EVENTS}")
    if not team_ids:
        return []
    # A team has a handful of hooks; filtering the JSON list here avoids per-backend JSON operators.
    rows = session.exec(
        select(OutgoingWebhook)
        .where(col(OutgoingWebhook.team_id).in_(list(team_ids)), col(OutgoingWebhook.enabled).is_(True))
        .order_by(col(OutgoingWebhook.id))
    ).all()
    return [hook for hook in rows if event in (hook.events or [])]


def secret_of(hook: OutgoingWebhook) -> str:
    """The webhook's HMAC signing secret in clear text (for the dispatcher only)."""
    if not hook.secret_encrypted:
        raise RuntimeError(f"outgoing webhook {hook.id} has no signing secret; rotate it")
    return decrypt_secret(hook.secret_encrypted, what="outgoing webhook secret")
