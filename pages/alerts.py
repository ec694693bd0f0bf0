"""Alerts: a live list with filters and sort, bulk acknowledge/resolve.

Every change goes through `pages.state.perform`, which checks the signed-in person's role in the
alert's team on the server (`Principal.require_visible(team, "write")`) before calling
`services.alerts.transition`; viewers are refused there, whatever buttons they see.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import reflex as rx
from sqlmodel import Session

from pages import live, queries
from pages.layout import ago, empty_note, severity_badge, shell, status_badge
from pages.live import LiveBatch, LivePage, LiveScope, LiveState
from pages.state import ActionRefused, AuthState, in_db, perform, viewer
from sentinel_app.api.deps import Principal
from sentinel_app.db import utcnow
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.services import alerts as alert_service
from sentinel_app.services.actor import Actor

# The live list shows at most this many alerts (every update re-sends it to the tab).
LIMIT = 100


def transition_action(
    alert_id: int, change: Transition, *, note: str = "", silence_for: dt.timedelta | None = None
) -> Callable[[Session, Principal, Actor], str]:
    """A `perform` action: check write access to the alert's team, then apply the transition."""

    def action(session: Session, principal: Principal, actor: Actor) -> str:
        alert = alert_service.get_alert(session, alert_id=alert_id, for_update=True)
        principal.require_visible(alert.team_id, "write", what="alert", ident=alert_id, field="alert_id")
        alert_service.transition(
            session,
            alert_id=alert_id,
            transition=change,
            actor=actor,
            now=utcnow(),
            note=note,
            silence_for=silence_for,
        )
        return alert.title

    return action


def write_teams(principal: Principal) -> set[int] | None:
    """Teams where the person may act on alerts (None: every team)."""
    if principal.user.is_admin:
        return None
    return {team for team in principal.roles if principal.can("write", team)}


