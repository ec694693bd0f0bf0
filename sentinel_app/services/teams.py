"""Teams and memberships with roles."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from sentinel_app.models import Role, Team, TeamMembership
from sentinel_app.services import audit
from sentinel_app.services.errors import Conflict, ValidationFailed


def slugify(name: str) -> str:
    """A URL-safe slug for a team name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "team"


def get_by_slug(session: Session, *, slug: str) -> Team | None:
    """The team with this slug, if any."""
    return session.exec(select(Team).where(Team.slug == slug)).first()


def create_team(
    session: Session, *, name: str, description: str = "", actor_user_id: int | None = None
) -> Team:
    """Create a team with a unique slug derived from its name."""
    if not name.strip():
        raise ValidationFailed("name must not be empty", field="name")
    slug = slugify(name)
    if get_by_slug(session, slug=slug) is not None:
        raise Conflict(f"a team named {name!r} already exists", field="name")
    team = Team(name=name.strip(), slug=slug, description=description)
    session.add(team)
    session.flush()
    audit.record(
        session,
        action="team.create",
        entity_type="team",
        entity_id=team.id,
        team_id=team.id,
        after=audit.snapshot(team),
        actor_user_id=actor_user_id,
    )
    return team


def set_membership(
    session: Session, *, team_id: int, user_id: int, role: Role, actor_user_id: int | None = None
) -> TeamMembership:
    """Add a user to a team or change their role there."""
    if role not in set(Role):
        raise ValidationFailed(f"unknown role {role!r}", field="role")
    membership = session.exec(
        select(TeamMembership).where(TeamMembership.team_id == team_id, TeamMembership.user_id == user_id)
    ).first()
    before = audit.snapshot(membership)
    if membership is None:
        membership = TeamMembership(team_id=team_id, user_id=user_id, role=role)
    else:
        membership.role = role
    session.add(membership)
    session.flush()
    audit.record(
        session,
        action="membership.set",
        entity_type="team_membership",
        entity_id=membership.id,
        team_id=team_id,
        before=before,
        after=audit.snapshot(membership),
        actor_user_id=actor_user_id,
    )
    return membership
