"""REST for a team's outgoing webhooks (team administrators): the signing secret is shown once."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from sentinel_app.api.deps import Principal, principal, read_db, write_db
from sentinel_app.api.errors import ApiError
from sentinel_app.api.schemas import Strict
from sentinel_app.models import OutgoingWebhook
from sentinel_app.models.base import require_id
from sentinel_app.services import outgoing_webhooks as service

router = APIRouter(prefix="/api/v1/outgoing-webhooks", tags=["outgoing webhooks"])

MAX_ID = 2**63 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


class WebhookIn(Strict):
    """A new subscription: POST signed JSON to `url` on the chosen alert events."""

    team_id: BodyId
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=service.MAX_URL_LENGTH)
    # Checked by the service so that a bad event is reported as `events`, not `events[3]`.
    events: list[str] = Field(
        default_factory=lambda: list(service.EVENTS),
        max_length=len(service.EVENTS) * 2,
        description="any of fired, acknowledged, resolved, escalated (default: all)",
    )
    enabled: bool = True


class WebhookPatch(Strict):
    """Changes to a subscription; omitted fields stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, min_length=1, max_length=service.MAX_URL_LENGTH)
    events: list[str] | None = Field(default=None, max_length=len(service.EVENTS) * 2)
    enabled: bool | None = None


class WebhookOut(BaseModel):
    """A subscription (never its secret)."""

    id: int
    team_id: int
    name: str
    url: str
    events: list[str]
    enabled: bool
    has_secret: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookCreated(WebhookOut):
    """A new or re-keyed subscription with its signing secret, shown only in this response."""

    secret: str


def _out(hook: OutgoingWebhook) -> WebhookOut:
    return WebhookOut(
        id=require_id(hook),
        team_id=hook.team_id,
        name=hook.name,
        url=hook.url,
        events=list(hook.events),
        enabled=hook.enabled,
        has_secret=bool(hook.secret_encrypted),
        created_at=hook.created_at,
        updated_at=hook.updated_at,
    )


def _created(hook: OutgoingWebhook, secret: str) -> WebhookCreated:
    return WebhookCreated(**_out(hook).model_dump(), secret=secret)


def _hook(session: Session, who: Principal, webhook_id: int) -> OutgoingWebhook:
    hook = session.get(OutgoingWebhook, webhook_id)
    who.require_visible(
        hook.team_id if hook else None, "admin", what="outgoing webhook", ident=webhook_id, field="webhook_id"
    )
    assert hook is not None
    return hook


@router.get("", response_model=list[WebhookOut])
def list_webhooks(
    who: Principal = Depends(principal), session: Session = Depends(read_db), team_id: QueryId = None
) -> list[WebhookOut]:
    """Outgoing webhooks of the teams the caller administers."""
    if team_id is not None:
        who.require("admin", team_id)
        teams: list[int] | None = [team_id]
    elif who.can("admin", None):
        teams = None
    else:
        teams = [t for t in (who.visible_team_ids() or set()) if who.can("admin", t)]
        if not teams:
            raise ApiError(403, "outgoing webhooks are managed by team administrators")
    return [_out(h) for h in service.list_webhooks(session, team_ids=teams)]


@router.post("", response_model=WebhookCreated, status_code=201)
def create_webhook(
    body: WebhookIn, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> WebhookCreated:
    """Create a subscription; the response carries its signing secret, shown only now."""
    who.require("admin", body.team_id)
    hook, secret = service.create_webhook(
        session,
        team_id=body.team_id,
        name=body.name,
        url=body.url,
        events=body.events,
        enabled=body.enabled,
        actor_user_id=who.user_id,
    )
    return _created(hook, secret)


@router.get("/{webhook_id}", response_model=WebhookOut)
def get_webhook(
    webhook_id: PathId, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> WebhookOut:
    """One subscription."""
    return _out(_hook(session, who, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut)
def update_webhook(
    webhook_id: PathId,
    body: WebhookPatch,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> WebhookOut:
    """Change a subscription."""
    hook = _hook(session, who, webhook_id)
    service.update_webhook(
        session, hook=hook, changes=body.model_dump(exclude_unset=True), actor_user_id=who.user_id
    )
    return _out(hook)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookCreated)
def rotate_secret(
    webhook_id: PathId, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> WebhookCreated:
    """Issue a new signing secret (the old one stops being used) and show it once."""
    hook = _hook(session, who, webhook_id)
    secret = service.rotate_secret(session, hook=hook, actor_user_id=who.user_id)
    return _created(hook, secret)


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(
    webhook_id: PathId, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> None:
    """Delete a subscription."""
    hook = _hook(session, who, webhook_id)
    service.delete_webhook(session, hook=hook, actor_user_id=who.user_id)
