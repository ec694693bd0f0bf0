"""One alert: labels, annotations, links, occurrences, the full timeline with every notification
delivery and its outcome, and the actions (acknowledge, resolve with a note, silence, escalate
now, add a note), each checked on the server against the person's role in the alert's team."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import reflex as rx
from sqlmodel import Session

from pages import live, queries
from pages.alerts import transition_action
from pages.layout import ago, empty_note, severity_badge, shell, since, status_badge
from pages.live import LiveBatch, LivePage, LiveScope, LiveState
from pages.state import ActionRefused, AuthState, in_db, perform, viewer
from sentinel_app.api.deps import Principal
from sentinel_app.db import utcnow
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.services import alerts as alert_service
from sentinel_app.services import escalations
from sentinel_app.services.actor import Actor

SILENCE_CHOICES = [("15", "15 minutes"), ("60", "1 hour"), ("240", "4 hours"), ("1440", "24 hours")]
_KIND_COLORS = {
    "created": "red",
    "acknowledged": "amber",
    "resolved": "grass",
    "note": "blue",
    "escalated": "purple",
    "delivery": "cyan",
    "silenced": "gray",
    "notification_failed": "red",
}


def _path_id(path: str) -> int:
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class AlertDetailState(LivePage):
    """The alert shown in this tab."""

    live_min_interval: ClassVar[float] = 0.2

    detail_id: int = 0
    found: bool = False
    loaded: bool = False
    title: str = ""
    severity: str = ""
    status: str = ""
    team: str = ""
    source: str = ""
    message: str = ""
    occurrences: int = 0
    fired_at: str = ""
    fired_text: str = ""
    last_seen_at: str = ""
    acked_by: str = ""
    acknowledged_at: str = ""
    resolved_by: str = ""
    resolved_at: str = ""
    assigned_to: str = ""
    silenced_until: str = ""
    labels: list[dict[str, str]] = []
    annotations: list[dict[str, str]] = []
    links: list[dict[str, str]] = []
    timeline: list[dict[str, str]] = []
    deliveries: list[dict[str, str]] = []
    can_act: bool = False
    silence_minutes: str = "60"
    busy: bool = False
    _team_id: int = 0
    _visible: list[int] = []
    _visible_all: bool = False

    @rx.event
    async def load(self) -> None:
        """`on_load`: the alert in the URL, if the person may see it."""
        self.detail_id = _path_id(self.router.url.path)
        self.loaded = False
        principal = await viewer(self)
        if principal is None:
            return
        await self._refresh(principal)

    async def _refresh(self, principal: Principal | None = None) -> None:
        principal = principal or await viewer(self)
        alert_id = self.detail_id
        detail = await in_db(lambda s: queries.alert_detail(s, alert_id=alert_id)) if alert_id else None
        visible = bool(principal and detail and principal.can("read", detail.snap.team_id))
        self.found, self.loaded = visible, True
        if not visible or detail is None or principal is None:
            self.title, self._team_id = "", 0
            return
        self._team_id = detail.snap.team_id
        teams = principal.visible_team_ids()
        self._visible_all, self._visible = teams is None, sorted(teams or [])
        self.can_act = principal.can("write", detail.snap.team_id)
        self._show(detail)

    def _show(self, detail: queries.AlertDetail) -> None:
        snap = detail.snap
        self.title, self.severity, self.status = snap.title, snap.severity, snap.status
        self.team, self.source, self.message = snap.team, snap.integration or snap.source, snap.message
        self.occurrences = snap.occurrences
        self.fired_at, self.fired_text = queries.iso(snap.fired_at), queries.short_time(snap.fired_at)
        self.last_seen_at = queries.iso(snap.last_seen_at)
        self.acked_by, self.acknowledged_at = snap.acked_by, queries.short_time(snap.acknowledged_at)
        self.resolved_by, self.resolved_at = snap.resolved_by, queries.short_time(snap.resolved_at)
        self.assigned_to = snap.assigned_to
        self.silenced_until = queries.short_time(snap.silenced_until)
        self.labels = [{"key": k, "value": v} for k, v in sorted(snap.labels.items())]
        self.annotations = [{"key": k, "value": v} for k, v in sorted(detail.annotations.items())]
        self.links = detail.links
        self.timeline = [
            {
                "at": queries.iso(t.at),
                "at_text": queries.short_time(t.at),
                "kind": t.kind,
                "who": t.who,
                "channel": t.channel,
                "text": t.text,
                "outcome": t.outcome,
                "detail": t.detail,
            }
            for t in detail.timeline
        ]
        self.deliveries = detail.deliveries

    # --- actions ---------------------------------------------------------------------------

    async def _do(self, action: Any, done: str) -> Any:
        self.busy = True
        try:
            await perform(self, action)
        except ActionRefused as exc:
            return rx.toast.error(exc.message, duration=8000)
        finally:
            self.busy = False
        await self._refresh()
        return rx.toast.success(done)

    @rx.event
    async def acknowledge(self) -> Any:
        """Acknowledge: escalation stops, the alert is yours."""
        return await self._do(transition_action(self.detail_id, Transition.ACKNOWLEDGE), "Acknowledged")

    @rx.event
    async def unacknowledge(self) -> Any:
        """Back to firing: escalation restarts."""
        return await self._do(transition_action(self.detail_id, Transition.UNACKNOWLEDGE), "Back to firing")

    @rx.event
    async def resolve(self, form: dict[str, Any]) -> Any:
        """Resolve, with an optional note."""
        note = str(form.get("note", "")).strip()[:10_000]
        return await self._do(transition_action(self.detail_id, Transition.RESOLVE, note=note), "Resolved")

    @rx.event
    def set_silence_minutes(self, value: str) -> None:
        """Choose how long a silence lasts."""
        self.silence_minutes = value if value in dict(SILENCE_CHOICES) else "60"

    @rx.event
    async def silence(self) -> Any:
        """Silence notifications for the chosen duration."""
        minutes = int(self.silence_minutes) if self.silence_minutes.isdigit() else 60
        return await self._do(
            transition_action(self.detail_id, Transition.SILENCE, silence_for=dt.timedelta(minutes=minutes)),
            f"Silenced for {queries.duration_text(minutes * 60)}",
        )

    @rx.event
    async def unsilence(self) -> Any:
        """Lift the silence now."""
        return await self._do(transition_action(self.detail_id, Transition.UNSILENCE), "Silence lifted")

    @rx.event
    async def escalate_now(self) -> Any:
        """Run the next escalation step now."""
        alert_id = self.detail_id

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            alert = alert_service.get_alert(session, alert_id=alert_id, for_update=True)
            principal.require_visible(alert.team_id, "write", what="alert", ident=alert_id, field="alert_id")
            escalations.escalate_now(session, alert_id=alert_id, actor=actor, now=utcnow())

        return await self._do(action, "Escalated: the next step runs now")

    @rx.event
    async def add_note(self, form: dict[str, Any]) -> Any:
        """Add a note to the timeline."""
        note = str(form.get("note", "")).strip()[:10_000]
        if not note:
            return rx.toast.warning("Write something first")
        alert_id = self.detail_id

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            alert = alert_service.get_alert(session, alert_id=alert_id)
            principal.require_visible(alert.team_id, "write", what="alert", ident=alert_id, field="alert_id")
            alert_service.add_note(session, alert_id=alert_id, actor=actor, note=note, now=utcnow())

        return await self._do(action, "Note added")

    # --- live ------------------------------------------------------------------------------

    def live_scope(self) -> LiveScope | None:
        """Only this alert's team matters."""
        if not self.found or not self._team_id:
            return None
        return LiveScope(
            teams=frozenset({self._team_id}),
            wants_alerts=False,
            params={"alert_id": self.detail_id},
            toast_teams=None if self._visible_all else frozenset(self._visible),
        )

    @staticmethod
    def live_wants_fetch(scope: LiveScope, batch: LiveBatch) -> bool:
        """Only changes of this alert matter."""
        return batch.resync or int(scope.params["alert_id"]) in batch.changed

    @staticmethod
    def live_fetch(session: Session, scope: LiveScope, batch: LiveBatch) -> Any:
        """The whole detail again when this alert changed."""
        alert_id = int(scope.params["alert_id"])
        if batch.resync or alert_id in batch.changed:
            return queries.alert_detail(session, alert_id=alert_id)
        return None

    def live_apply(self, batch: LiveBatch, fetched: Any) -> None:
        """Show the new state of the alert."""
        if isinstance(fetched, queries.AlertDetail) and fetched.snap.id == self.detail_id:
            self._show(fetched)


