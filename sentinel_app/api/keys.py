"""REST for API keys (secret shown once) and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import Session, col, or_, select

from sentinel_app.api.deps import Principal, principal, read_db, write_db
from sentinel_app.api.errors import ApiError
from sentinel_app.api.schemas import Strict
from sentinel_app.db import utcnow
from sentinel_app.models import ApiKey, AuditEntry
from sentinel_app.services import api_keys

router = APIRouter(prefix="/api/v1", tags=["API keys and audit"])


class ApiKeyIn(Strict):
    """A new API key for the caller."""

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Literal["read", "write", "admin", "wall"]] = Field(
        min_length=1, description='"wall" alone makes a NOC wall display key (administrators only)'
    )
    team_id: int | None = Field(default=None, description="limit the key to one team")
    expires_at: dt.datetime | None = None


class ApiKeyOut(BaseModel):
    """An API key (never its secret)."""

    id: int
    name: str
    prefix: str
    scopes: list[str]
    user_id: int
    team_id: int | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyCreated(ApiKeyOut):
    """A new key with its secret, shown only in this response."""

    secret: str


class AuditOut(BaseModel):
    """An audit entry."""

    id: int
    actor_user_id: int | None
    actor_api_key_id: int | None
    action: str
    entity_type: str
    entity_id: str
    team_id: int | None
    before: dict[str, Any]
    after: dict[str, Any]
    created_at: dt.datetime


@router.get("/api-keys", response_model=list[ApiKeyOut])
def list_keys(who: Principal = Depends(principal), session: Session = Depends(read_db)) -> list[ApiKeyOut]:
    """The caller's keys (every key, for installation administrators)."""
    query = select(ApiKey).order_by(col(ApiKey.id))
    if not who.can("admin", None):
        query = query.where(ApiKey.user_id == who.user_id)
    return [ApiKeyOut.model_validate(k, from_attributes=True) for k in session.exec(query)]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
def create_key(
    body: ApiKeyIn, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> ApiKeyCreated:
    """Issue a key acting as the caller, with at most the caller's own scopes."""
    if api_keys.WALL_SCOPE in body.scopes:
        # A wall key shows the alerts of its team (or all the owner's teams) on a screen: admins only.
        who.require("admin", body.team_id)
    for scope in body.scopes:
        if scope != api_keys.WALL_SCOPE and not who.has_scope(scope):
            raise ApiError(403, f"cannot grant scope {scope!r} with a key that lacks it", field="scopes")
    if body.team_id is not None:
        who.require("read", body.team_id)
    if body.expires_at is not None and (body.expires_at.tzinfo is None or body.expires_at <= utcnow()):
        raise ApiError(422, "expires_at must be a future instant with a timezone", field="expires_at")
    key, secret = api_keys.issue_key(
        session,
        user_id=who.user_id,
        name=body.name,
        scopes=list(body.scopes),
        team_id=body.team_id,
        actor_user_id=who.user_id,
    )
    key.expires_at = body.expires_at
    session.add(key)
    session.flush()
    return ApiKeyCreated(**ApiKeyOut.model_validate(key, from_attributes=True).model_dump(), secret=secret)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
def revoke_key(
    key_id: int, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> ApiKeyOut:
    """Revoke a key (your own, or any as an installation administrator)."""
    key = session.get(ApiKey, key_id)
    if key is None or (key.user_id != who.user_id and not who.can("admin", None)):
        raise ApiError(404, f"API key {key_id} not found", field="key_id")
    api_keys.revoke_key(session, key=key, now=utcnow(), actor_user_id=who.user_id)
    return ApiKeyOut.model_validate(key, from_attributes=True)


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    who: Principal = Depends(principal),
    session: Session = Depends(read_db),
    entity_type: str | None = None,
    entity_id: str | None = None,
    team_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: int | None = None,
) -> list[AuditOut]:
    """Configuration changes, newest first (installation admins: all; team admins: their teams)."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if not who.can("admin", None):
        admin_teams = [t for t in who.roles if who.can("admin", t)]
        if not admin_teams:
            raise ApiError(403, "the audit log is for administrators")
        query = query.where(
            or_(col(AuditEntry.team_id).in_(admin_teams), AuditEntry.actor_user_id == who.user_id)
        )
    if entity_type:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    if team_id is not None:
        query = query.where(AuditEntry.team_id == team_id)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    return [AuditOut.model_validate(e, from_attributes=True) for e in session.exec(query)]