class AlertsState(LivePage):
    """The alert list of this tab."""

    # Every apply re-sends the whole list to the tab; in a storm, one update per 0.3 s per tab
    # keeps 50 open tabs affordable (see tests/perf/bench_dashboard.py).
    live_min_interval: ClassVar[float] = 0.3

    f_status: str = "open"
    f_severity: str = "all"
    f_team: str = "all"
    f_integration: str = "all"
    f_label: str = ""
    f_text: str = ""
    sort: str = "newest"
    error: str = ""
    rows: list[dict[str, str]] = []
    selected: list[str] = []
    team_options: list[dict[str, str]] = []
    integration_options: list[dict[str, str]] = []
    can_act: bool = False
    loaded: bool = False
    truncated: bool = False
    # A tuple, not a dict: Reflex wraps mutable state values in change-tracking proxies, which
    # would make every read of a snapshot slow (and snapshots never change in place anyway).
    _snaps: tuple[queries.AlertSnap, ...] = ()
    # The filter's fields as a tuple (immutable, so Reflex does not proxy it); see `_flt`.
    _filter_fields: tuple[Any, ...] = dataclasses.astuple(queries.AlertFilter())
    _teams: list[int] = []
    _all_teams: bool = False
    _write: list[int] = []
    _all_write: bool = False
    _ready: bool = False

    # --- loading ---------------------------------------------------------------------------

    def _team_set(self) -> set[int] | None:
        return None if self._all_teams else set(self._teams)

    def _flt(self) -> queries.AlertFilter:
        """The filter the list was last loaded with."""
        return queries.AlertFilter(*self._filter_fields)

    def _build_filter(self) -> queries.AlertFilter | None:
        try:
            labels = queries.parse_labels(self.f_label)
        except ValueError as exc:
            self.error = str(exc)
            return None
        self.error = ""
        return queries.AlertFilter(
            status=self.f_status if self.f_status in queries.STATUS_FILTERS else "open",
            severity=self.f_severity if self.f_severity in queries.SEVERITIES else "",
            team_id=int(self.f_team) if self.f_team.isdigit() else None,
            integration_id=int(self.f_integration) if self.f_integration.isdigit() else None,
            labels=labels,
            text=self.f_text.strip()[:200],
            sort=self.sort if self.sort in queries.SORTS else "newest",
        )

    @rx.event
    async def load(self) -> None:
        """`on_load`: the person's teams, filter choices and the list."""
        principal = await viewer(self)
        if principal is None:
            self._ready = False
            return
        teams = principal.visible_team_ids()
        self._all_teams, self._teams = teams is None, sorted(teams or [])
        writable = write_teams(principal)
        self._all_write, self._write = writable is None, sorted(writable or [])
        self.can_act = writable is None or bool(writable)
        params = self.router.url.query_parameters
        for name, attr in (
            ("status", "f_status"),
            ("severity", "f_severity"),
            ("q", "f_text"),
            ("label", "f_label"),
        ):
            if params.get(name):
                setattr(self, attr, str(params[name])[:200])

        def choices(session: Session) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
            return queries.team_choices(session, teams), queries.integration_choices(session, teams)

        team_list, integration_list = await in_db(choices)
        self.team_options = [{"id": str(i), "name": n} for i, n in team_list]
        self.integration_options = [{"id": str(i), "name": n} for i, n in integration_list]
        self._ready = True
        await self._reload()

    async def _reload(self) -> None:
        flt = self._build_filter()
        if flt is None:
            return
        self._filter_fields = dataclasses.astuple(flt)
        teams = self._team_set()
        snaps = await in_db(lambda s: queries.list_alerts(s, teams=teams, flt=flt, limit=LIMIT))
        self._render(snaps)
        self.loaded = True

    def _can_act_on(self, team_id: int) -> bool:
        return self._all_write or team_id in self._write

    def _render(self, snaps: Iterable[queries.AlertSnap]) -> None:
        ordered = self._flt().sort_rows(snaps)
        truncated = len(ordered) > LIMIT
        ordered = ordered[:LIMIT]
        self._snaps = tuple(ordered)
        rows = [
            {**snap.row(), "can_act": "yes" if self._can_act_on(snap.team_id) else ""} for snap in ordered
        ]
        # Assigning marks a var dirty and re-sends it whole: only assign what really changed.
        if truncated != self.truncated:
            self.truncated = truncated
        if rows != self.rows:
            self.rows = rows
        shown = {row["id"] for row in rows}
        selected = [i for i in self.selected if i in shown]
        if selected != self.selected:
            self.selected = selected

    # --- filters ---------------------------------------------------------------------------

    @rx.event
    async def set_filter(self, name: str, value: str) -> None:
        """Change one filter (status, severity, team, integration, sort) and reload."""
        if name in ("f_status", "f_severity", "f_team", "f_integration", "sort"):
            setattr(self, name, value)
            await self._reload()

    @rx.event
    async def apply_search(self, form: dict[str, Any]) -> None:
        """Apply the label and text filters from the search form."""
        self.f_text = str(form.get("q", ""))[:200]
        self.f_label = str(form.get("labels", ""))[:500]
        await self._reload()

    @rx.event
    async def clear_filters(self) -> None:
        """Back to open alerts of every team, newest first."""
        self.f_status, self.f_severity, self.f_team, self.f_integration = "open", "all", "all", "all"
        self.f_label, self.f_text, self.sort = "", "", "newest"
        await self._reload()

    # --- selection and actions -------------------------------------------------------------

    @rx.event
    def toggle(self, alert_id: str, checked: bool) -> None:
        """Select or unselect one alert for a bulk action."""
        rest = [i for i in self.selected if i != alert_id]
        self.selected = [*rest, alert_id] if checked else rest

    @rx.event
    def toggle_all(self, checked: bool) -> None:
        """Select every alert shown that the person may act on, or none."""
        self.selected = [row["id"] for row in self.rows if row["can_act"]] if checked else []

    async def _apply(self, ids: list[int], change: Transition) -> Any:
        done, refused = 0, []
        for alert_id in ids:
            try:
                await perform(self, transition_action(alert_id, change))
                done += 1
            except ActionRefused as exc:
                refused.append(f"#{alert_id}: {exc.message}")
        self.selected = []
        verb = "acknowledged" if change is Transition.ACKNOWLEDGE else "resolved"
        if refused:
            return rx.toast.error(
                f"{done} {verb}; {len(refused)} refused — " + "; ".join(refused[:3]), duration=8000
            )
        return rx.toast.success(f"{done} alert{'s' if done != 1 else ''} {verb}")

    @rx.event
    async def acknowledge_selected(self) -> Any:
        """Acknowledge every selected alert (each checked on the server)."""
        return await self._apply([int(i) for i in self.selected], Transition.ACKNOWLEDGE)

    @rx.event
    async def resolve_selected(self) -> Any:
        """Resolve every selected alert (each checked on the server)."""
        return await self._apply([int(i) for i in self.selected], Transition.RESOLVE)

    @rx.event
    async def acknowledge(self, alert_id: str) -> Any:
        """Acknowledge one alert."""
        return await self._apply([int(alert_id)], Transition.ACKNOWLEDGE)

    @rx.event
    async def resolve(self, alert_id: str) -> Any:
        """Resolve one alert."""
        return await self._apply([int(alert_id)], Transition.RESOLVE)

    # --- live ------------------------------------------------------------------------------

    def live_scope(self) -> LiveScope | None:
        """The person's teams and the current filter."""
        if not self._ready:
            return None
        return LiveScope(
            teams=None if self._all_teams else frozenset(self._teams), params={"filter": self._flt()}
        )

    @staticmethod
    def live_wants_fetch(scope: LiveScope, batch: LiveBatch) -> bool:
        """Only a resync reads the database: the batch's shared snapshots are enough otherwise."""
        return batch.resync

    @staticmethod
    def live_fetch(session: Session, scope: LiveScope, batch: LiveBatch) -> Any:
        """A full reload after a resync; otherwise the snapshots in the batch are enough."""
        if not batch.resync:
            return None
        teams = None if scope.teams is None else set(scope.teams)
        return queries.list_alerts(session, teams=teams, flt=scope.params["filter"], limit=LIMIT)

    def live_apply(self, batch: LiveBatch, fetched: Any) -> None:
        """Insert, update or drop the changed alerts according to the filter."""
        if batch.resync and isinstance(fetched, list):
            self._render(fetched)
            return
        snaps = {snap.id: snap for snap in self._snaps}
        flt = self._flt()
        for alert_id in batch.changed:
            snap = batch.alerts.get(alert_id)
            if snap is not None and flt.matches(snap):
                snaps[alert_id] = snap
            else:
                snaps.pop(alert_id, None)
        self._render(snaps.values())


