"""Teams and people: the visible teams, a team's members and their roles, adding and removing
members (team admins), creating teams and user accounts (installation administrators).

Every change checks the signed-in person's role on the server before calling a service, exactly as
the REST routes in `sentinel_app/api/directory.py` do.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from pages.config_kit import (
    Refused,
    attempt,
    data_table,
    error_callout,
    ev,
    labeled,
    read_only_note,
    row_danger_button,
    safe_zone,
    section,
    select_fixed,
    size,
    timezone_datalist,
    two_columns,
)
from pages.layout import empty_note, shell
from pages.live import LiveState
from pages.state import AuthState, in_db, viewer
from sentinel_app.api.deps import Principal
from sentinel_app.models import Role, Team, TeamMembership, User
from sentinel_app.models.base import require_id
from sentinel_app.services import audit, teams, users
from sentinel_app.services.actor import Actor

ROLE_CHOICES = [("admin", "Admin"), ("responder", "Responder"), ("viewer", "Viewer")]
ROLE_COLORS = {"admin": "purple", "responder": "grass", "viewer": "gray"}


def _team_rows(session: Session, principal: Principal) -> list[dict[str, str]]:
    visible = principal.visible_team_ids()
    query = select(Team).order_by(col(Team.name))
    if visible is not None:
        query = query.where(col(Team.id).in_(sorted(visible) or [-1]))
    found = list(session.exec(query))
    counts = dict(
        session.execute(
            select(TeamMembership.team_id, func.count()).group_by(col(TeamMembership.team_id))
        ).all()
    )
    return [
        {
            "id": str(require_id(t)),
            "name": t.name,
            "slug": t.slug,
            "description": t.description,
            "members": str(counts.get(require_id(t), 0)),
            "role": principal.roles.get(require_id(t), "admin" if principal.user.is_admin else ""),
        }
        for t in found
    ]


def _member_rows(session: Session, team_id: int) -> list[dict[str, str]]:
    rows = session.execute(
        sa.select(
            col(User.id), col(User.name), col(User.email), col(User.is_active), col(TeamMembership.role)
        )
        .join(TeamMembership, col(TeamMembership.user_id) == User.id)
        .where(col(TeamMembership.team_id) == team_id)
        .order_by(col(User.name), col(User.id))
    ).all()
    return [
        {"user_id": str(i), "name": str(n), "email": str(e), "active": "yes" if a else "", "role": str(r)}
        for i, n, e, a, r in rows
    ]


def _people(session: Session) -> list[dict[str, str]]:
    names = {require_id(t): t.name for t in session.exec(select(Team))}
    memberships: dict[int, list[str]] = {}
    for m in session.exec(select(TeamMembership)):
        memberships.setdefault(m.user_id, []).append(f"{names.get(m.team_id, m.team_id)} ({m.role})")
    return [
        {
            "id": str(require_id(u)),
            "name": u.name,
            "email": u.email,
            "admin": "yes" if u.is_admin else "",
            "active": "yes" if u.is_active else "",
            "teams": ", ".join(sorted(memberships.get(require_id(u), []))),
        }
        for u in session.exec(select(User).order_by(col(User.name)))
    ]


def _team_for(session: Session, principal: Principal, team_id: int, action: str) -> Team:
    """The team, if the person may `action` there (404 for teams they cannot see)."""
    team = session.get(Team, team_id) if team_id > 0 else None
    principal.require_visible(team_id if team else None, action, what="team", ident=team_id, field="team_id")
    assert team is not None
    return team


class TeamsState(rx.State):
    """Teams, the selected team's members and the admin forms, in this tab."""

    teams: list[dict[str, str]] = []
    selected: str = ""
    members: list[dict[str, str]] = []
    people: list[dict[str, str]] = []
    is_admin: bool = False
    can_admin_team: bool = False
    loaded: bool = False
    error: str = ""
    m_email: str = ""
    m_role: str = "responder"
    t_name: str = ""
    t_description: str = ""
    u_email: str = ""
    u_name: str = ""
    u_password: str = ""
    u_timezone: str = "UTC"
    u_admin: bool = False

    @rx.var
    def selected_name(self) -> str:
        """The selected team's name."""
        for team in self.teams:
            if team["id"] == self.selected:
                return team["name"]
        return ""

    @rx.event
    async def load(self) -> None:
        """`on_load`: the teams (`?team=` selects one) and, for installation admins, everyone."""
        principal = await viewer(self)
        if principal is None:
            return
        self.is_admin = principal.user.is_admin
        self.u_timezone = safe_zone(principal.user.timezone)
        wanted = str(self.router.url.query_parameters.get("team", "") or self.selected)
        await self._reload(principal, wanted)

    async def _reload(self, principal: Principal | None = None, wanted: str = "") -> None:
        principal = principal or await viewer(self)
        if principal is None:
            return
        self.teams = await in_db(lambda s: _team_rows(s, principal))
        ids = [t["id"] for t in self.teams]
        self.selected = (
            wanted if wanted in ids else (self.selected if self.selected in ids else (ids[0] if ids else ""))
        )
        team_id = int(self.selected) if self.selected else 0
        self.members = await in_db(lambda s: _member_rows(s, team_id)) if team_id else []
        self.can_admin_team = bool(team_id) and principal.can("admin", team_id)
        self.people = await in_db(_people) if principal.user.is_admin else []
        self.loaded = True

    @rx.event
    async def select(self, team_id: str) -> None:
        """Show another team's members."""
        await self._reload(wanted=team_id)

    @rx.event
    def set_field(self, name: str, value: str) -> None:
        """Change a field of one of the forms."""
        if name in (
            "m_email",
            "m_role",
            "t_name",
            "t_description",
            "u_email",
            "u_name",
            "u_password",
            "u_timezone",
        ):
            setattr(self, name, str(value)[:2000])

    @rx.event
    def set_u_admin(self, value: bool) -> None:
        """Whether the new account administers the installation."""
        self.u_admin = bool(value)

    async def _do(self, action: Any, done: str) -> Any:
        try:
            await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.error = ""
        await self._reload()
        return rx.toast.success(done)

    # --- members (team admins) -------------------------------------------------------------

    @rx.event
    async def add_member(self) -> Any:
        """Add an existing account to the selected team with a role."""
        team_id = int(self.selected or 0)
        email, role = self.m_email.strip(), self.m_role

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            _team_for(session, principal, team_id, "admin")
            user = users.get_by_email(session, email=email)
            if user is None:
                raise Refused(
                    f"No account has the email {email!r}; an installation administrator can create it."
                )
            teams.set_membership(
                session,
                team_id=team_id,
                user_id=require_id(user),
                role=Role(role),
                actor_user_id=principal.user_id,
            )

        # A Refused raised inside the action rolls the transaction back like any refusal.
        result = await self._do(action, f"{email} added")
        if not self.error:
            self.m_email = ""
        return result

    @rx.event
    async def set_role(self, user_id: str, role: str) -> Any:
        """Change a member's role in the selected team."""
        team_id, uid = int(self.selected or 0), int(user_id)
        if role not in dict(ROLE_CHOICES):
            return None

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            _team_for(session, principal, team_id, "admin")
            teams.set_membership(
                session, team_id=team_id, user_id=uid, role=Role(role), actor_user_id=principal.user_id
            )

        return await self._do(action, "Role changed")

    @rx.event
    async def remove_member(self, user_id: str) -> Any:
        """Take someone out of the selected team."""
        team_id, uid = int(self.selected or 0), int(user_id)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            _team_for(session, principal, team_id, "admin")
            membership = session.exec(
                select(TeamMembership).where(TeamMembership.team_id == team_id, TeamMembership.user_id == uid)
            ).first()
            if membership is None:
                raise Refused("That person is not a member of this team.")
            audit.record(
                session,
                action="membership.delete",
                entity_type="team_membership",
                entity_id=membership.id,
                team_id=team_id,
                before=audit.snapshot(membership),
                actor_user_id=principal.user_id,
            )
            session.delete(membership)

        return await self._do(action, "Member removed")

    # --- installation administrators -------------------------------------------------------

    @rx.event
    async def create_team(self) -> Any:
        """Create a team (installation administrators)."""
        name, description = self.t_name.strip(), self.t_description.strip()

        def action(session: Session, principal: Principal, actor: Actor) -> int:
            principal.require("admin", None)
            team = teams.create_team(
                session, name=name, description=description, actor_user_id=principal.user_id
            )
            return require_id(team)

        try:
            team_id = await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.error, self.t_name, self.t_description = "", "", ""
        await self._reload(wanted=str(team_id))
        return rx.toast.success(f"Team {name!r} created")

    @rx.event
    async def create_user(self) -> Any:
        """Create an account (installation administrators); it joins the selected team as a responder."""
        email, name, password = self.u_email.strip(), self.u_name.strip(), self.u_password
        zone, is_admin, team_id = self.u_timezone.strip() or "UTC", self.u_admin, int(self.selected or 0)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            principal.require("admin", None)
            user = users.create_user(
                session,
                email=email,
                name=name,
                password=password or None,
                timezone=zone,
                is_admin=is_admin,
                actor_user_id=principal.user_id,
            )
            if team_id and session.get(Team, team_id) is not None:
                teams.set_membership(
                    session,
                    team_id=team_id,
                    user_id=require_id(user),
                    role=Role.RESPONDER,
                    actor_user_id=principal.user_id,
                )

        result = await self._do(action, f"Account {email} created")
        if not self.error:
            self.u_email, self.u_name, self.u_password, self.u_admin = "", "", "", False
        return result


