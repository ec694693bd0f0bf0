"""Registers the configuration pages (schedules, policies, teams, integrations, settings).

`sentinel_app/sentinel_app.py` calls `register(app)` once, after its own pages. Each page gets the
foundation's sign-in guard (`AuthState.require_login`) first in its `on_load`, and the top
navigation gains an entry per page (the shell reads `NAV_ITEMS` when pages are compiled).
"""

from __future__ import annotations

import reflex as rx

from pages import integrations, policies, schedule_detail, schedules, settings, teams
from pages.layout import NAV_ITEMS, NavItem

NAV = [
    NavItem("Schedules", "/schedules", "calendar-days"),
    NavItem("Policies", "/policies", "list-ordered"),
    NavItem("Teams", "/teams", "users"),
    NavItem("Integrations", "/integrations", "plug"),
    NavItem("Settings", "/settings", "settings"),
]


def register(app: rx.App) -> None:
    """Add the configuration pages and their navigation entries to `app`."""
    for item in NAV:
        if item not in NAV_ITEMS:
            NAV_ITEMS.append(item)
    app.add_page(
        schedules.index, route="/schedules", title="Schedules · Fangorn Sentinel", on_load=schedules.ON_LOAD
    )
    app.add_page(
        schedule_detail.index,
        route="/schedules/[id]",
        title="Schedule · Fangorn Sentinel",
        on_load=schedule_detail.ON_LOAD,
    )
    app.add_page(
        policies.index,
        route="/policies",
        title="Escalation policies · Fangorn Sentinel",
        on_load=policies.ON_LOAD,
    )
    app.add_page(teams.index, route="/teams", title="Teams · Fangorn Sentinel", on_load=teams.ON_LOAD)
    app.add_page(
        integrations.index,
        route="/integrations",
        title="Integrations · Fangorn Sentinel",
        on_load=integrations.ON_LOAD,
    )
    app.add_page(
        settings.index, route="/settings", title="Settings · Fangorn Sentinel", on_load=settings.ON_LOAD
    )
