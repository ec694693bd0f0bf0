"""NOC wall: a full-screen, dark, large-type view of open alerts for a TV across the room.

Opened either by a signed-in person (their teams) or as a kiosk with a wall key:
`/wall?token=sk_…`, an API key whose only scope is "wall" (read-only, useless for REST and
GraphQL). Administrators create and revoke wall keys from the "Kiosk links" dialog on this page
(or `POST /api/v1/api-keys` with `"scopes": ["wall"]`). A key made for one team shows that team;
one made without a team shows every team its creator can see.

Firing alerts come first, by severity then age, with running timers; acknowledged ones follow,
dimmed, with who took them. When the websocket drops a banner says so and the page reconnects
by itself; on reconnect Reflex reruns `on_load`, which reloads everything and restarts the
live loop, so a wall recovers from an app restart without anyone touching it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import reflex as rx
from sqlmodel import Session, col, select

from pages import live, queries
from pages.layout import clock_script, since, until
from pages.live import LiveBatch, LivePage, LiveScope, LiveState
from pages.state import (
    ActionRefused,
    in_db,
    login_redirect,
    perform,
    principal_for_wall_key,
    viewer,
)
from sentinel_app.api.deps import Principal
from sentinel_app.db import utcnow
from sentinel_app.models import ApiKey, Team
from sentinel_app.services import api_keys
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import NotFound, ValidationFailed

LIMIT = 100
RETRY_S = 5.0
log = logging.getLogger(__name__)
# A revoked kiosk key stops its walls within this many seconds (at their next update).
KEY_RECHECK_S = 30.0
_SEVERITY_BG = {
    "critical": "var(--red-9)",
    "error": "var(--orange-9)",
    "warning": "var(--amber-9)",
    "info": "var(--blue-9)",
}


def _wall_row(snap: queries.AlertSnap) -> dict[str, str]:
    return {
        "id": str(snap.id),
        "title": snap.title,
        "severity": snap.severity,
        "status": snap.status,
        "team": snap.team,
        "source": snap.integration or snap.source,
        "fired_at": queries.iso(snap.fired_at),
        "acked_by": snap.acked_by or "someone",
        "acknowledged_at": queries.iso(snap.acknowledged_at),
        "occurrences": str(snap.occurrences) if snap.occurrences > 1 else "",
    }


def _oncall_rows(entries: list[queries.OnCallEntry]) -> list[dict[str, str]]:
    return [
        {"schedule": e.schedule, "team": e.team, "user": e.user, "until": queries.iso(e.until)}
        for e in entries
    ]


def _manageable_keys(session: Session, principal: Principal) -> list[dict[str, str]]:
    """Live wall keys the person administers (installation admins: all of them)."""
    rows = session.exec(
        select(ApiKey).where(col(ApiKey.revoked_at).is_(None)).order_by(col(ApiKey.id).desc())
    ).all()
    teams = dict(session.execute(select(Team.id, Team.name)).all())
    return [
        {
            "id": str(k.id),
            "name": k.name,
            "prefix": k.prefix,
            "team": teams.get(k.team_id, "") if k.team_id else "All teams",
            "last_used": queries.short_time(k.last_used_at) or "never",
        }
        for k in rows
        if k.scopes == [api_keys.WALL_SCOPE] and principal.can("admin", k.team_id)
    ]


class WallState(LivePage):
    """The wall of this tab."""

    live_min_interval: ClassVar[float] = 0.0

    mode: str = "loading"  # loading | wall | invalid
    kiosk: bool = False
    heading: str = "All teams"
    alerts: list[dict[str, str]] = []
    oncall: list[dict[str, str]] = []
    firing_count: int = 0
    acked_count: int = 0
    critical_count: int = 0
    can_manage: bool = False
    keys: list[dict[str, str]] = []
    team_choices: list[dict[str, str]] = []
    new_link: str = ""
    manage_error: str = ""
    _token: str = ""
    _teams: list[int] = []
    _all_teams: bool = False
    _snaps: tuple[queries.AlertSnap, ...] = ()  # a tuple: see AlertsState._snaps
    _key_checked: float = 0.0

    @rx.event
    async def load(self) -> Any:
        """`on_load`: a kiosk key from `?token=`, else the signed-in person; then the alerts.

        Nobody is there to press reload on a wall: if loading fails (the database restarting),
        it is retried a few seconds later.
        """
        try:
            return await self._load()
        except Exception:
            log.exception("wall failed to load; retrying in %.0f s", RETRY_S)
            return WallState.retry_later

    @rx.event(background=True)
    async def retry_later(self) -> AsyncIterator[Any]:
        """Load again after RETRY_S."""
        await asyncio.sleep(RETRY_S)
        yield WallState.load

    async def _load(self) -> Any:
        token = str(self.router.url.query_parameters.get("token", "") or "")
        self.new_link, self.manage_error = "", ""
        if token:
            principal = await asyncio.to_thread(principal_for_wall_key, token, utcnow())
            self.kiosk, self._token, self.can_manage = True, token, False
            if principal is None:
                self.mode = "invalid"
                return None
        else:
            principal = await viewer(self)
            self.kiosk, self._token = False, ""
            if principal is None:
                return login_redirect("/wall")
            self.can_manage = principal.user.is_admin or any(
                principal.can("admin", team) for team in principal.roles
            )
        teams = principal.visible_team_ids()
        self._all_teams, self._teams = teams is None, sorted(teams or [])

        def read(
            session: Session,
        ) -> tuple[list[queries.AlertSnap], list[queries.OnCallEntry], list[tuple[int, str]]]:
            return (
                queries.open_alerts_for_wall(session, teams=teams, limit=LIMIT),
                queries.on_call(session, teams=teams, now=utcnow()),
                queries.team_choices(session, teams),
            )

        snaps, entries, team_list = await in_db(read)
        if teams is not None and len(team_list) == 1:
            self.heading = team_list[0][1]
        else:
            self.heading = "All teams" if teams is None else f"{len(team_list)} teams"
        self.team_choices = [
            {"id": str(i), "name": n} for i, n in team_list if principal.can("admin", i) and not self.kiosk
        ]
        self._snaps = tuple(snaps)
        self.oncall = _oncall_rows(entries)
        self._render()
        self.mode = "wall"
        if self.can_manage:
            self.keys = await in_db(lambda s: _manageable_keys(s, principal))
        return None

    def _render(self) -> None:
        ordered = queries.wall_order(self._snaps)[:LIMIT]
        self._snaps = tuple(ordered)
        self.alerts = [_wall_row(s) for s in ordered]
        self.firing_count = sum(1 for s in ordered if s.status == "firing")
        self.acked_count = sum(1 for s in ordered if s.status == "acknowledged")
        self.critical_count = sum(1 for s in ordered if s.status == "firing" and s.severity == "critical")

    # --- kiosk links -----------------------------------------------------------------------

    @rx.event
    async def create_key(self, form: dict[str, Any]) -> None:
        """Issue a wall key (administrators of the team, or of the installation for all teams)."""
        name = str(form.get("name", "")).strip()[:200] or "NOC wall"
        team = str(form.get("team", "all"))
        team_id = int(team) if team.isdigit() else None

        def action(session: Session, principal: Principal, actor: Actor) -> tuple[str, list[dict[str, str]]]:
            principal.require("admin", team_id)
            if team_id is not None and session.get(Team, team_id) is None:
                raise NotFound(f"team {team_id} not found", field="team")
            _, secret = api_keys.issue_key(
                session,
                user_id=principal.user_id,
                name=name,
                scopes=[api_keys.WALL_SCOPE],
                team_id=team_id,
                actor_user_id=principal.user_id,
            )
            session.flush()
            return secret, _manageable_keys(session, principal)

        try:
            secret, self.keys = await perform(self, action)
        except (ActionRefused, ValidationFailed) as exc:
            self.manage_error = getattr(exc, "message", str(exc))
            return
        origin = self.router.url.origin if "://" in self.router.url.origin else ""
        self.new_link = f"{origin}/wall?token={secret}"
        self.manage_error = ""

    @rx.event
    async def revoke_key(self, key_id: str) -> None:
        """Revoke a wall key: walls using it stop at their next update or reload."""

        def action(session: Session, principal: Principal, actor: Actor) -> list[dict[str, str]]:
            key = session.get(ApiKey, int(key_id))
            if key is None or key.scopes != [api_keys.WALL_SCOPE] or not principal.can("admin", key.team_id):
                raise NotFound(f"wall key {key_id} not found", field="key_id")
            api_keys.revoke_key(session, key=key, now=utcnow(), actor_user_id=principal.user_id)
            return _manageable_keys(session, principal)

        try:
            self.keys = await perform(self, action)
        except ActionRefused as exc:
            self.manage_error = exc.message

    # --- live ------------------------------------------------------------------------------

    def live_scope(self) -> LiveScope | None:
        """The wall's teams (and its key when a re-check is due)."""
        if self.mode != "wall":
            return None
        due = bool(self._token) and time.monotonic() - self._key_checked > KEY_RECHECK_S
        if due:
            self._key_checked = time.monotonic()
        return LiveScope(
            teams=None if self._all_teams else frozenset(self._teams),
            params={"token": self._token if due else ""},
            session_bound=not self.kiosk,
        )

    @staticmethod
    def live_wants_fetch(scope: LiveScope, batch: LiveBatch) -> bool:
        """A key re-check, a resync or an on-call change need the database; alert changes do not."""
        return bool(scope.params.get("token")) or batch.resync or batch.oncall

    @staticmethod
    def live_fetch(session: Session, scope: LiveScope, batch: LiveBatch) -> Any:
        """Re-check a kiosk key; reload on resync; on-call when it changed."""
        token = scope.params.get("token") or ""
        if token and principal_for_wall_key(token, utcnow()) is None:
            return "invalid"
        teams = None if scope.teams is None else set(scope.teams)
        snaps = queries.open_alerts_for_wall(session, teams=teams, limit=LIMIT) if batch.resync else None
        entries = (
            queries.on_call(session, teams=teams, now=utcnow()) if batch.oncall or batch.resync else None
        )
        return snaps, entries

    def live_apply(self, batch: LiveBatch, fetched: Any) -> None:
        """Update the alerts (and on-call) shown."""
        if fetched == "invalid":
            self.mode, self.alerts = "invalid", []
            return
        snaps, entries = fetched if fetched is not None else (None, None)
        if snaps is not None:
            self._snaps = tuple(snaps)
        else:
            current = {s.id: s for s in self._snaps}
            for alert_id in batch.changed:
                snap = batch.alerts.get(alert_id)
                if snap is not None and snap.status in queries.OPEN_STATUSES:
                    current[alert_id] = snap
                else:
                    current.pop(alert_id, None)
            self._snaps = tuple(current.values())
        if entries is not None:
            self.oncall = _oncall_rows(entries)
        self._render()


