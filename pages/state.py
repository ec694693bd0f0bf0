"""Who is signed in, and how page states read the database and act as that person.

* `AuthState` keeps the session token in a cookie (`sentinel_session`, 30 days, SameSite=Strict)
  and what the top bar shows (name, admin flag, team roles). Those fields are for display only.
* Every handler that changes something calls `perform(self, action)`: it resolves the cookie's
  token against the database *at that moment* (`services.sessions.resolve`), builds the same
  `Principal` the REST API uses (team roles from `TeamMembership`, installation admins from
  `User.is_admin`), and runs `action(session, principal, actor)` in a write transaction. The
  action calls `principal.require(...)` / `require_visible(...)` before any service, exactly as
  the REST routes do, so a viewer is refused by the server whatever the page shows.
* `require_login` is the `on_load` guard of signed-in pages: it redirects to `/login?next=…`.
* `in_db(fn)` runs read code in a worker thread so the event loop (and every other tab) never
  waits for the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import reflex as rx
import sqlalchemy as sa
from reflex_base.event import EventSpec
from sqlmodel import Session, col, select

from sentinel_app.api.deps import Principal
from sentinel_app.api.errors import ApiError
from sentinel_app.db import session_scope, utcnow
from sentinel_app.models import ApiKey, Team, TeamMembership, User
from sentinel_app.security import hash_token
from sentinel_app.services import api_keys, sessions
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import ServiceError

log = logging.getLogger(__name__)

T = TypeVar("T")

SESSION_COOKIE = "sentinel_session"
# The scopes of a signed-in person: everything their roles allow (as GraphQL sessions).
SESSION_SCOPES = frozenset({"read", "write", "admin"})
WALL_SCOPES = frozenset({"read"})


def engine() -> sa.Engine:
    """The process's database engine."""
    from sentinel_app.runtime import get_runtime

    return get_runtime().engine


def _run(fn: Callable[[Session], T], write: bool) -> T:
    with session_scope(write=write, engine=engine()) as session:
        return fn(session)


async def in_db(fn: Callable[[Session], T], *, write: bool = False) -> T:
    """Run `fn(session)` in a worker thread inside a transaction (committed when it returns)."""
    return await asyncio.to_thread(_run, fn, write)


def _roles(session: Session, user_id: int) -> dict[int, str]:
    rows = session.exec(select(TeamMembership).where(TeamMembership.user_id == user_id))
    return {m.team_id: m.role for m in rows}


def principal_for_session(token: str, now: dt.datetime) -> Principal | None:
    """The signed-in person behind a session token, as a Principal (None: not signed in)."""
    if not token:
        return None
    with session_scope(engine=engine()) as session:
        row = sessions.session_of(session, token=token, now=now)
        if row is None:
            return None
        stale = row.last_seen_at is None or now - row.last_seen_at >= sessions.SEEN_GRANULARITY
        if not stale:
            user = session.get(User, row.user_id)
            if user is None or not user.is_active:
                return None
            return Principal(user=user, scopes=SESSION_SCOPES, roles=_roles(session, row.user_id))
    # Sliding the expiry writes: take the write lock only in this (once a minute) case.
    with session_scope(write=True, engine=engine()) as session:
        user = sessions.resolve(session, token=token, now=now)
        if user is None:
            return None
        return Principal(user=user, scopes=SESSION_SCOPES, roles=_roles(session, int(user.id or 0)))


def principal_for_wall_key(token: str, now: dt.datetime) -> Principal | None:
    """A read-only Principal for a NOC wall key (an API key whose only scope is "wall")."""
    if not token:
        return None
    with session_scope(engine=engine()) as session:
        key = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_token(token))).first()
        if (
            key is None
            or key.scopes != [api_keys.WALL_SCOPE]
            or key.revoked_at is not None
            or (key.expires_at is not None and key.expires_at <= now)
        ):
            return None
        user = session.get(User, key.user_id)
        if user is None or not user.is_active:
            return None
        principal = Principal(
            user=user,
            scopes=WALL_SCOPES,
            roles=_roles(session, key.user_id),
            api_key_id=key.id,
            key_team_id=key.team_id,
        )
        stale = key.last_used_at is None or now - key.last_used_at > dt.timedelta(minutes=1)
    if stale:
        # A write of its own, with the write lock taken up front: upgrading the read transaction
        # above could fail at once with SQLITE_BUSY while another connection writes.
        with session_scope(write=True, engine=engine()) as writer:
            writer.execute(sa.update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now))
    return principal


def actor_of(principal: Principal) -> Actor:
    """The author of changes made from the dashboard (timelines say "web")."""
    return Actor(user_id=principal.user_id, label=principal.user.name, channel="web")