live.register("alerts", AlertsState)


# --- view --------------------------------------------------------------------------------------


def _select(
    name: str, value: Any, items: list[tuple[str, str]], *, extra: Any = None, width: str = "10rem"
) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(width=width, id=f"filter-{name.removeprefix('f_')}"),
        rx.select.content(
            *[rx.select.item(label, value=val) for val, label in items],
            *([extra] if extra is not None else []),
        ),
        value=value,
        on_change=lambda v: AlertsState.set_filter(name, v),  # type: ignore[operator]
        size="2",
    )


def _filters() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            _select(
                "f_status",
                AlertsState.f_status,
                [
                    ("open", "Open"),
                    ("firing", "Firing"),
                    ("acknowledged", "Acknowledged"),
                    ("resolved", "Resolved"),
                    ("all", "All statuses"),
                ],
                width="9rem",
            ),
            _select(
                "f_severity",
                AlertsState.f_severity,
                [("all", "All severities"), *[(s, s.title()) for s in queries.SEVERITIES]],
                width="9rem",
            ),
            _select(
                "f_team",
                AlertsState.f_team,
                [("all", "All teams")],
                extra=rx.foreach(
                    AlertsState.team_options, lambda o: rx.select.item(o["name"], value=o["id"])
                ),
            ),
            _select(
                "f_integration",
                AlertsState.f_integration,
                [("all", "All integrations")],
                extra=rx.foreach(
                    AlertsState.integration_options, lambda o: rx.select.item(o["name"], value=o["id"])
                ),
                width="12rem",
            ),
            _select(
                "sort",
                AlertsState.sort,
                [
                    ("newest", "Newest first"),
                    ("oldest", "Oldest first"),
                    ("severity", "By severity"),
                    ("last_seen", "Last seen"),
                ],
                width="9rem",
            ),
            wrap="wrap",
            spacing="2",
        ),
        rx.el.form(
            rx.hstack(
                rx.input(
                    name="q",
                    placeholder="Search title or message",
                    default_value=AlertsState.f_text,
                    id="filter-text",
                    width="16rem",
                ),
                rx.input(
                    name="labels",
                    placeholder="Labels: env=prod, team=db",
                    default_value=AlertsState.f_label,
                    id="filter-labels",
                    width="16rem",
                ),
                rx.button("Apply", type="submit", variant="soft", id="filter-apply"),
                rx.button("Clear", type="button", variant="ghost", on_click=AlertsState.clear_filters),
                wrap="wrap",
                spacing="2",
            ),
            on_submit=AlertsState.apply_search,
            reset_on_submit=False,
        ),
        rx.cond(
            AlertsState.error != "",
            rx.callout(AlertsState.error, color_scheme="red", icon="triangle-alert", size="1"),
        ),
        spacing="2",
        width="100%",
    )