live.register("wall", WallState)


# --- view --------------------------------------------------------------------------------------


def _alert(row: Any) -> rx.Component:
    firing = row["status"] == "firing"
    return rx.hstack(
        rx.box(
            width="0.9rem",
            align_self="stretch",
            background=rx.match(row["severity"], *_SEVERITY_BG.items(), "var(--gray-9)"),
            border_radius="4px",
        ),
        rx.vstack(
            rx.text(
                row["title"],
                font_size=["1.3rem", "1.6rem", "2.1rem"],
                font_weight="700",
                line_height="1.15",
                class_name="wall-title",
            ),
            rx.text(
                row["severity"].upper(),
                " · ",
                row["team"],
                " · ",
                row["source"],
                rx.cond(row["occurrences"] != "", " · x" + row["occurrences"], ""),
                font_size=["0.9rem", "1rem", "1.25rem"],
                color="var(--gray-11)",
            ),
            rx.cond(
                ~firing,
                rx.text(
                    "ACK by ",
                    row["acked_by"],
                    font_size=["0.9rem", "1rem", "1.25rem"],
                    color="var(--amber-11)",
                    class_name="wall-acked-by",
                ),
            ),
            spacing="1",
            flex="1",
            min_width="0",
        ),
        rx.vstack(
            since(row["fired_at"], style={"font_variant_numeric": "tabular-nums"}, class_name="wall-timer"),
            font_family="ui-monospace, SFMono-Regular, Menlo, monospace",
            font_size=["1.4rem", "1.8rem", "2.6rem"],
            font_weight="700",
            color=rx.cond(firing, "var(--red-11)", "var(--gray-11)"),
            align="end",
        ),
        width="100%",
        align="center",
        spacing="4",
        padding=["0.6rem", "0.8rem", "1rem"],
        background="var(--gray-2)",
        border_radius="10px",
        opacity=rx.cond(firing, "1", "0.45"),
        id="wall-alert-" + row["id"],
        class_name="wall-alert",
        custom_attrs={"data-status": row["status"], "data-severity": row["severity"]},
    )


