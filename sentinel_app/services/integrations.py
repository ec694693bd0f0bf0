"""Integrations: inbound alert sources with secret tokens and their webhook URLs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from sentinel_app.domain.routing import MatcherError, validate_matchers
from sentinel_app.models import Integration, IntegrationKind, IntegrationRoute
from sentinel_app.models.base import require_id
from sentinel_app.security import decrypt_secret, encrypt_secret, hash_token, new_token, token_prefix
from sentinel_app.services import audit
from sentinel_app.services.errors import ValidationFailed

# Grafana OnCall's path names, so a migrating team only changes the host name.
ONCALL_PATHS = {
    IntegrationKind.ALERTMANAGER: "alertmanager",
    IntegrationKind.GRAFANA_ALERTING: "grafana_alerting",
    IntegrationKind.GRAFANA: "grafana",
    IntegrationKind.WEBHOOK: "webhook",
    IntegrationKind.FORMATTED_WEBHOOK: "formatted_webhook",
}


def webhook_urls(*, base_url: str, kind: str, token: str) -> dict[str, str]:
    """Every URL senders can post to with this token.

    `url` is the URL for the integration's own kind; the path's kind picks the payload
    format, so the same token also works for every other sender kind listed.
    """
    base = base_url.rstrip("/")
    urls = {"url": f"{base}/api/v1/webhooks/{kind}/{token}"}
    oncall = ONCALL_PATHS.get(IntegrationKind(kind))
    if oncall:
        urls["grafana_oncall"] = f"{base}/integrations/v1/{oncall}/{token}/"
    for other in IntegrationKind:
        urls[other.value] = f"{base}/api/v1/webhooks/{other.value}/{token}"
    # Events API v2 senders put the token in `routing_key` and post here.
    urls["pagerduty_events_v2"] = f"{base}/api/v1/webhooks/pagerduty/enqueue"
    return urls


def create_integration(
    session: Session,
    *,
    team_id: int,
    name: str,
    kind: str,
    default_escalation_policy_id: int | None = None,
    grouping: dict[str, Any] | None = None,
    token: str | None = None,
    actor_user_id: int | None = None,
) -> tuple[Integration, str]:
    """Create an integration and return it with its token (shown once, stored hashed)."""
    if kind not in set(IntegrationKind):
        raise ValidationFailed(f"unknown integration kind {kind!r}", field="kind")
    if not name.strip():
        raise ValidationFailed("name must not be empty", field="name")
    secret = token or new_token("it")
    integration = Integration(
        team_id=team_id,
        name=name.strip(),
        kind=kind,
        token_prefix=token_prefix(secret),
        token_hash=hash_token(secret),
        default_escalation_policy_id=default_escalation_policy_id,
        grouping=grouping or {"mode": "fingerprint"},
    )
    session.add(integration)
    session.flush()
    audit.record(
        session,
        action="integration.create",
        entity_type="integration",
        entity_id=integration.id,
        team_id=team_id,
        after=audit.snapshot(integration),
        actor_user_id=actor_user_id,
    )
    return integration, secret


def set_signing_secret(integration: Integration, secret: str | None) -> None:
    """Require (or, with None, stop requiring) an HMAC-SHA256 signature on this integration's requests."""
    forget_cached()
    # The HMAC key must be recoverable to verify signatures, so it is encrypted, not hashed.
    integration.signing_secret_encrypted = encrypt_secret(secret) if secret else None


def signing_secret(integration: Integration) -> str | None:
    """The integration's HMAC key, or None when signatures are not required."""
    if not integration.signing_secret_encrypted:
        return None
    return decrypt_secret(integration.signing_secret_encrypted, what="integration signing secret")


def update_integration(
    session: Session, *, integration: Integration, changes: dict[str, Any], actor_user_id: int | None = None
) -> Integration:
    """Apply changes (name, description, enabled, default policy, grouping, slack channel) with an audit entry."""
    forget_cached()
    before = audit.snapshot(integration)
    for name, value in changes.items():
        setattr(integration, name, value)
    session.add(integration)
    session.flush()
    audit.record(
        session,
        action="integration.update",
        entity_type="integration",
        entity_id=integration.id,
        team_id=integration.team_id,
        before=before,
        after=audit.snapshot(integration),
        actor_user_id=actor_user_id,
    )
    return integration