# --- view --------------------------------------------------------------------------------------

T = TeamsState


def _team_list() -> rx.Component:
    return section(
        "Teams",
        rx.cond(
            T.loaded & (size(T.teams) == 0),
            empty_note("You are not in any team yet."),
            rx.vstack(
                rx.foreach(
                    T.teams,
                    lambda t: rx.box(
                        rx.hstack(
                            rx.vstack(
                                rx.text(t["name"], weight="bold", size="2"),
                                rx.text(t["members"], " members", size="1", color_scheme="gray"),
                                spacing="0",
                            ),
                            rx.spacer(),
                            rx.cond(
                                t["role"] != "",
                                rx.badge(
                                    t["role"],
                                    color_scheme=rx.match(t["role"], *ROLE_COLORS.items(), "gray"),
                                    variant="soft",
                                ),
                            ),
                            align="center",
                            width="100%",
                        ),
                        on_click=ev(T.select, t["id"]),
                        cursor="pointer",
                        padding="0.5rem",
                        border_radius="var(--radius-2)",
                        background=rx.cond(T.selected == t["id"], "var(--accent-a3)", "transparent"),
                        id="team-" + t["id"],
                        class_name="team-item",
                        width="100%",
                    ),
                ),
                spacing="1",
                width="100%",
            ),
        ),
        rx.cond(
            T.is_admin,
            rx.vstack(
                rx.divider(),
                rx.text("New team", weight="medium", size="2"),
                rx.input(
                    width="100%",
                    value=T.t_name,
                    on_change=lambda v: ev(T.set_field, "t_name", v),
                    placeholder="Name",
                    id="team-name",
                ),
                rx.input(
                    width="100%",
                    value=T.t_description,
                    on_change=lambda v: ev(T.set_field, "t_description", v),
                    placeholder="Description (optional)",
                    id="team-description",
                ),
                rx.button("Create team", on_click=T.create_team, id="team-create"),
                spacing="2",
                width="100%",
            ),
        ),
    )