def _oncall_strip() -> rx.Component:
    return rx.flex(
        rx.text("ON CALL", font_weight="700", color="var(--gray-11)", font_size=["0.9rem", "1rem", "1.2rem"]),
        rx.cond(
            WallState.oncall.length() > 0,  # type: ignore[attr-defined]
            rx.foreach(
                WallState.oncall,
                lambda e: rx.hstack(
                    rx.text(e["user"], font_weight="700"),
                    rx.text(e["schedule"], color="var(--gray-11)"),
                    rx.cond(e["until"] != "", rx.text(until(e["until"]), " left", color="var(--gray-11)")),
                    spacing="2",
                    font_size=["0.9rem", "1rem", "1.3rem"],
                    class_name="wall-oncall",
                ),
            ),
            rx.text("nobody", color="var(--amber-11)", font_size=["0.9rem", "1rem", "1.3rem"]),
        ),
        wrap="wrap",
        gap="1.5rem",
        align="center",
        padding=["0.6rem", "0.8rem", "1rem"],
        border_top="1px solid var(--gray-6)",
        width="100%",
        id="wall-oncall",
    )


def _kiosk_links() -> rx.Component:
    key_row = lambda k: rx.table.row(  # noqa: E731
        rx.table.cell(k["name"]),
        rx.table.cell(k["team"]),
        rx.table.cell(rx.code(k["prefix"], "…")),
        rx.table.cell(k["last_used"]),
        rx.table.cell(
            rx.button(
                "Revoke",
                size="1",
                color_scheme="red",
                variant="soft",
                on_click=WallState.revoke_key(k["id"]),  # type: ignore[operator]
            )
        ),
    )
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button(rx.icon("tv", size=14), "Kiosk links", variant="soft", size="1", id="kiosk-links")
        ),
        rx.dialog.content(
            rx.dialog.title("Kiosk links for wall displays"),
            rx.dialog.description(
                "A kiosk link opens this wall without an account. It can only show alerts; revoke it when the screen goes away.",
                size="2",
            ),
            rx.el.form(
                rx.hstack(
                    rx.input(
                        name="name",
                        placeholder="Name, e.g. NOC TV 2nd floor",
                        required=True,
                        id="kiosk-name",
                        flex="1",
                    ),
                    rx.select.root(
                        rx.select.trigger(width="10rem"),
                        rx.select.content(
                            rx.select.item("All my teams", value="all"),
                            rx.foreach(
                                WallState.team_choices, lambda t: rx.select.item(t["name"], value=t["id"])
                            ),
                        ),
                        name="team",
                        default_value="all",
                    ),
                    rx.button("Create link", type="submit", id="kiosk-create"),
                    wrap="wrap",
                    width="100%",
                    padding_y="0.75rem",
                ),
                on_submit=WallState.create_key,
                reset_on_submit=True,
            ),
            rx.cond(
                WallState.manage_error != "", rx.callout(WallState.manage_error, color_scheme="red", size="1")
            ),
            rx.cond(
                WallState.new_link != "",
                rx.card(
                    rx.vstack(
                        rx.text("Open this link on the wall display (shown only now):", size="2"),
                        rx.code(WallState.new_link, id="kiosk-new-link", word_break="break-all"),
                        rx.button(
                            "Copy", size="1", variant="soft", on_click=rx.set_clipboard(WallState.new_link)
                        ),
                    ),
                    background="var(--grass-a3)",
                ),
            ),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Name"),
                        rx.table.column_header_cell("Shows"),
                        rx.table.column_header_cell("Key"),
                        rx.table.column_header_cell("Last used"),
                        rx.table.column_header_cell(""),
                    )
                ),
                rx.table.body(rx.foreach(WallState.keys, key_row)),
                size="1",
                width="100%",
            ),
            rx.hstack(
                rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                justify="end",
                padding_top="0.75rem",
            ),
            max_width="44rem",
        ),
    )