live.register("alert", AlertDetailState)


# --- view --------------------------------------------------------------------------------------


def _kv_table(rows: Any, empty: str, id: str) -> rx.Component:
    return rx.cond(
        rows.length() > 0,
        rx.table.root(
            rx.table.body(
                rx.foreach(
                    rows,
                    lambda r: rx.table.row(
                        rx.table.row_header_cell(rx.code(r["key"], variant="ghost")),
                        rx.table.cell(rx.text(r["value"], size="2", word_break="break-word")),
                    ),
                )
            ),
            size="1",
            width="100%",
            id=id,
        ),
        empty_note(empty),
    )


def _actions() -> rx.Component:
    return rx.cond(
        AlertDetailState.can_act & (AlertDetailState.status != "resolved"),
        rx.hstack(
            rx.cond(
                AlertDetailState.status == "firing",
                rx.button(
                    "Acknowledge",
                    on_click=AlertDetailState.acknowledge,
                    color_scheme="amber",
                    id="action-acknowledge",
                    loading=AlertDetailState.busy,
                ),
                rx.button(
                    "Unacknowledge",
                    on_click=AlertDetailState.unacknowledge,
                    variant="soft",
                    id="action-unacknowledge",
                ),
            ),
            rx.dialog.root(
                rx.dialog.trigger(rx.button("Resolve…", color_scheme="grass", id="action-resolve")),
                rx.dialog.content(
                    rx.dialog.title("Resolve this alert"),
                    rx.el.form(
                        rx.vstack(
                            rx.text_area(
                                name="note",
                                placeholder="What was done (optional)",
                                width="100%",
                                id="resolve-note",
                            ),
                            rx.hstack(
                                rx.dialog.close(
                                    rx.button("Cancel", variant="soft", color_scheme="gray", type="button")
                                ),
                                rx.dialog.close(
                                    rx.button(
                                        "Resolve", type="submit", color_scheme="grass", id="resolve-confirm"
                                    )
                                ),
                                justify="end",
                                width="100%",
                            ),
                            spacing="3",
                        ),
                        on_submit=AlertDetailState.resolve,
                        reset_on_submit=True,
                    ),
                ),
            ),
            rx.hstack(
                rx.select.root(
                    rx.select.trigger(width="8.5rem"),
                    rx.select.content(
                        *[rx.select.item(label, value=value) for value, label in SILENCE_CHOICES]
                    ),
                    value=AlertDetailState.silence_minutes,
                    on_change=AlertDetailState.set_silence_minutes,
                ),
                rx.cond(
                    AlertDetailState.silenced_until != "",
                    rx.button(
                        "Lift silence",
                        on_click=AlertDetailState.unsilence,
                        variant="soft",
                        id="action-unsilence",
                    ),
                    rx.button(
                        "Silence",
                        on_click=AlertDetailState.silence,
                        variant="soft",
                        color_scheme="gray",
                        id="action-silence",
                    ),
                ),
                spacing="1",
            ),
            rx.cond(
                AlertDetailState.status == "firing",
                rx.button(
                    "Escalate now",
                    on_click=AlertDetailState.escalate_now,
                    variant="outline",
                    color_scheme="purple",
                    id="action-escalate",
                ),
            ),
            spacing="2",
            wrap="wrap",
        ),
    )