def _member_row(m: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(m["name"], weight="medium"),
                rx.text(m["email"], size="1", color_scheme="gray"),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.cond(
                T.can_admin_team,
                select_fixed(
                    ROLE_CHOICES,
                    m["role"],
                    lambda v: ev(T.set_role, m["user_id"], v),
                    width="8.5rem",
                    class_name="member-role",
                ),
                rx.badge(
                    m["role"], color_scheme=rx.match(m["role"], *ROLE_COLORS.items(), "gray"), variant="soft"
                ),
            )
        ),
        rx.table.cell(rx.cond(m["active"] != "", "", rx.badge("disabled", color_scheme="red", size="1"))),
        rx.table.cell(
            rx.cond(
                T.can_admin_team,
                row_danger_button("Remove", ev(T.remove_member, m["user_id"])),
            )
        ),
        id="member-" + m["user_id"],
        class_name="member-row",
        align="center",
    )


def _members() -> rx.Component:
    return section(
        rx.cond(T.selected_name != "", T.selected_name, "Members"),
        read_only_note(
            ~T.can_admin_team & (T.selected != ""), "Only the team's admins change its members and roles."
        ),
        rx.text(
            "Admins configure the team (schedules, policies, integrations, members); responders act on alerts "
            "and overrides; viewers only look.",
            size="1",
            color_scheme="gray",
        ),
        data_table(
            ["Person", "Role", "", ""], T.members, _member_row, empty="No members.", id="members-table"
        ),
        rx.cond(
            T.can_admin_team,
            rx.flex(
                labeled(
                    "Add by email",
                    rx.input(
                        width="100%",
                        value=T.m_email,
                        on_change=lambda v: ev(T.set_field, "m_email", v),
                        placeholder="person@example.com",
                        id="member-email",
                    ),
                ),
                labeled(
                    "Role",
                    select_fixed(
                        ROLE_CHOICES,
                        T.m_role,
                        lambda v: ev(T.set_field, "m_role", v),
                        id="member-role-new",
                        width="9rem",
                    ),
                    width="auto",
                ),
                rx.button("Add member", on_click=T.add_member, id="member-add", align_self="end"),
                direction=rx.breakpoints(initial="column", sm="row"),
                spacing="2",
                width="100%",
            ),
        ),
        error_callout(T.error, id="teams-error"),
    )