def _bulk_bar() -> rx.Component:
    return rx.cond(
        AlertsState.can_act,
        rx.hstack(
            rx.checkbox(
                "Select all",
                checked=(AlertsState.selected.length() > 0)  # type: ignore[attr-defined]
                & (AlertsState.selected.length() == AlertsState.rows.length()),  # type: ignore[attr-defined]
                on_change=AlertsState.toggle_all,
                id="select-all",
            ),
            rx.text(AlertsState.selected.length(), " selected", size="2", color_scheme="gray"),  # type: ignore[attr-defined]
            rx.button(
                "Acknowledge",
                on_click=AlertsState.acknowledge_selected,
                disabled=AlertsState.selected.length() == 0,  # type: ignore[attr-defined]
                color_scheme="amber",
                size="2",
                id="bulk-acknowledge",
            ),
            rx.button(
                "Resolve",
                on_click=AlertsState.resolve_selected,
                disabled=AlertsState.selected.length() == 0,  # type: ignore[attr-defined]
                color_scheme="grass",
                size="2",
                id="bulk-resolve",
            ),
            spacing="3",
            align="center",
            wrap="wrap",
        ),
    )


_WIDE = ["none", "none", "table-cell"]


def _row(row: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.cond(
                row["can_act"] != "",
                rx.checkbox(
                    checked=AlertsState.selected.contains(row["id"]),  # type: ignore[attr-defined]
                    on_change=lambda checked: AlertsState.toggle(row["id"], checked),  # type: ignore[operator]
                    class_name="row-select",
                ),
            ),
        ),
        rx.table.cell(severity_badge(row["severity"])),
        rx.table.cell(
            rx.vstack(
                rx.link(row["title"], href="/alerts/" + row["id"], weight="medium", class_name="alert-title"),
                rx.text(
                    row["labels"],
                    size="1",
                    color_scheme="gray",
                    trim="both",
                    max_width="32rem",
                    overflow="hidden",
                    text_overflow="ellipsis",
                    white_space="nowrap",
                ),
                spacing="0",
                min_width="12rem",
            )
        ),
        rx.table.cell(
            rx.vstack(
                status_badge(row["status"], class_name="alert-status"),
                rx.cond(
                    row["acked_by"] != "", rx.text("by ", row["acked_by"], size="1", color_scheme="gray")
                ),
                rx.cond(row["silenced"] != "", rx.badge("silenced", variant="outline", size="1")),
                spacing="1",
            )
        ),
        rx.table.cell(row["team"], display=_WIDE),
        rx.table.cell(row["integration"], display=_WIDE),
        rx.table.cell(rx.text(ago(row["fired_at"]), size="2", white_space="nowrap", title=row["fired_text"])),
        rx.table.cell(row["occurrences"], display=_WIDE, text_align="right"),
        rx.table.cell(
            rx.cond(
                row["can_act"] != "",
                rx.hstack(
                    rx.cond(
                        row["status"] == "firing",
                        rx.button(
                            "Ack",
                            size="1",
                            color_scheme="amber",
                            variant="soft",
                            on_click=AlertsState.acknowledge(row["id"]),  # type: ignore[operator]
                            class_name="row-ack",
                        ),
                    ),
                    rx.cond(
                        row["status"] != "resolved",
                        rx.button(
                            "Resolve",
                            size="1",
                            color_scheme="grass",
                            variant="soft",
                            on_click=AlertsState.resolve(row["id"]),  # type: ignore[operator]
                            class_name="row-resolve",
                        ),
                    ),
                    spacing="1",
                ),
            )
        ),
        id="alert-row-" + row["id"],
        custom_attrs={"data-status": row["status"], "data-severity": row["severity"]},
        class_name="alert-row",
        align="center",
    )


