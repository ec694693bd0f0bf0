"""Landing page: product name, version and live readiness of the database, schema and Ray."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from sentinel_app import __version__
from sentinel_app.api.health import readiness
from sentinel_app.runtime import get_runtime

_STATUS_COLOR = {"ok": "grass", "degraded": "amber", "unavailable": "red"}


class HomeState(rx.State):
    """Readiness as last checked by this browser tab."""

    status: str = "checking"
    checks: list[dict[str, str]] = []

    @rx.event
    async def refresh(self) -> None:
        """Run the readiness checks again."""
        report = await readiness(get_runtime())
        self.status = report["status"]
        self.checks = [
            {"name": name, "ok": "ok" if check["ok"] else "failing", "detail": _detail(name, check)}
            for name, check in report["checks"].items()
        ]


def _detail(name: str, check: dict[str, object]) -> str:
    if not check["ok"]:
        return str(check.get("error", ""))
    if name == "database":
        return f"{check['backend']}, {check['latency_ms']} ms"
    if name == "migrations":
        return f"at {check['current']}"
    return f"{check.get('address')}, {check.get('latency_ms')} ms"


def _check_row(check: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(check["name"]),
        rx.table.cell(
            rx.badge(check["ok"], color_scheme=rx.cond(check["ok"] == "ok", "grass", "red"), size="2"),
        ),
        rx.table.cell(rx.text(check["detail"], size="2", color_scheme="gray")),
        id=f"check-{check['name']}",
    )


def index() -> rx.Component:
    """The landing page."""
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading("Fangorn Sentinel", size="8"),
                rx.text("Self-hosted on-call: alerts, schedules, escalation.", color_scheme="gray"),
                rx.text(f"Version {__version__}", id="version", size="2"),
                rx.hstack(
                    rx.text("Readiness:", weight="bold"),
                    rx.badge(
                        HomeState.status,
                        id="readiness",
                        size="3",
                        color_scheme=rx.match(HomeState.status, *_STATUS_COLOR.items(), "gray"),
                    ),
                    rx.button("Check again", on_click=HomeState.refresh, size="1", variant="soft"),
                    align="center",
                ),
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Check"),
                            rx.table.column_header_cell("State"),
                            rx.table.column_header_cell("Detail"),
                        )
                    ),
                    rx.table.body(rx.foreach(HomeState.checks, _check_row)),
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
            size="4",
            width="min(40rem, 95vw)",
        ),
        min_height="100vh",
        padding="1rem",
    )
