"""The app shell: top bar with navigation, the signed-in person and sign-out; shared widgets.

`shell(title, *children)` wraps every signed-in page. Navigation comes from `NAV_ITEMS` (append
to it when adding a page); on narrow screens it folds into a menu. The browser clock script
(`CLOCK_SCRIPT`) keeps elapsed/remaining times ticking without any server traffic: render
`since(iso)` / `until(iso)` / `ago(iso)` and the text is filled in and updated every second.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx
from reflex.vars import Var

from pages.state import AuthState


@dataclass(frozen=True)
class NavItem:
    """One entry of the top navigation."""

    label: str
    href: str
    icon: str


NAV_ITEMS: list[NavItem] = [
    NavItem("Overview", "/", "layout-dashboard"),
    NavItem("Alerts", "/alerts", "siren"),
    NavItem("Wall", "/wall", "monitor"),
]

SEVERITY_COLORS = {"critical": "red", "error": "orange", "warning": "amber", "info": "blue"}
STATUS_COLORS = {"firing": "red", "acknowledged": "amber", "resolved": "grass"}

# Fills [data-since] (elapsed, h:mm:ss), [data-until] (time left), [data-ago] ("5m ago") from
# ISO timestamps and [data-clock] with the local time, every second and right after the page changes. The elements have no React
# children, so React never fights over their text.
CLOCK_SCRIPT = """
(function () {
  if (window.__sentinelClock) { return; }
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function clock(s) {
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    var t = h + ":" + pad(m) + ":" + pad(s % 60);
    return d > 0 ? d + "d " + pad(h) + ":" + pad(m) + ":" + pad(s % 60) : t;
  }
  function compact(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) { return s + "s"; }
    var m = Math.floor(s / 60);
    if (m < 60) { return m + "m"; }
    var h = Math.floor(m / 60);
    if (h < 24) { return h + "h " + pad(m % 60) + "m"; }
    return Math.floor(h / 24) + "d " + (h % 24) + "h";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-since"));
      el.textContent = isNaN(t) ? "" : clock((now - t) / 1000);
    });
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-until"));
      el.textContent = isNaN(t) ? "" : compact((t - now) / 1000);
    });
    document.querySelectorAll("[data-clock]").forEach(function (el) {
      el.textContent = new Date(now).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    });
    document.querySelectorAll("[data-ago]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-ago"));
      el.textContent = isNaN(t) ? "" : compact((now - t) / 1000) + " ago";
    });
  }
  var queued = false;
  function soon() {
    if (queued) { return; }
    queued = true;
    window.requestAnimationFrame(function () { queued = false; tick(); });
  }
  window.__sentinelClock = window.setInterval(tick, 1000);
  new MutationObserver(soon).observe(document.documentElement,
    { subtree: true, childList: true, attributes: true, attributeFilter: ["data-since", "data-until", "data-ago"] });
  soon();
})();
"""


def clock_script() -> rx.Component:
    """The ticking-clock script (idempotent; include it once per page)."""
    return rx.script(CLOCK_SCRIPT)


def since(value: Var[str] | str, **props: object) -> rx.Component:
    """Elapsed time since an ISO instant, ticking (h:mm:ss)."""
    return rx.el.span(custom_attrs={"data-since": value}, **props)


def until(value: Var[str] | str, **props: object) -> rx.Component:
    """Time left until an ISO instant, ticking ("3h 05m")."""
    return rx.el.span(custom_attrs={"data-until": value}, **props)


def ago(value: Var[str] | str, **props: object) -> rx.Component:
    """How long ago an ISO instant was ("5m ago"), ticking."""
    return rx.el.span(custom_attrs={"data-ago": value}, **props)


def severity_badge(severity: Var[str] | str, **props: object) -> rx.Component:
    """A colored severity badge."""
    return rx.badge(
        severity,
        color_scheme=rx.match(severity, *SEVERITY_COLORS.items(), "gray"),
        variant="solid",
        **props,
    )


def status_badge(status: Var[str] | str, **props: object) -> rx.Component:
    """A colored status badge."""
    return rx.badge(status, color_scheme=rx.match(status, *STATUS_COLORS.items(), "gray"), **props)


def _nav_link(item: NavItem) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon(item.icon, size=16), rx.text(item.label, size="2"), spacing="1", align="center"),
        href=item.href,
        underline="none",
        color_scheme="gray",
        high_contrast=True,
        id=f"nav-{item.label.lower()}",
    )


def _user_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.icon("circle-user", size=16),
                rx.text(AuthState.user_name, size="2", display=["none", "none", "inline"]),
                variant="ghost",
                color_scheme="gray",
                id="user-menu",
            )
        ),
        rx.menu.content(
            rx.box(
                rx.text(AuthState.user_name, weight="bold", size="2"),
                rx.text(AuthState.user_email, size="1", color_scheme="gray"),
                rx.cond(
                    AuthState.is_admin, rx.text("Installation administrator", size="1", color_scheme="gray")
                ),
                rx.foreach(
                    AuthState.teams,
                    lambda team: rx.text(team["name"], " · ", team["role"], size="1", color_scheme="gray"),
                ),
                padding_x="0.75rem",
                padding_y="0.4rem",
            ),
            rx.menu.separator(),
            rx.menu.item("Sign out", on_click=AuthState.logout, color="red", id="logout"),
        ),
    )


def _mobile_nav() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(rx.icon_button(rx.icon("menu"), variant="ghost", color_scheme="gray", id="nav-menu")),
        rx.menu.content(
            *[rx.menu.item(rx.link(i.label, href=i.href, underline="none")) for i in NAV_ITEMS],
        ),
    )


def top_bar() -> rx.Component:
    """The bar above every signed-in page."""
    return rx.box(
        rx.hstack(
            rx.box(_mobile_nav(), display=["block", "block", "none"]),
            rx.link(
                rx.hstack(
                    rx.icon("shield-alert", size=20),
                    rx.heading("Sentinel", size="4"),
                    spacing="2",
                    align="center",
                ),
                href="/",
                underline="none",
                color_scheme="gray",
                high_contrast=True,
            ),
            rx.hstack(
                *[_nav_link(i) for i in NAV_ITEMS],
                spacing="5",
                display=["none", "none", "flex"],
                padding_left="1rem",
            ),
            rx.spacer(),
            rx.color_mode.button(size="2", variant="ghost"),
            _user_menu(),
            align="center",
            spacing="3",
            width="100%",
            max_width="1400px",
            margin_x="auto",
        ),
        padding_x="1rem",
        padding_y="0.6rem",
        border_bottom="1px solid var(--gray-a5)",
        background="var(--color-panel-solid)",
        position="sticky",
        top="0",
        z_index="10",
        width="100%",
    )


def shell(title: str, *children: rx.Component, actions: rx.Component | None = None) -> rx.Component:
    """A signed-in page: top bar, a heading with optional actions, then the content."""
    return rx.box(
        clock_script(),
        top_bar(),
        rx.box(
            rx.cond(
                AuthState.signed_in,
                rx.vstack(
                    rx.hstack(
                        rx.heading(title, size="6"),
                        rx.spacer(),
                        actions if actions is not None else rx.fragment(),
                        width="100%",
                        align="center",
                        wrap="wrap",
                        spacing="3",
                    ),
                    *children,
                    spacing="4",
                    width="100%",
                ),
                rx.center(rx.spinner(size="3"), padding="4rem"),
            ),
            padding=["0.75rem", "1rem", "1.5rem"],
            max_width="1400px",
            margin_x="auto",
            width="100%",
        ),
        min_height="100vh",
        background="var(--gray-1)",
    )


def stat_card(
    label: str, value: Var[int] | Var[str] | int | str, *, color: str = "gray", id: str = ""
) -> rx.Component:
    """A small number with a caption."""
    return rx.card(
        rx.vstack(
            rx.text(label, size="1", color_scheme="gray", weight="medium"),
            rx.heading(value, size="7", color_scheme=color),
            spacing="1",
        ),
        id=id or None,
        min_width="8rem",
    )


def empty_note(text: str) -> rx.Component:
    """A muted line for empty lists."""
    return rx.text(text, color_scheme="gray", size="2", padding_y="0.5rem")
