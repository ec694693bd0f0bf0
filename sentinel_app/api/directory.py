"""REST for teams, users and memberships."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from sentinel_app.api.deps import Principal, principal, read_db, write_db
from sentinel_app.api.errors import ApiError
from sentinel_app.api.schemas import Strict
from sentinel_app.models import Role, Team, TeamMembership, User
from sentinel_app.services import audit, teams, users

router = APIRouter(prefix="/api/v1", tags=["teams and users"])


class TeamIn(Strict):
    """A new team."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2_000)


class TeamOut(BaseModel):
    """A team."""

    id: int
    name: str
    slug: str
    description: str
    created_at: dt.datetime


class UserIn(Strict):
    """A new user."""

    email: str = Field(min_length=3, max_length=320)
    name: str = Field(min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=10, max_length=1_000)
    timezone: str = "UTC"
    is_admin: bool = False


class UserOut(BaseModel):
    """A user (never with credentials)."""

    id: int
    email: str
    name: str
    timezone: str
    is_admin: bool
    is_active: bool
    created_at: dt.datetime


class MembershipIn(Strict):
    """A role in a team."""

    role: Literal["admin", "responder", "viewer"]


class MembershipOut(BaseModel):
    """A user's role in a team."""

    team_id: int
    user_id: int
    role: str


@router.get("/teams", response_model=list[TeamOut])
def list_teams(who: Principal = Depends(principal), session: Session = Depends(read_db)) -> list[TeamOut]:
    """Teams the caller can see."""
    query = select(Team).order_by(col(Team.name))
    visible = who.visible_team_ids()
    if visible is not None:
        query = query.where(col(Team.id).in_(visible))
    return [TeamOut.model_validate(t, from_attributes=True) for t in session.exec(query)]


@router.post("/teams", response_model=TeamOut, status_code=201)
def create_team(
    body: TeamIn, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> TeamOut:
    """Create a team (installation administrators only)."""
    who.require("admin", None)
    team = teams.create_team(session, name=body.name, description=body.description, actor_user_id=who.user_id)
    return TeamOut.model_validate(team, from_attributes=True)


def _team(session: Session, who: Principal, team_id: int) -> Team:
    team = session.get(Team, team_id)
    who.require_visible(team_id if team else None, "read", what="team", ident=team_id, field="team_id")
    assert team is not None
    return team


@router.get("/teams/{team_id}", response_model=TeamOut)
def get_team(
    team_id: int, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> TeamOut:
    """One team."""
    return TeamOut.model_validate(_team(session, who, team_id), from_attributes=True)


@router.get("/teams/{team_id}/members", response_model=list[MembershipOut])
def list_members(
    team_id: int, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> list[MembershipOut]:
    """Members of a team with their roles."""
    _team(session, who, team_id)
    rows = session.exec(select(TeamMembership).where(TeamMembership.team_id == team_id))
    return [MembershipOut.model_validate(m, from_attributes=True) for m in rows]


@router.put("/teams/{team_id}/members/{user_id}", response_model=MembershipOut)
def set_member(
    team_id: int,
    user_id: int,
    body: MembershipIn,
    who: Principal = Depends(principal),
    session: Session = Depends(write_db),
) -> MembershipOut:
    """Add a user to a team or change their role (team administrators)."""
    _team(session, who, team_id)
    who.require("admin", team_id)
    if session.get(User, user_id) is None:
        raise ApiError(404, f"user {user_id} not found", field="user_id")
    membership = teams.set_membership(
        session, team_id=team_id, user_id=user_id, role=Role(body.role), actor_user_id=who.user_id
    )
    return MembershipOut.model_validate(membership, from_attributes=True)


@router.delete("/teams/{team_id}/members/{user_id}", status_code=204)
def remove_member(
    team_id: int, user_id: int, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> None:
    """Remove a user from a team (team administrators)."""
    _team(session, who, team_id)
    who.require("admin", team_id)
    membership = session.exec(
        select(TeamMembership).where(TeamMembership.team_id == team_id, TeamMembership.user_id == user_id)
    ).first()
    if membership is None:
        raise ApiError(404, f"user {user_id} is not a member of team {team_id}", field="user_id")
    audit.record(
        session,
        action="membership.delete",
        entity_type="team_membership",
        entity_id=membership.id,
        team_id=team_id,
        before=audit.snapshot(membership),
        actor_user_id=who.user_id,
    )
    session.delete(membership)


@router.get("/users", response_model=list[UserOut])
def list_users(who: Principal = Depends(principal), session: Session = Depends(read_db)) -> list[UserOut]:
    """Users sharing a team with the caller (everyone, for administrators)."""
    query = select(User).order_by(col(User.name))
    visible = who.visible_team_ids()
    if visible is not None:
        members = select(TeamMembership.user_id).where(col(TeamMembership.team_id).in_(visible))
        query = query.where(col(User.id).in_(members) | (User.id == who.user_id))
    return [UserOut.model_validate(u, from_attributes=True) for u in session.exec(query)]


@router.get("/users/me", response_model=UserOut)
def me(who: Principal = Depends(principal)) -> UserOut:
    """The caller."""
    return UserOut.model_validate(who.user, from_attributes=True)


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(
    body: UserIn, who: Principal = Depends(principal), session: Session = Depends(write_db)
) -> UserOut:
    """Create a user (installation administrators only)."""
    who.require("admin", None)
    user = users.create_user(
        session,
        email=body.email,
        name=body.name,
        password=body.password,
        timezone=body.timezone,
        is_admin=body.is_admin,
        actor_user_id=who.user_id,
    )
    return UserOut.model_validate(user, from_attributes=True)


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(
    user_id: int, who: Principal = Depends(principal), session: Session = Depends(read_db)
) -> UserOut:
    """One user."""
    visible = list_users(who, session)
    for user in visible:
        if user.id == user_id:
            return user
    raise ApiError(404, f"user {user_id} not found", field="user_id")
