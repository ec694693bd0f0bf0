"""REST for integrations: create (returns the webhook URLs once), update, routes, rotate, delete."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from sentinel_app import ingest
from sentinel_app.api.deps import Principal, principal, read_db, write_db
from sentinel_app.api.errors import ApiError
from sentinel_app.api.schemas import Strict
from sentinel_app.models import EscalationPolicy, Integration, IntegrationRoute
from sentinel_app.services import integrations as service
from sentinel_app.settings import get_settings

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])

Kind = Literal["alertmanager", "grafana_alerting", "grafana", "pagerduty", "webhook", "formatted_webhook"]


class Grouping(Strict):
    """How repeat alerts fold: per alert fingerprint, or one alert per group (optionally by labels)."""

    mode: Literal["fingerprint", "group"] = "fingerprint"
    group_by: list[str] | None = Field(default=None, description="labels that split a group (mode group)")


class IntegrationIn(Strict):
    """A new integration."""

    team_id: int
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    description: str = Field(default="", max_length=2_000)
    default_escalation_policy_id: int | None = None
    grouping: Grouping = Field(default_factory=Grouping)
    signing_secret: str | None = Field(default=None, min_length=16, max_length=200)


class IntegrationPatch(Strict):
    """Changes to an integration; omitted fields stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2_000)
    enabled: bool | None = None
    default_escalation_policy_id: int | None = None
    grouping: Grouping | None = None
    slack_channel_id: str | None = Field(default=None, max_length=64)
    signing_secret: str | None = Field(default=None, max_length=200, description="empty string removes it")


class RouteIn(Strict):
    """A routing rule: all matchers must hold."""

    matchers: list[dict[str, Any]] = Field(default_factory=list)
    escalation_policy_id: int | None = None
    team_id: int | None = None


class RouteOut(BaseModel):
    """A stored routing rule."""

    position: int
    matchers: list[dict[str, Any]]
    escalation_policy_id: int | None
    team_id: int | None


class IntegrationOut(BaseModel):
    """An integration (its token is only shown when created or rotated)."""

    id: int
    team_id: int
    name: str
    kind: str
    description: str
    token_prefix: str
    enabled: bool
    default_escalation_policy_id: int | None
    grouping: dict[str, Any]
    slack_channel_id: str | None
    signed: bool
    last_received_at: dt.datetime | None
    created_at: dt.datetime


class IntegrationCreated(IntegrationOut):
    """A new or re-keyed integration with its token and every URL it can receive on."""

    token: str
    webhook_urls: dict[str, str]


def _out(integration: Integration) -> IntegrationOut:
    data = integration.model_dump()
    return IntegrationOut(**data, signed=bool(integration.signing_secret_encrypted))


def _created(integration: Integration, token: str) -> IntegrationCreated:
    urls = service.webhook_urls(base_url=get_settings().base_url, kind=integration.kind, token=token)
    return IntegrationCreated(**_out(integration).model_dump(), token=token, webhook_urls=urls)


def _grouping(grouping: Grouping | None) -> dict[str, Any]:
    value = (grouping or Grouping()).model_dump(exclude_none=True)
    ingest.validate_grouping(value)  # PayloadError → 422 naming grouping.group_by
    return value


def _check_policy(session: Session, team_id: int, policy_id: int | None, field: str) -> None:
    if policy_id is None:
        return
    policy = session.get(EscalationPolicy, policy_id)
    if policy is None or policy.team_id != team_id:
        raise ApiError(422, f"escalation policy {policy_id} does not exist in team {team_id}", field=field)


def _integration(session: Session, who: Principal, integration_id: int, action: str) -> Integration:
    integration = session.get(Integration, integration_id)
    team_id = integration.team_id if integration else None
    who.require_visible(team_id, action, what="integration", ident=integration_id, field="integration_id")
    assert integration is not None
    return integration


