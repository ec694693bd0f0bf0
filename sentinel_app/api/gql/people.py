"""People: the caller, users, teams and memberships, login sessions and push devices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ariadne import MutationType, ObjectType, QueryType
from graphql import GraphQLResolveInfo
from sqlmodel import col, select

from sentinel_app.api.errors import ApiError
from sentinel_app.api.gql import access
from sentinel_app.api.gql.context import atomic, ctx
from sentinel_app.api.gql.errors import bad_input
from sentinel_app.api.gql.scalars import parse_id, text_arg
from sentinel_app.db import session_scope
from sentinel_app.models import PushDevice, Team, TeamMembership, User
from sentinel_app.models.base import require_id

query = QueryType()
mutation = MutationType()
user_type = ObjectType("User")
team_type = ObjectType("Team")
membership_type = ObjectType("Membership")
device_type = ObjectType("PushDevice")


@query.field("me")
def resolve_me(_: Any, info: GraphQLResolveInfo) -> User:
    """The caller."""
    return ctx(info).principal.user


@query.field("users")
def resolve_users(_: Any, info: GraphQLResolveInfo) -> list[User]:
    """Users sharing a team with the caller (all of them for installation administrators)."""
    context = ctx(info)
    principal = context.principal
    stmt = select(User).order_by(col(User.name), col(User.id))
    visible = principal.visible_team_ids()
    if visible is not None:
        members = select(TeamMembership.user_id).where(col(TeamMembership.team_id).in_(sorted(visible)))
        stmt = stmt.where(col(User.id).in_(members) | (col(User.id) == principal.user_id))
    rows = list(context.db(lambda s: s.exec(stmt).all()))
    for row in rows:
        context.loaders.users.prime(require_id(row), row)
    context.loaders.user_memberships.hint(require_id(r) for r in rows)
    return rows


@query.field("teams")
def resolve_teams(_: Any, info: GraphQLResolveInfo) -> list[Team]:
    """Teams the caller can see."""
    context = ctx(info)
    stmt = select(Team).order_by(col(Team.name))
    visible = context.principal.visible_team_ids()
    if visible is not None:
        stmt = stmt.where(col(Team.id).in_(sorted(visible)))
    rows = list(context.db(lambda s: s.exec(stmt).all()))
    for row in rows:
        context.loaders.teams.prime(require_id(row), row)
    context.loaders.team_members.hint(require_id(r) for r in rows)
    return rows


@user_type.field("memberships")
def resolve_memberships(user: User, info: GraphQLResolveInfo) -> list[TeamMembership]:
    """The user's roles, limited to teams the caller can see."""
    context = ctx(info)
    visible = context.principal.visible_team_ids()
    rows = context.loaders.user_memberships.get(require_id(user))
    return [m for m in rows if visible is None or m.team_id in visible]


@user_type.field("devices")
def resolve_devices(user: User, info: GraphQLResolveInfo) -> list[PushDevice]:
    """The caller's own devices (every user's, for installation administrators)."""
    principal = ctx(info).principal
    if user.id != principal.user_id and not (principal.user.is_admin and principal.key_team_id is None):
        raise ApiError(403, "only the device owner (or an installation administrator) sees devices")
    return ctx(info).loaders.user_devices.get(require_id(user))


@team_type.field("members")
def resolve_members(team: Team, info: GraphQLResolveInfo) -> list[TeamMembership]:
    """Members with their roles."""
    return ctx(info).loaders.team_members.get(require_id(team))


@membership_type.field("team")
def resolve_membership_team(row: TeamMembership, info: GraphQLResolveInfo) -> Any:
    """The team."""
    return ctx(info).loaders.teams.get(row.team_id)


@membership_type.field("user")
def resolve_membership_user(row: TeamMembership, info: GraphQLResolveInfo) -> Any:
    """The member."""
    return ctx(info).loaders.users.get(row.user_id)


# --- sessions --------------------------------------------------------------------------------


@mutation.field("login")
def resolve_login(
    _: Any, info: GraphQLResolveInfo, email: str, password: str, client: str | None = None
) -> dict[str, Any]:
    """Sign in with email and password (services/sessions.py); needs no credential."""
    from sentinel_app.services import sessions

    context = ctx(info)
    label = text_arg(client, "client", max_length=32) or "app"
    connection = context.connection
    # The sessions service commits failed attempts (they feed its rate limit), so it gets a
    # transaction of its own; whatever earlier fields of this operation did is committed first.
    context.write_session().commit()
    with session_scope(write=True, engine=context.engine) as session:
        row, token = sessions.login(
            session,
            email=email,
            password=password,
            client=label,
            user_agent=connection.headers.get("user-agent", ""),
            now=context.now,
            address=connection.client.host if connection.client else "",
        )
        user = session.get(User, row.user_id)
    return {"token": token, "expires_at": row.expires_at, "user": user}


@mutation.field("logout")
@atomic
def resolve_logout(_: Any, info: GraphQLResolveInfo) -> bool:
    """Revoke the session token of this request (API keys are revoked through the REST API)."""
    from sentinel_app.services import sessions

    context = ctx(info)
    _ = context.principal  # UNAUTHENTICATED without a valid credential
    token = access.bearer_token(context.authorization)
    if context.credential is None or context.credential.session_id is None or token is None:
        raise bad_input("logout ends a login session; this request used an API key", "Authorization")
    return sessions.logout(context.write_session(), token=token, now=context.now)


# --- push devices ----------------------------------------------------------------------------


@mutation.field("registerDevice")
@atomic
def resolve_register_device(
    _: Any,
    info: GraphQLResolveInfo,
    platform: str,
    token: str,
    name: str | None = None,
    app_version: str | None = None,
) -> PushDevice:
    """Register (or move to the caller) a push token."""
    from sentinel_app.services import devices  # owned by the people work; imported when used

    context = ctx(info)
    principal = context.principal
    access.require_personal_write(principal)
    return devices.register_device(
        context.write_session(),
        user_id=principal.user_id,
        platform=platform,
        token=token,
        name=name or "",
        app_version=app_version or "",
        now=context.now,
    )


@mutation.field("unregisterDevice")
@atomic
def resolve_unregister_device(_: Any, info: GraphQLResolveInfo, device_id: str) -> bool:
    """Stop pushing to one of the caller's devices."""
    from sentinel_app.services import devices

    context = ctx(info)
    principal = context.principal
    access.require_personal_write(principal)
    devices.unregister_device(
        context.write_session(),
        user_id=principal.user_id,
        device_id=parse_id(device_id, "deviceId"),
        now=context.now,
    )
    return True


@device_type.field("tokenHint")
def resolve_token_hint(device: PushDevice, _: GraphQLResolveInfo) -> str:
    """The end of the push token, to tell devices apart."""
    from sentinel_app.services import devices

    return devices.token_hint(device)


bindables: Sequence[Any] = (query, mutation, user_type, team_type, membership_type, device_type)
