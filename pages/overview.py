"""Overview: open alerts by severity, who is on call now, recent activity, MTTA/MTTR of 7 days."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

import reflex as rx
from sqlmodel import Session

from pages import live, queries
from pages.layout import ago, empty_note, severity_badge, shell, stat_card, until
from pages.live import LiveBatch, LivePage, LiveScope, LiveState
from pages.state import AuthState, in_db, viewer
from sentinel_app.db import utcnow

# The chart is recomputed at most this often by live updates (acks and resolutions move it slowly).
CHART_REFRESH_S = 30.0


@dataclasses.dataclass(frozen=True)
class OverviewData:
    """Everything the overview shows, loaded in one go."""

    counts: dict[str, dict[str, int]]
    oncall: list[queries.OnCallEntry] | None
    gaps: list[str] | None
    activity: list[queries.Activity]
    times: list[queries.DayTimes] | None


def _load(session: Session, teams: set[int] | None, *, oncall: bool, chart: bool) -> OverviewData:
    now = utcnow()
    entries = queries.on_call(session, teams=teams, now=now) if oncall else None
    gaps = (
        queries.schedules_without_anyone(session, teams=teams, covered={e.schedule_id for e in entries})
        if entries is not None
        else None
    )
    return OverviewData(
        counts=queries.severity_counts(session, teams=teams),
        oncall=entries,
        gaps=gaps,
        activity=queries.recent_activity(session, teams=teams),
        times=queries.response_times(session, teams=teams, now=now) if chart else None,
    )


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else queries.duration_text(seconds)


class OverviewState(LivePage):
    """The overview of this tab."""

    live_min_interval: ClassVar[float] = 1.0

    firing_total: int = 0
    acked_total: int = 0
    by_severity: list[dict[str, str]] = []
    oncall: list[dict[str, str]] = []
    gaps: list[str] = []
    activity: list[dict[str, str]] = []
    chart: list[dict[str, str]] = []
    chart_note: str = ""
    _teams: list[int] = []
    _all_teams: bool = False
    _ready: bool = False
    _chart_at: float = 0.0

    def _team_set(self) -> set[int] | None:
        return None if self._all_teams else set(self._teams)

    @rx.event
    async def load(self) -> None:
        """`on_load`: everything, for the signed-in person's teams."""
        principal = await viewer(self)
        if principal is None:
            self._ready = False
            return
        teams = principal.visible_team_ids()
        self._all_teams, self._teams = teams is None, sorted(teams or [])
        data = await in_db(lambda s: _load(s, teams, oncall=True, chart=True))
        self._show(data)
        self._ready = True

    def _show(self, data: OverviewData) -> None:
        counts = data.counts
        self.firing_total = sum(counts["firing"].values())
        self.acked_total = sum(counts["acknowledged"].values())
        self.by_severity = [
            {
                "severity": sev,
                "firing": str(counts["firing"][sev]),
                "acknowledged": str(counts["acknowledged"][sev]),
            }
            for sev in queries.SEVERITIES
        ]
        if data.oncall is not None:
            self.oncall = [
                {
                    "schedule": e.schedule,
                    "team": e.team,
                    "user": e.user,
                    "timezone": e.timezone,
                    "until": queries.iso(e.until),
                    "until_text": queries.short_time(e.until) if e.until else "no hand-off planned",
                }
                for e in data.oncall
            ]
            self.gaps = data.gaps or []
        self.activity = [
            {
                "alert_id": str(a.alert_id),
                "title": a.title,
                "kind": a.kind,
                "actor": a.actor or "system",
                "channel": a.channel,
                "note": a.note,
                "at": queries.iso(a.at),
            }
            for a in data.activity
        ]
        if data.times is not None:
            self._chart_at = time.monotonic()
            self._show_chart(data.times)

    def _show_chart(self, times: list[queries.DayTimes]) -> None:
        peak = max([t.mttr_s or 0 for t in times] + [t.mtta_s or 0 for t in times] + [1.0])
        self.chart = [
            {
                "day": t.day.strftime("%a %d"),
                "alerts": str(t.alerts),
                "mtta": _minutes(t.mtta_s),
                "mttr": _minutes(t.mttr_s),
                "mtta_h": f"{max(2.0, 100 * (t.mtta_s or 0) / peak) if t.mtta_s is not None else 0:.1f}%",
                "mttr_h": f"{max(2.0, 100 * (t.mttr_s or 0) / peak) if t.mttr_s is not None else 0:.1f}%",
            }
            for t in times
        ]
        acks = [t.mtta_s for t in times if t.mtta_s is not None]
        fixes = [t.mttr_s for t in times if t.mttr_s is not None]
        self.chart_note = (
            f"7 days: {sum(t.alerts for t in times)} alerts, "
            f"mean MTTA {_minutes(sum(acks) / len(acks) if acks else None)}, "
            f"mean MTTR {_minutes(sum(fixes) / len(fixes) if fixes else None)} (daily means averaged)"
        )

    # --- live ------------------------------------------------------------------------------

    def live_scope(self) -> LiveScope | None:
        """The signed-in person's teams; alert snapshots are not needed (counts are reloaded)."""
        if not self._ready:
            return None
        return LiveScope(
            teams=None if self._all_teams else frozenset(self._teams),
            wants_alerts=False,
            params={"chart_due": time.monotonic() - self._chart_at > CHART_REFRESH_S},
        )

    @staticmethod
    def live_fetch(session: Session, scope: LiveScope, batch: LiveBatch) -> Any:
        """Counts and activity on every batch; on-call when it changed; the chart now and then."""
        teams = None if scope.teams is None else set(scope.teams)
        return _load(
            session,
            teams,
            oncall=batch.oncall or batch.resync,
            chart=batch.resync or bool(scope.params.get("chart_due")),
        )

    def live_apply(self, batch: LiveBatch, fetched: Any) -> None:
        """Show the fresh numbers."""
        if isinstance(fetched, OverviewData):
            self._show(fetched)