def _header() -> rx.Component:
    return rx.flex(
        rx.hstack(
            rx.icon("shield-alert", size=30),
            rx.text("Sentinel", font_size=["1.2rem", "1.5rem", "1.9rem"], font_weight="800"),
            rx.text(WallState.heading, font_size=["1rem", "1.2rem", "1.5rem"], color="var(--gray-11)"),
            align="center",
            spacing="3",
        ),
        rx.spacer(),
        rx.hstack(
            rx.text(
                WallState.firing_count,
                " firing",
                font_size=["1.1rem", "1.4rem", "1.9rem"],
                font_weight="800",
                color=rx.cond(WallState.firing_count > 0, "var(--red-11)", "var(--grass-11)"),
                id="wall-firing-count",
            ),
            rx.text(
                WallState.acked_count,
                " acknowledged",
                font_size=["1rem", "1.2rem", "1.5rem"],
                color="var(--amber-11)",
                id="wall-acked-count",
            ),
            rx.el.span(
                custom_attrs={"data-clock": "1"},
                style={
                    "font_size": "1.5rem",
                    "font_variant_numeric": "tabular-nums",
                    "color": "var(--gray-11)",
                },
            ),
            rx.cond(
                ~WallState.kiosk,
                rx.hstack(
                    rx.cond(WallState.can_manage, _kiosk_links()),
                    rx.link(rx.button("Dashboard", variant="soft", size="1", color_scheme="gray"), href="/"),
                    spacing="2",
                ),
            ),
            spacing="5",
            align="center",
            wrap="wrap",
        ),
        wrap="wrap",
        align="center",
        gap="0.75rem",
        width="100%",
        padding=["0.6rem", "0.8rem", "1rem"],
    )