def rotate_token(session: Session, *, integration: Integration, actor_user_id: int | None = None) -> str:
    """Issue a new token; the old one stops working at once."""
    forget_cached()
    secret = new_token("it")
    integration.token_prefix, integration.token_hash = token_prefix(secret), hash_token(secret)
    session.add(integration)
    audit.record(
        session,
        action="integration.rotate_token",
        entity_type="integration",
        entity_id=integration.id,
        team_id=integration.team_id,
        actor_user_id=actor_user_id,
    )
    return secret


def replace_routes(
    session: Session,
    *,
    integration: Integration,
    routes: list[dict[str, Any]],
    actor_user_id: int | None = None,
) -> list[IntegrationRoute]:
    """Replace the ordered routing rules of an integration."""
    forget_cached()
    assert integration.id is not None
    existing = session.exec(
        select(IntegrationRoute).where(IntegrationRoute.integration_id == integration.id)
    ).all()
    before = {"routes": [audit.snapshot(r) for r in existing]}
    for row in existing:
        session.delete(row)
    session.flush()
    created = []
    for position, route in enumerate(routes):
        try:
            matchers = validate_matchers(route.get("matchers", []), field=f"routes[{position}].matchers")
        except MatcherError as exc:
            raise ValidationFailed(exc.message, field=exc.field) from None
        row = IntegrationRoute(
            integration_id=integration.id,
            position=position,
            matchers=matchers,
            escalation_policy_id=route.get("escalation_policy_id"),
            team_id=route.get("team_id"),
        )
        session.add(row)
        created.append(row)
    session.flush()
    audit.record(
        session,
        action="integration.routes",
        entity_type="integration",
        entity_id=integration.id,
        team_id=integration.team_id,
        before=before,
        after={"routes": [audit.snapshot(r) for r in created]},
        actor_user_id=actor_user_id,
    )
    return created


def delete_integration(
    session: Session, *, integration: Integration, actor_user_id: int | None = None
) -> None:
    """Delete an integration; its alerts stay, detached from it."""
    forget_cached()
    audit.record(
        session,
        action="integration.delete",
        entity_type="integration",
        entity_id=integration.id,
        team_id=integration.team_id,
        before=audit.snapshot(integration),
        actor_user_id=actor_user_id,
    )
    session.delete(integration)


# Webhook requests look their integration up by token; caching it (and its routing rules) for a
# few seconds removes a database round trip per request. Changes made in this process clear the
# cache at once; another process sees a change within CACHE_TTL_S.
CACHE_TTL_S = 5.0


@dataclass
class CachedIntegration:
    """An integration as webhook requests need it: the row, its routes, and when it last received."""

    integration: Integration
    routes: list[IntegrationRoute]
    expires: float


_cache: dict[tuple[str, str], CachedIntegration] = {}
_cache_lock = threading.Lock()


def routes_of(session: Session, *, integration_id: int) -> list[IntegrationRoute]:
    """An integration's routing rules in order."""
    return list(
        session.exec(
            select(IntegrationRoute)
            .where(IntegrationRoute.integration_id == integration_id)
            .order_by(col(IntegrationRoute.position))
        ).all()
    )


def forget_cached() -> None:
    """Drop every cached integration (after any integration change)."""
    with _cache_lock:
        _cache.clear()


def _fresh(key: tuple[str, str], now: float) -> CachedIntegration | None:
    with _cache_lock:
        hit = _cache.get(key)
    return hit if hit is not None and hit.expires > now else None


def cached_by_token(engine: sa.Engine, token: str) -> CachedIntegration | None:
    """What `lookup_by_token` would answer from memory; None where it would ask the database."""
    return _fresh((str(engine.url), hash_token(token)), time.monotonic())


def lookup_by_token(engine: sa.Engine, token: str) -> CachedIntegration | None:
    """The integration owning `token` with its routing rules, from a short-lived cache."""
    key = (str(engine.url), hash_token(token))
    now = time.monotonic()
    hit = _fresh(key, now)
    if hit is not None:
        return hit
    with Session(engine, expire_on_commit=False) as session:
        integration = session.exec(select(Integration).where(Integration.token_hash == key[1])).first()
        if integration is None:
            return None
        routes = routes_of(session, integration_id=require_id(integration))
        session.expunge_all()
    entry = CachedIntegration(integration=integration, routes=routes, expires=now + CACHE_TTL_S)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = entry
    return entry