class ActionRefused(Exception):
    """A change the server refused (not signed in, not allowed, conflict, bad input)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _perform(token: str, action: Callable[[Session, Principal, Actor], T]) -> T:
    principal = principal_for_session(token, utcnow())
    if principal is None:
        raise ActionRefused("your session has ended: sign in again", 401)
    try:
        with session_scope(write=True, engine=engine()) as session:
            return action(session, principal, actor_of(principal))
    except ApiError as exc:
        raise ActionRefused(exc.message, exc.status) from None
    except ServiceError as exc:
        raise ActionRefused(exc.message, exc.status) from None


async def perform(state: rx.State, action: Callable[[Session, Principal, Actor], T]) -> T:
    """Run a change as the signed-in person; ActionRefused when the server says no.

    `action(session, principal, actor)` must check permissions itself (`principal.require…`)
    before calling a service; it runs in one write transaction, committed when it returns.
    """
    auth = await state.get_state(AuthState)
    return await asyncio.to_thread(_perform, auth.session_token, action)


async def viewer(state: rx.State) -> Principal | None:
    """The signed-in person for reads (None: not signed in)."""
    auth = await state.get_state(AuthState)
    return await asyncio.to_thread(principal_for_session, auth.session_token, utcnow())


@dataclass(frozen=True)
class TeamRole:
    """A team of the signed-in person and their role there."""

    team_id: int
    name: str
    role: str


def _team_roles(principal: Principal) -> list[TeamRole]:
    with session_scope(engine=engine()) as session:
        if principal.user.is_admin:
            rows = session.execute(select(Team.id, Team.name).order_by(col(Team.name))).all()
            return [TeamRole(int(i or 0), str(n), principal.roles.get(int(i or 0), "admin")) for i, n in rows]
        if not principal.roles:
            return []
        rows = session.execute(
            select(Team.id, Team.name).where(col(Team.id).in_(principal.roles)).order_by(col(Team.name))
        ).all()
        return [TeamRole(int(i or 0), str(n), principal.roles[int(i or 0)]) for i, n in rows]


def login_redirect(path: str) -> EventSpec:
    """Go to the sign-in page, coming back to `path` afterwards."""
    target = path if path.startswith("/") and not path.startswith("/login") else "/"
    return rx.redirect(f"/login?next={urllib.parse.quote(target, safe='/')}")


class AuthState(rx.State):
    """The signed-in person of this browser: the session cookie plus what the shell displays."""

    session_token: str = rx.Cookie("", name=SESSION_COOKIE, max_age=30 * 24 * 3600, same_site="strict")
    user_id: int = 0
    user_name: str = ""
    user_email: str = ""
    is_admin: bool = False
    # [{"team_id", "name", "role"}] for the team switcher and role badges (display only).
    teams: list[dict[str, str]] = []

    @rx.var
    def signed_in(self) -> bool:
        """Whether someone is signed in (as last checked)."""
        return self.user_id > 0

    @rx.var
    def can_write_somewhere(self) -> bool:
        """Whether the person may act on alerts of at least one team (hides buttons; the server decides)."""
        return self.is_admin or any(t["role"] in ("admin", "responder") for t in self.teams)

    @rx.var
    def can_admin_somewhere(self) -> bool:
        """Whether the person administers the installation or at least one team."""
        return self.is_admin or any(t["role"] == "admin" for t in self.teams)

    def _show(self, principal: Principal | None, roles: list[TeamRole]) -> None:
        if principal is None:
            self.user_id, self.user_name, self.user_email, self.is_admin, self.teams = 0, "", "", False, []
            return
        self.user_id = principal.user_id
        self.user_name = principal.user.name
        self.user_email = principal.user.email
        self.is_admin = principal.user.is_admin
        self.teams = [{"team_id": str(r.team_id), "name": r.name, "role": r.role} for r in roles]

    def current_path(self) -> str:
        """The path (with query) of the page this event came from."""
        url = self.router.url
        path = url.path or "/"
        return f"{path}?{url.query}" if url.query else path

    @rx.event
    async def require_login(self) -> Any:
        """`on_load` guard: refresh who is signed in, or go to the sign-in page."""
        principal = await asyncio.to_thread(principal_for_session, self.session_token, utcnow())
        if principal is None:
            self._show(None, [])
            return login_redirect(self.current_path())
        roles = await asyncio.to_thread(_team_roles, principal)
        self._show(principal, roles)
        return None

    @rx.event
    async def logout(self) -> Any:
        """Revoke this browser's session and go to the sign-in page."""
        token = self.session_token

        def revoke(session: Session) -> bool:
            return sessions.logout(session, token=token, now=utcnow())

        if token:
            await in_db(revoke, write=True)
        self.session_token = ""
        self._show(None, [])
        from pages.live import LiveState  # pages.live builds on this module

        (await self.get_state(LiveState)).detach_now()
        return rx.redirect("/login")

    def role_in(self, team_id: int) -> str:
        """The displayed role in a team ("admin" everywhere for installation admins)."""
        if self.is_admin:
            return "admin"
        for team in self.teams:
            if team["team_id"] == str(team_id):
                return team["role"]
        return ""

    def start_session(self, token: str, principal: Principal, roles: list[TeamRole]) -> None:
        """Remember a new session (after sign-in or setup)."""
        self.session_token = token
        self._show(principal, roles)


def client_address(state: rx.State) -> str:
    """The client's address as the app sees it (a proxy's, behind one)."""
    return state.router.session.client_ip or ""


def user_agent(state: rx.State) -> str:
    """The browser's User-Agent header."""
    return state.router.headers.user_agent or ""


def team_roles_of(principal: Principal) -> list[TeamRole]:
    """The teams (and roles) shown for a person (blocking: call through `asyncio.to_thread`)."""
    return _team_roles(principal)
