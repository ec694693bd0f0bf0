"""Shared pieces of the configuration pages (schedules, policies, teams, integrations, settings).

Permission checks stay in each page's actions (`principal.require…` before any service call,
run through `pages.state.perform`); this module only holds small helpers: reading the signed-in
person, the teams they administer, wall-clock parsing in a zone, and form widgets.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

import reflex as rx
from reflex.vars import Var
from sqlmodel import Session, col, select

from pages.layout import empty_note
from pages.state import ActionRefused, perform
from sentinel_app.api.deps import Principal
from sentinel_app.domain.wallclock import load_zone, to_instant, wall_at
from sentinel_app.models import Team, TeamMembership, User
from sentinel_app.services.actor import Actor

T = TypeVar("T")

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Colors given to people in calendars, in order of first appearance.
PEOPLE_COLORS = ("blue", "grass", "orange", "purple", "cyan", "pink", "teal", "brown", "indigo", "crimson")
LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


class Refused(Exception):
    """A change refused by the server, with the message to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def attempt(state: rx.State, action: Callable[[Session, Principal, Actor], T]) -> T:
    """`perform` the action as the signed-in person; `Refused` (with a readable message) when the server says no."""
    try:
        return await perform(state, action)
    except ActionRefused as exc:
        raise Refused(sentence(exc.message)) from None


def sentence(message: str) -> str:
    """A service message as a sentence: capitalised, ending with a full stop."""
    text = message.strip() or "refused"
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def admin_team_ids(principal: Principal) -> set[int] | None:
    """Teams the person configures (None: every team, for installation administrators)."""
    if principal.user.is_admin:
        return None
    return {team for team in principal.roles if principal.can("admin", team)}


def team_options(session: Session, teams: set[int] | None) -> list[dict[str, str]]:
    """`[{"id", "name"}]` of `teams` (None: all), by name, for selects."""
    query = select(Team.id, Team.name).order_by(col(Team.name))
    if teams is not None:
        query = query.where(col(Team.id).in_(sorted(teams) or [-1]))
    return [{"id": str(i), "name": str(n)} for i, n in session.execute(query).all()]


def member_options(
    session: Session, team_id: int, *, roles: Sequence[str] | None = None
) -> list[dict[str, str]]:
    """`[{"id", "name", "email"}]` of a team's active members, by name."""
    query = (
        select(User.id, User.name, User.email)
        .join(TeamMembership, col(TeamMembership.user_id) == User.id)
        .where(TeamMembership.team_id == team_id, col(User.is_active).is_(True))
        .order_by(col(User.name), col(User.id))
    )
    if roles is not None:
        query = query.where(col(TeamMembership.role).in_(list(roles)))
    return [{"id": str(i), "name": str(n), "email": str(e)} for i, n, e in session.execute(query).all()]


# --- time ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def all_timezones() -> tuple[str, ...]:
    """Every IANA zone name this system knows, sorted (for the timezone pickers)."""
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def safe_zone(name: str) -> str:
    """`name` if it is a known zone, else UTC (stored zones are validated; this guards old rows)."""
    try:
        load_zone(name)
    except ValueError:
        return "UTC"
    return name


def parse_local(value: str, zone: str, *, what: str) -> dt.datetime:
    """A `datetime-local` input ("YYYY-MM-DDTHH:MM") read on the wall clock of `zone`, as UTC."""
    text = value.strip()
    try:
        wall = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Refused(f"{what}: enter a date and time.") from None
    if wall.tzinfo is not None:
        return wall.astimezone(dt.UTC)
    return to_instant(wall.replace(second=0, microsecond=0), load_zone(zone))


def local_input(instant: dt.datetime | None, zone: str) -> str:
    """An instant as a `datetime-local` input value on the wall clock of `zone`."""
    if instant is None:
        return ""
    return wall_at(instant, load_zone(zone)).strftime(LOCAL_INPUT_FORMAT)


def local_text(instant: dt.datetime | None, zone: str, *, with_zone: bool = False) -> str:
    """ "Mon 2026-03-02 09:00" on the wall clock of `zone` (empty for None)."""
    if instant is None:
        return ""
    wall = wall_at(instant, load_zone(zone))
    text = f"{WEEKDAYS[wall.weekday()]} {wall:%Y-%m-%d %H:%M}"
    return f"{text} {zone}" if with_zone else text


def minutes_text(minutes: int) -> str:
    """5 → "5 min", 90 → "1 h 30 min", 1440 → "1 d"."""
    if minutes <= 0:
        return "0 min"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{mins} min"] if mins else []
    return " ".join(parts)


def parse_int(value: str, *, what: str, low: int, high: int, default: int | None = None) -> int | None:
    """A whole number typed into a form, within [low, high]; blank gives `default`."""
    text = value.strip()
    if not text:
        return default
    try:
        number = int(text)
    except ValueError:
        raise Refused(f"{what}: enter a whole number.") from None
    if not low <= number <= high:
        raise Refused(f"{what}: must be from {low} to {high}.")
    return number


# --- widgets ---------------------------------------------------------------------------------


def ev(handler: Any, *args: Any) -> Any:
    """`handler(*args)`: an event spec bound to arguments (state classes are not typed for mypy)."""
    return handler(*args)


def size(var: Any) -> Any:
    """The length of a list var, for conditions in the view."""
    return var.length()