def _summary() -> rx.Component:
    def fact(label: str, *value: Any) -> rx.Component:
        return rx.vstack(
            rx.text(label, size="1", color_scheme="gray"),
            rx.text(*value, size="2", weight="medium"),
            spacing="0",
            min_width="8rem",
        )

    return rx.card(
        rx.vstack(
            rx.hstack(
                severity_badge(AlertDetailState.severity, size="2"),
                status_badge(AlertDetailState.status, size="2", id="detail-status"),
                rx.cond(
                    AlertDetailState.silenced_until != "",
                    rx.badge("silenced until ", AlertDetailState.silenced_until, variant="outline"),
                ),
                wrap="wrap",
                spacing="2",
            ),
            rx.cond(
                AlertDetailState.message != "",
                rx.text(AlertDetailState.message, size="2", white_space="pre-wrap"),
            ),
            rx.grid(
                fact("Team", AlertDetailState.team),
                fact("Source", AlertDetailState.source),
                fact("Fired", AlertDetailState.fired_text),
                fact(
                    "Open for",
                    rx.cond(AlertDetailState.status != "resolved", since(AlertDetailState.fired_at), "—"),
                ),
                fact("Occurrences", AlertDetailState.occurrences),
                fact("Last seen", ago(AlertDetailState.last_seen_at)),
                rx.cond(
                    AlertDetailState.acked_by != "",
                    fact(
                        "Acknowledged by", AlertDetailState.acked_by, " · ", AlertDetailState.acknowledged_at
                    ),
                ),
                rx.cond(
                    AlertDetailState.resolved_at != "",
                    fact("Resolved", AlertDetailState.resolved_by, " · ", AlertDetailState.resolved_at),
                ),
                rx.cond(
                    AlertDetailState.assigned_to != "", fact("Assigned to", AlertDetailState.assigned_to)
                ),
                columns=rx.breakpoints(initial="2", sm="3", md="5"),
                spacing="4",
                width="100%",
            ),
            rx.cond(
                AlertDetailState.links.length() > 0,  # type: ignore[attr-defined]
                rx.hstack(
                    rx.foreach(
                        AlertDetailState.links,
                        lambda link: rx.link(
                            rx.button(
                                rx.icon("external-link", size=14), link["title"], variant="soft", size="1"
                            ),
                            href=link["url"],
                            is_external=True,
                            class_name="alert-link",
                            custom_attrs={"data-kind": link["kind"]},
                        ),
                    ),
                    wrap="wrap",
                    spacing="2",
                ),
            ),
            _actions(),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _timeline_entry(entry: Any) -> rx.Component:
    return rx.hstack(
        rx.badge(
            entry["kind"],
            color_scheme=rx.match(entry["kind"], *_KIND_COLORS.items(), "gray"),
            variant="soft",
            min_width=["5.5rem", "6.5rem"],
        ),
        rx.vstack(
            rx.text(
                rx.text.strong(entry["who"]),
                " via ",
                entry["channel"],
                rx.cond(entry["outcome"] != "", rx.fragment(" — ", rx.text.em(entry["outcome"]))),
                size="2",
            ),
            rx.cond(entry["text"] != "", rx.text(entry["text"], size="2", white_space="pre-wrap")),
            rx.cond(entry["detail"] != "", rx.text(entry["detail"], size="1", color_scheme="gray")),
            rx.text(entry["at_text"], size="1", color_scheme="gray"),
            spacing="0",
            flex="1",
            min_width="0",
        ),
        width="100%",
        align="start",
        padding_y="0.4rem",
        border_bottom="1px solid var(--gray-a3)",
        class_name="timeline-entry",
        custom_attrs={"data-kind": entry["kind"]},
    )


def _delivery_row(row: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["at_text"], white_space="nowrap"),
        rx.table.cell(row["channel"]),
        rx.table.cell(row["to"]),
        rx.table.cell(
            rx.badge(
                row["outcome"],
                color_scheme=rx.match(
                    row["status"],
                    ("delivered", "grass"),
                    ("sent", "grass"),
                    ("failed", "red"),
                    ("cancelled", "gray"),
                    "amber",
                ),
            )
        ),
        rx.table.cell(rx.text(row["detail"], size="1")),
        class_name="delivery-row",
    )


def _timeline() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Timeline", size="4"),
            rx.vstack(
                rx.foreach(AlertDetailState.timeline, _timeline_entry),
                spacing="0",
                width="100%",
                id="timeline",
            ),
            rx.el.form(
                rx.hstack(
                    rx.input(name="note", placeholder="Add a note", width="100%", id="note-input"),
                    rx.button("Add note", type="submit", variant="soft", id="note-submit"),
                    width="100%",
                ),
                on_submit=AlertDetailState.add_note,
                reset_on_submit=True,
                width="100%",
                display=rx.cond(AlertDetailState.can_act, "block", "none"),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _deliveries() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Notifications", size="4"),
            rx.cond(
                AlertDetailState.deliveries.length() > 0,  # type: ignore[attr-defined]
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell("Queued"),
                                rx.table.column_header_cell("Channel"),
                                rx.table.column_header_cell("To"),
                                rx.table.column_header_cell("Outcome"),
                                rx.table.column_header_cell("Detail"),
                            )
                        ),
                        rx.table.body(rx.foreach(AlertDetailState.deliveries, _delivery_row)),
                        size="1",
                        width="100%",
                    ),
                    overflow_x="auto",
                    width="100%",
                ),
                empty_note("No notifications were sent for this alert."),
            ),
            spacing="2",
            width="100%",
        ),
        id="deliveries",
        width="100%",
    )