live.register("overview", OverviewState)


def _severity_row(row: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(severity_badge(row["severity"])),
        rx.table.cell(rx.text(row["firing"], weight="bold"), id=f"count-firing-{row['severity']}"),
        rx.table.cell(row["acknowledged"], id=f"count-acknowledged-{row['severity']}"),
    )


def _counts() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                stat_card("Firing", OverviewState.firing_total, color="red", id="firing-total"),
                stat_card("Acknowledged", OverviewState.acked_total, color="amber", id="acked-total"),
                spacing="3",
                wrap="wrap",
            ),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Severity"),
                        rx.table.column_header_cell("Firing"),
                        rx.table.column_header_cell("Acknowledged"),
                    )
                ),
                rx.table.body(rx.foreach(OverviewState.by_severity, _severity_row)),
                size="1",
                width="100%",
            ),
            rx.link("See open alerts →", href="/alerts", size="2"),
            spacing="3",
            width="100%",
        ),
        id="open-alerts",
    )


def _oncall_row(row: Any) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text(row["user"], weight="bold"),
            rx.text(
                row["schedule"], " · ", row["team"], " (", row["timezone"], ")", size="1", color_scheme="gray"
            ),
            spacing="0",
        ),
        rx.spacer(),
        rx.vstack(
            rx.cond(
                row["until"] != "",
                rx.text(until(row["until"]), " left", size="2", weight="medium"),
                rx.text("no end", size="2"),
            ),
            rx.text("hand-off ", row["until_text"], size="1", color_scheme="gray"),
            spacing="0",
            align="end",
        ),
        width="100%",
        align="center",
        padding_y="0.35rem",
        border_bottom="1px solid var(--gray-a3)",
        class_name="oncall-row",
    )


def _oncall() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("On call now", size="4"),
            rx.cond(
                OverviewState.oncall.length() > 0,  # type: ignore[attr-defined]
                rx.vstack(rx.foreach(OverviewState.oncall, _oncall_row), spacing="0", width="100%"),
                empty_note("Nobody is on call in your teams' schedules."),
            ),
            rx.foreach(
                OverviewState.gaps,
                lambda name: rx.callout(
                    "Nobody on call in " + name, icon="triangle-alert", color_scheme="amber", size="1"
                ),
            ),
            spacing="2",
            width="100%",
        ),
        id="oncall",
    )


def _bar(height: Any, color: str, label: Any) -> rx.Component:
    return rx.box(
        title=label,
        height=height,
        width="0.8rem",
        background=f"var(--{color}-9)",
        border_radius="3px 3px 0 0",
    )


def _chart_day(day: Any) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            _bar(day["mtta_h"], "blue", day["mtta"]),
            _bar(day["mttr_h"], "grass", day["mttr"]),
            align="end",
            spacing="1",
            height="8rem",
        ),
        rx.text(day["day"], size="1"),
        rx.text(day["mtta"], size="1", color="var(--blue-11)"),
        rx.text(day["mttr"], size="1", color="var(--grass-11)"),
        rx.text(day["alerts"], " alerts", size="1", color_scheme="gray"),
        spacing="0",
        align="center",
        flex="1",
        min_width="2.6rem",
    )


def _chart() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Response times, last 7 days", size="4"),
                rx.spacer(),
                rx.hstack(
                    rx.box(width="0.7rem", height="0.7rem", background="var(--blue-9)"),
                    rx.text("MTTA", size="1"),
                    rx.box(width="0.7rem", height="0.7rem", background="var(--grass-9)"),
                    rx.text("MTTR", size="1"),
                    align="center",
                    spacing="1",
                ),
                width="100%",
                wrap="wrap",
            ),
            rx.hstack(
                rx.foreach(OverviewState.chart, _chart_day),
                width="100%",
                spacing="1",
                align="end",
                overflow_x="auto",
            ),
            rx.text(OverviewState.chart_note, size="1", color_scheme="gray"),
            spacing="3",
            width="100%",
        ),
        id="response-chart",
    )


def _activity_row(row: Any) -> rx.Component:
    return rx.hstack(
        rx.badge(row["kind"], variant="soft", color_scheme="gray"),
        rx.vstack(
            rx.link(row["title"], href="/alerts/" + row["alert_id"], size="2", weight="medium"),
            rx.text(
                row["actor"],
                " · ",
                row["channel"],
                rx.cond(row["note"] != "", " · " + row["note"], ""),
                size="1",
                color_scheme="gray",
            ),
            spacing="0",
            min_width="0",
            flex="1",
        ),
        rx.text(ago(row["at"]), size="1", color_scheme="gray", white_space="nowrap"),
        width="100%",
        align="center",
        padding_y="0.3rem",
        border_bottom="1px solid var(--gray-a3)",
    )


def _activity() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Recent activity", size="4"),
            rx.cond(
                OverviewState.activity.length() > 0,  # type: ignore[attr-defined]
                rx.vstack(rx.foreach(OverviewState.activity, _activity_row), spacing="0", width="100%"),
                empty_note("Nothing has happened yet."),
            ),
            spacing="2",
            width="100%",
        ),
        id="activity",
    )


def index() -> rx.Component:
    """The overview page."""
    return shell(
        "Overview",
        rx.grid(
            _counts(),
            _oncall(),
            _chart(),
            _activity(),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
    )


ON_LOAD = [AuthState.require_login, OverviewState.load, LiveState.attach("overview")]  # type: ignore[operator]