def _banner() -> rx.Component:
    return rx.connection_banner(
        rx.box(
            rx.hstack(
                rx.spinner(size="3"),
                rx.text(
                    "Connection lost — reconnecting…",
                    font_size=["1.2rem", "1.6rem", "2.2rem"],
                    font_weight="800",
                ),
                align="center",
                justify="center",
                spacing="3",
            ),
            position="fixed",
            top="0",
            left="0",
            right="0",
            z_index="100",
            padding="0.8rem",
            background="var(--red-9)",
            color="white",
            id="wall-connection-lost",
        )
    )


def _board() -> rx.Component:
    return rx.vstack(
        _header(),
        rx.cond(
            WallState.alerts.length() > 0,  # type: ignore[attr-defined]
            rx.vstack(
                rx.foreach(WallState.alerts, _alert),
                spacing="3",
                width="100%",
                padding_x=["0.6rem", "0.8rem", "1rem"],
                flex="1",
                id="wall-alerts",
            ),
            rx.center(
                rx.text(
                    "All clear",
                    font_size=["2rem", "3rem", "5rem"],
                    font_weight="800",
                    color="var(--grass-11)",
                ),
                flex="1",
                width="100%",
                id="wall-all-clear",
            ),
        ),
        _oncall_strip(),
        spacing="3",
        min_height="100vh",
        width="100%",
    )


def index() -> rx.Component:
    """The wall page."""
    # Reflex drops `appearance` from nested themes; a `dark` class around one makes Radix
    # switch its color variables to the dark palette whatever the viewer's color mode.
    return rx.box(
        rx.theme(
            clock_script(),
            _banner(),
            rx.box(
                rx.match(
                    WallState.mode,
                    ("wall", _board()),
                    (
                        "invalid",
                        rx.center(
                            rx.vstack(
                                rx.text(
                                    "This wall link is not valid any more.",
                                    font_size="2rem",
                                    font_weight="700",
                                ),
                                rx.text("Ask an administrator for a new kiosk link.", color="var(--gray-11)"),
                                align="center",
                            ),
                            min_height="100vh",
                            id="wall-invalid",
                        ),
                    ),
                    rx.center(rx.spinner(size="3"), min_height="100vh"),
                ),
                background="var(--gray-1)",
                color="var(--gray-12)",
                min_height="100vh",
                width="100%",
            ),
            accent_color="red",
            has_background=True,
        ),
        class_name="dark",
        style={"color_scheme": "dark"},
    )


ON_LOAD = [WallState.load, LiveState.attach("wall")]  # type: ignore[operator]