def index() -> rx.Component:
    """The alert detail page."""
    return shell(
        "Alert",
        rx.cond(
            AlertDetailState.loaded,
            rx.cond(
                AlertDetailState.found,
                rx.vstack(
                    rx.heading(AlertDetailState.title, size="5", id="detail-title"),
                    _summary(),
                    rx.grid(
                        rx.card(
                            rx.vstack(
                                rx.heading("Labels", size="4"),
                                _kv_table(AlertDetailState.labels, "No labels.", "labels"),
                                width="100%",
                            )
                        ),
                        rx.card(
                            rx.vstack(
                                rx.heading("Annotations", size="4"),
                                _kv_table(AlertDetailState.annotations, "No annotations.", "annotations"),
                                width="100%",
                            )
                        ),
                        columns=rx.breakpoints(initial="1", md="2"),
                        spacing="4",
                        width="100%",
                    ),
                    _timeline(),
                    _deliveries(),
                    spacing="4",
                    width="100%",
                ),
                rx.callout(
                    "This alert does not exist, or it belongs to a team you are not in.",
                    icon="search-x",
                    color_scheme="gray",
                    id="not-found",
                ),
            ),
            rx.center(rx.spinner(size="3"), padding="3rem"),
        ),
        actions=rx.link("← All alerts", href="/alerts", size="2"),
    )


ON_LOAD = [AuthState.require_login, AlertDetailState.load, LiveState.attach("alert")]  # type: ignore[operator]