def labeled(label: str, control: rx.Component, *, hint: str = "", **props: Any) -> rx.Component:
    """A form control with its label above (and an optional hint below)."""
    return rx.vstack(
        rx.text(label, size="1", weight="medium", color_scheme="gray"),
        control,
        rx.text(hint, size="1", color_scheme="gray") if hint else rx.fragment(),
        spacing="1",
        **{"width": "100%", **props},
    )


def error_callout(message: Any, *, id: str) -> rx.Component:
    """A red callout shown while `message` is not empty."""
    return rx.cond(
        message != "",
        rx.callout(
            message, icon="triangle-alert", color_scheme="red", size="1", id=id, role="alert", width="100%"
        ),
    )


def read_only_note(show: Any, text: str) -> rx.Component:
    """A muted note for people who may look but not change."""
    return rx.cond(show, rx.callout(text, icon="eye", color_scheme="gray", size="1", width="100%"))


def copy_row(label: Any, value: Any, *, id: Any = "") -> rx.Component:
    """A label, the value in a read-only monospace field, and a copy-to-clipboard button."""
    return rx.flex(
        rx.text(label, size="1", weight="medium", color_scheme="gray", min_width="9rem"),
        rx.code(value, size="1", variant="ghost", class_name="copy-value", word_break="break-all", flex="1"),
        rx.icon_button(
            rx.icon("copy", size=14),
            size="1",
            variant="soft",
            on_click=[rx.set_clipboard(value), rx.toast.success("Copied", duration=1500)],
            title="Copy to clipboard",
            aria_label="Copy to clipboard",
            class_name="copy-button",
        ),
        id=id if isinstance(id, Var) or id else None,
        direction=rx.breakpoints(initial="column", sm="row"),
        align=rx.breakpoints(initial="start", sm="center"),
        spacing="2",
        width="100%",
        padding_y="0.25rem",
        border_bottom="1px solid var(--gray-a3)",
    )


def section(
    title: str | Var[str], *children: rx.Component, actions: rx.Component | None = None, **props: Any
) -> rx.Component:
    """A card with a heading (and optional actions on the right)."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(title, size="4"),
                rx.spacer(),
                actions if actions is not None else rx.fragment(),
                width="100%",
                align="center",
                wrap="wrap",
                spacing="2",
            ),
            *children,
            spacing="3",
            width="100%",
        ),
        width="100%",
        **props,
    )


def scroll_x(child: rx.Component, **props: Any) -> rx.Component:
    """Let a wide table scroll sideways on a narrow screen."""
    return rx.box(child, overflow_x="auto", width="100%", **props)


def data_table(
    headers: Sequence[str | rx.Component],
    items: Any,
    row: Callable[[Any], rx.Component],
    *,
    empty: str | None = None,
    **props: Any,
) -> rx.Component:
    """A full-width table (one `row` per item) that scrolls sideways; `empty` shows a note instead when no items."""
    table = scroll_x(
        rx.table.root(
            rx.table.header(
                rx.table.row(*(rx.table.column_header_cell(h) if isinstance(h, str) else h for h in headers))
            ),
            rx.table.body(rx.foreach(items, row)),
            **{"width": "100%", **props},
        )
    )
    if empty is None:
        return table
    return rx.cond(size(items) == 0, empty_note(empty), table)


def row_danger_button(label: str, on_click: Any, **props: Any) -> rx.Component:
    """The small red button that removes, deletes or revokes one table row."""
    return rx.button(label, size="1", variant="soft", color_scheme="red", on_click=on_click, **props)


def two_columns(left: rx.Component, right: rx.Component, *, left_width: str = "22rem") -> rx.Component:
    """Side by side on wide screens, stacked on phones."""
    return rx.grid(
        left,
        right,
        columns=rx.breakpoints(initial="1", md="2"),
        grid_template_columns=rx.breakpoints(initial="minmax(0, 1fr)", md=f"{left_width} minmax(0, 1fr)"),
        spacing="4",
        width="100%",
        align_items="start",
    )


def option_items(options: Any, *, label: str = "name") -> rx.Component:
    """`rx.select.item`s for `[{"id", "name"}]` options."""
    return rx.foreach(options, lambda o: rx.select.item(o[label], value=o["id"]))


def select_from(
    options: Any,
    value: Any,
    on_change: Any,
    *,
    id: str,
    placeholder: str = "Choose…",
    width: str = "100%",
    extra: Sequence[tuple[str, str]] = (),
    **props: Any,
) -> rx.Component:
    """A select over `[{"id", "name"}]` options (plus fixed `extra` (value, label) items first)."""
    return rx.select.root(
        rx.select.trigger(placeholder=placeholder, id=id, width=width),
        rx.select.content(
            *[rx.select.item(text, value=val) for val, text in extra],
            option_items(options),
        ),
        value=value,
        on_change=on_change,
        **props,
    )


def select_fixed(
    items: Sequence[tuple[str, str]],
    value: Any,
    on_change: Any,
    *,
    id: str | None = None,
    width: str = "100%",
    class_name: str | None = None,
    **props: Any,
) -> rx.Component:
    """A select over fixed (value, label) pairs (`id` and `class_name` go on the trigger button)."""
    return rx.select.root(
        rx.select.trigger(id=id, width=width, class_name=class_name),
        rx.select.content(*[rx.select.item(text, value=val) for val, text in items]),
        value=value,
        on_change=on_change,
        **props,
    )


def timezone_datalist(list_id: str = "tz-names") -> rx.Component:
    """A <datalist> of every zone name, for inputs with `list=list_id`."""
    return rx.el.datalist(*[rx.el.option(value=z) for z in all_timezones()], id=list_id)