@router.get("", response_model=list[IntegrationOut])
def list_integrations(
    who: Principal = Depends(principal), session: Session = Depends(read_db), team_id: int | None = None
) -> list[IntegrationOut]:
    """Integrations the caller can see."""
    query = select(Integration).order_by(col(Integration.name))
    visible = who.visible_team_ids()
    if visible is not None:
        query = query.where(col(Integration.team_id).in_(visible))
    if team_id is not None:
        query = query.where(Integration.team_id == team_id)
    return [_out(i) for i in session.exec(query)]


@router.post("", response_model=IntegrationCreated, status_code=201)
def create_integration(
    body: IntegrationIn, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> IntegrationCreated:
    """Create an integration; the response carries its token and webhook URLs, shown only now."""
    who.require("admin", body.team_id)
    _check_policy(session, body.team_id, body.default_escalation_policy_id, "default_escalation_policy_id")
    integration, token = service.create_integration(
        session,
        team_id=body.team_id,
        name=body.name,
        kind=body.kind,
        default_escalation_policy_id=body.default_escalation_policy_id,
        grouping=body.grouping.model_dump(),
        actor_user_id=who.user_id,
    )
    integration.description = body.description
    if body.signing_secret:
        service.set_signing_secret(integration, body.signing_secret)
    session.add(integration)
    session.flush()
    return _created(integration, token)


@router.get("/{integration_id}", response_model=IntegrationOut)
def get_integration(
    integration_id: int, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> IntegrationOut:
    """One integration."""
    return _out(_integration(session, who, integration_id, "read"))


@router.patch("/{integration_id}", response_model=IntegrationOut)
def update_integration(
    integration_id: int,
    body: IntegrationPatch,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> IntegrationOut:
    """Change an integration."""
    integration = _integration(session, who, integration_id, "admin")
    changes = body.model_dump(exclude_unset=True)
    secret = changes.pop("signing_secret", None) if "signing_secret" in changes else ...
    if "grouping" in changes:
        changes["grouping"] = _grouping(body.grouping)
    if "default_escalation_policy_id" in changes:
        _check_policy(
            session,
            integration.team_id,
            changes["default_escalation_policy_id"],
            "default_escalation_policy_id",
        )
    service.update_integration(session, integration=integration, changes=changes, actor_user_id=who.user_id)
    if secret is not ...:
        service.set_signing_secret(integration, secret or None)
        session.add(integration)
    return _out(integration)


@router.post("/{integration_id}/rotate-token", response_model=IntegrationCreated)
def rotate_token(
    integration_id: int, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> IntegrationCreated:
    """Issue a new token (the old one stops working) and return the new URLs."""
    integration = _integration(session, who, integration_id, "admin")
    token = service.rotate_token(session, integration=integration, actor_user_id=who.user_id)
    return _created(integration, token)


@router.get("/{integration_id}/routes", response_model=list[RouteOut])
def list_routes(
    integration_id: int, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> list[RouteOut]:
    """The ordered routing rules."""
    _integration(session, who, integration_id, "read")
    rows = session.exec(
        select(IntegrationRoute)
        .where(IntegrationRoute.integration_id == integration_id)
        .order_by(col(IntegrationRoute.position))
    )
    return [RouteOut.model_validate(r, from_attributes=True) for r in rows]


@router.put("/{integration_id}/routes", response_model=list[RouteOut])
def replace_routes(
    integration_id: int,
    body: list[RouteIn],
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> list[RouteOut]:
    """Replace the routing rules; the first whose matchers all hold picks the policy (and team)."""
    integration = _integration(session, who, integration_id, "admin")
    for index, route in enumerate(body):
        target_team = route.team_id or integration.team_id
        if route.team_id is not None:
            who.require("write", route.team_id)
        _check_policy(session, target_team, route.escalation_policy_id, f"[{index}].escalation_policy_id")
    rows = service.replace_routes(
        session, integration=integration, routes=[r.model_dump() for r in body], actor_user_id=who.user_id
    )
    return [RouteOut.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/{integration_id}", status_code=204)
def delete_integration(
    integration_id: int, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> None:
    """Delete an integration (its alerts are kept)."""
    integration = _integration(session, who, integration_id, "admin")
    service.delete_integration(session, integration=integration, actor_user_id=who.user_id)
