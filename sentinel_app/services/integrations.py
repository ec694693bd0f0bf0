"""Integrations: inbound alert sources with secret tokens and their webhook URLs."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from sentinel_app.models import Integration, IntegrationKind
from sentinel_app.security import hash_token, new_token, token_prefix
from sentinel_app.services import audit
from sentinel_app.services.errors import ValidationFailed

# Grafana OnCall's path names, so a migrating team only changes the host name.
_ONCALL_PATHS = {
    IntegrationKind.ALERTMANAGER: "alertmanager",
    IntegrationKind.GRAFANA_ALERTING: "grafana_alerting",
    IntegrationKind.GRAFANA: "grafana",
    IntegrationKind.WEBHOOK: "webhook",
    IntegrationKind.FORMATTED_WEBHOOK: "formatted_webhook",
}


def webhook_urls(*, base_url: str, kind: str, token: str) -> dict[str, str]:
    """Every URL a sender of this kind can post to."""
    base = base_url.rstrip("/")
    urls = {"webhook": f"{base}/api/v1/webhooks/{kind}/{token}"}
    if kind == IntegrationKind.PAGERDUTY:
        # Events API v2 senders put the integration token in `routing_key`.
        urls["events_v2"] = f"{base}/api/v1/webhooks/pagerduty/enqueue"
    oncall = _ONCALL_PATHS.get(IntegrationKind(kind))
    if oncall:
        urls["grafana_oncall"] = f"{base}/integrations/v1/{oncall}/{token}/"
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