def _card(row: Any) -> rx.Component:
    """One alert on a phone: the same facts as a table row, stacked."""
    return rx.box(
        rx.hstack(
            rx.cond(
                row["can_act"] != "",
                rx.checkbox(
                    checked=AlertsState.selected.contains(row["id"]),  # type: ignore[attr-defined]
                    on_change=lambda checked: AlertsState.toggle(row["id"], checked),  # type: ignore[operator]
                ),
            ),
            severity_badge(row["severity"]),
            status_badge(row["status"]),
            rx.spacer(),
            rx.text(ago(row["fired_at"]), size="1", color_scheme="gray"),
            align="center",
            width="100%",
        ),
        rx.link(
            row["title"], href="/alerts/" + row["id"], weight="medium", display="block", padding_y="0.3rem"
        ),
        rx.text(
            row["team"],
            " · ",
            row["integration"],
            rx.cond(row["acked_by"] != "", " · by " + row["acked_by"], ""),
            size="1",
            color_scheme="gray",
        ),
        rx.cond(
            row["can_act"] != "",
            rx.hstack(
                rx.cond(
                    row["status"] == "firing",
                    rx.button(
                        "Acknowledge",
                        size="2",
                        color_scheme="amber",
                        variant="soft",
                        on_click=AlertsState.acknowledge(row["id"]),  # type: ignore[operator]
                    ),
                ),
                rx.cond(
                    row["status"] != "resolved",
                    rx.button(
                        "Resolve",
                        size="2",
                        color_scheme="grass",
                        variant="soft",
                        on_click=AlertsState.resolve(row["id"]),  # type: ignore[operator]
                    ),
                ),
                spacing="2",
                padding_top="0.4rem",
            ),
        ),
        padding="0.75rem",
        border="1px solid var(--gray-a5)",
        border_radius="8px",
        width="100%",
        id="alert-card-" + row["id"],
        class_name="alert-card",
        custom_attrs={"data-status": row["status"]},
    )


def _table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("", width="2rem"),
                    rx.table.column_header_cell("Severity"),
                    rx.table.column_header_cell("Alert"),
                    rx.table.column_header_cell("Status"),
                    rx.table.column_header_cell("Team", display=_WIDE),
                    rx.table.column_header_cell("Source", display=_WIDE),
                    rx.table.column_header_cell("Fired"),
                    rx.table.column_header_cell("Count", display=_WIDE),
                    rx.table.column_header_cell(""),
                )
            ),
            rx.table.body(rx.foreach(AlertsState.rows, _row)),
            width="100%",
            size="2",
            id="alerts-table",
        ),
        overflow_x="auto",
        width="100%",
    )


def index() -> rx.Component:
    """The alerts page."""
    return shell(
        "Alerts",
        _filters(),
        _bulk_bar(),
        rx.cond(
            AlertsState.loaded & (AlertsState.rows.length() == 0),  # type: ignore[attr-defined]
            empty_note("No alerts match these filters."),
            rx.fragment(
                rx.tablet_and_desktop(_table(), width="100%"),
                rx.mobile_only(
                    rx.vstack(rx.foreach(AlertsState.rows, _card), spacing="2", width="100%"), width="100%"
                ),
            ),
        ),
        rx.cond(
            AlertsState.truncated,
            rx.text(
                f"Showing the first {LIMIT}; narrow the filters to see more.", size="1", color_scheme="gray"
            ),
        ),
        actions=rx.text(
            AlertsState.rows.length(),  # type: ignore[attr-defined]
            " shown",
            size="2",
            color_scheme="gray",
            id="alerts-count",
        ),
    )


ON_LOAD = [AuthState.require_login, AlertsState.load, LiveState.attach("alerts")]  # type: ignore[operator]