def _accounts() -> rx.Component:
    return section(
        "Accounts",
        data_table(
            ["Name", "Email", "Teams", ""],
            T.people,
            lambda p: rx.table.row(
                rx.table.cell(p["name"], white_space="nowrap"),
                rx.table.cell(p["email"]),
                rx.table.cell(p["teams"], min_width="12rem"),
                rx.table.cell(
                    rx.hstack(
                        rx.cond(
                            p["admin"] != "",
                            rx.badge("installation admin", color_scheme="purple", size="1"),
                        ),
                        rx.cond(p["active"] == "", rx.badge("disabled", color_scheme="red", size="1")),
                        spacing="1",
                    )
                ),
                class_name="person-row",
            ),
            size="1",
            id="people-table",
        ),
        rx.text("New account (joins the selected team as a responder)", weight="medium", size="2"),
        rx.grid(
            rx.input(
                width="100%",
                value=T.u_name,
                on_change=lambda v: ev(T.set_field, "u_name", v),
                placeholder="Name",
                id="user-name",
            ),
            rx.input(
                width="100%",
                value=T.u_email,
                on_change=lambda v: ev(T.set_field, "u_email", v),
                placeholder="Email",
                type="email",
                id="user-email",
            ),
            rx.input(
                width="100%",
                value=T.u_password,
                on_change=lambda v: ev(T.set_field, "u_password", v),
                placeholder="Password (10+ characters, optional)",
                type="password",
                id="user-password",
            ),
            rx.input(
                width="100%",
                value=T.u_timezone,
                on_change=lambda v: ev(T.set_field, "u_timezone", v),
                custom_attrs={"list": "tz-names"},
                placeholder="Timezone",
                id="user-timezone",
            ),
            columns=rx.breakpoints(initial="1", sm="2"),
            spacing="2",
            width="100%",
        ),
        rx.hstack(
            rx.checkbox("Installation administrator", checked=T.u_admin, on_change=T.set_u_admin),
            rx.spacer(),
            rx.button("Create account", on_click=T.create_user, id="user-create"),
            width="100%",
            align="center",
            wrap="wrap",
        ),
        timezone_datalist(),
    )


def index() -> rx.Component:
    """The teams and people page."""
    return shell(
        "Teams and people",
        two_columns(_team_list(), _members(), left_width="20rem"),
        rx.cond(T.is_admin, _accounts()),
    )


ON_LOAD = [AuthState.require_login, TeamsState.load, LiveState.detach]
