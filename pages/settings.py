"""Personal settings: profile (name, timezone, shift start/end notices), contact methods with
verification codes, notification rules for default and important pages, push devices, personal
API keys (the secret is shown once) and a personal on-call calendar link.

Everything here changes the signed-in person's own data only: each action resolves the session on
the server and acts on that person's user id, never on an id sent by the browser. Scoped keys
follow the REST rules (`sentinel_app/api/keys.py`): a team-limited key needs access to that team,
and a NOC wall key needs the admin role.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import reflex as rx
from sqlmodel import Session, col, select

from pages.config_kit import (
    Refused,
    attempt,
    copy_row,
    data_table,
    error_callout,
    ev,
    labeled,
    local_text,
    parse_int,
    row_danger_button,
    safe_zone,
    section,
    select_fixed,
    select_from,
    team_options,
    timezone_datalist,
)
from pages.layout import ago, shell
from pages.live import LiveState
from pages.queries import iso
from pages.state import AuthState, in_db, viewer
from sentinel_app.api.deps import Principal
from sentinel_app.db import utcnow
from sentinel_app.domain.notification_plan import PUSH, URGENCIES, Rule
from sentinel_app.models import ApiKey, User
from sentinel_app.models.base import require_id
from sentinel_app.services import api_keys, calendars, contacts, devices, notification_rules
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import ValidationFailed
from sentinel_app.settings import get_settings

CONTACT_KINDS = [
    ("sms", "SMS"),
    ("voice", "Voice call"),
    ("email", "Email"),
    ("slack", "Slack user"),
    ("webhook", "Webhook"),
]
METHOD_LABELS = {"push": "Push (mobile app)", **dict(CONTACT_KINDS)}
CONTACT_PLACEHOLDERS = {
    "sms": "+14155550123",
    "voice": "+14155550123",
    "email": "you@example.com",
    "slack": "U0123ABCD",
    "webhook": "https://example.com/page-me",
}
ANY_ADDRESS = "any"
NO_TEAM = "all"


@dataclasses.dataclass
class RuleDraft:
    """One notification rule as edited."""

    method: str = PUSH
    delay: str = "0"
    contact: str = ANY_ADDRESS


@dataclasses.dataclass
class RuleView:
    """A rule as shown, with the addresses it may be pinned to."""

    index: int = 0
    method: str = PUSH
    delay: str = "0"
    contact: str = ANY_ADDRESS
    options: list[dict[str, str]] = dataclasses.field(default_factory=list)
    takes_address: bool = False


@dataclasses.dataclass(frozen=True)
class Loaded:
    """Everything the page shows about the signed-in person."""

    name: str
    email: str
    timezone: str
    notify_start: bool
    notify_end: bool
    contacts: list[dict[str, str]]
    rules: dict[str, list[RuleDraft]]
    devices: list[dict[str, str]]
    keys: list[dict[str, str]]
    teams: list[dict[str, str]]


def _load(session: Session, principal: Principal) -> Loaded:
    user_id, zone = principal.user_id, safe_zone(principal.user.timezone)
    user = session.get(User, user_id)
    assert user is not None
    now = utcnow()
    methods = contacts.list_contact_methods(session, user_id=user_id)
    rules = notification_rules.list_rules(session, user_id=user_id)
    keys = session.exec(select(ApiKey).where(ApiKey.user_id == user_id).order_by(col(ApiKey.id).desc())).all()
    return Loaded(
        name=user.name,
        email=user.email,
        timezone=user.timezone,
        notify_start=user.notify_on_shift_start,
        notify_end=user.notify_on_shift_end,
        contacts=[
            {
                "id": str(require_id(m)),
                "kind": m.kind,
                "kind_label": dict(CONTACT_KINDS).get(m.kind, m.kind),
                "value": m.value,
                "label": m.label,
                "enabled": "yes" if m.enabled else "",
                "needs": "yes" if contacts.needs_verification(m) else "",
                "verified": "yes" if m.verified_at is not None else "",
                "pending": "yes" if contacts.verification_pending(m, now=now) else "",
                "usable": "yes" if contacts.is_usable(m) else "",
            }
            for m in methods
        ],
        rules={
            urgency: [
                RuleDraft(
                    method=r.method,
                    delay=str(r.delay_minutes),
                    contact=str(r.contact_method_id or ANY_ADDRESS),
                )
                for r in rules.get(urgency, [])
            ]
            for urgency in URGENCIES
        },
        devices=[
            {
                "id": str(require_id(d)),
                "platform": d.platform,
                "name": d.name or "unnamed device",
                "hint": devices.token_hint(d),
                "version": d.app_version,
                "active": "yes" if d.active else "",
                "reason": d.deactivation_reason,
                "seen": iso(d.last_seen_at),
                "seen_text": local_text(d.last_seen_at, zone),
            }
            for d in devices.list_devices(session, user_id=user_id)
        ],
        keys=[
            {
                "id": str(require_id(k)),
                "name": k.name,
                "prefix": k.prefix,
                "scopes": ", ".join(k.scopes),
                "team": str(k.team_id or ""),
                "created": local_text(k.created_at, zone),
                "used": iso(k.last_used_at),
                "revoked": "yes" if k.revoked_at is not None else "",
                "expired": "yes" if k.expires_at is not None and k.expires_at <= now else "",
            }
            for k in keys
        ],
        teams=team_options(session, principal.visible_team_ids()),
    )


def _own_contact(session: Session, principal: Principal, method_id: int) -> Any:
    """One of the signed-in person's contact methods (NotFound for anyone else's)."""
    return contacts.get_contact_method(session, user_id=principal.user_id, method_id=method_id, lock=True)


class SettingsState(rx.State):
    """The signed-in person's settings forms, in this tab."""

    loaded: bool = False
    email: str = ""
    p_name: str = ""
    p_timezone: str = "UTC"
    p_notify_start: bool = True
    p_notify_end: bool = False
    contacts: list[dict[str, str]] = []
    c_kind: str = "sms"
    c_value: str = ""
    c_label: str = ""
    code: str = ""
    rules_default: list[RuleDraft] = []
    rules_important: list[RuleDraft] = []
    devices: list[dict[str, str]] = []
    keys: list[dict[str, str]] = []
    teams: list[dict[str, str]] = []
    k_name: str = ""
    k_read: bool = True
    k_write: bool = False
    k_admin: bool = False
    k_wall: bool = False
    k_team: str = NO_TEAM
    new_secret: str = ""
    feed_url: str = ""
    error: str = ""

    @rx.event
    async def load(self) -> None:
        """`on_load`: the person's profile, addresses, rules, devices and keys."""
        principal = await viewer(self)
        if principal is None:
            return
        self.new_secret, self.feed_url, self.error, self.code = "", "", "", ""
        await self._reload(principal)

    async def _reload(self, principal: Principal | None = None) -> None:
        principal = principal or await viewer(self)
        if principal is None:
            return
        data = await in_db(lambda s: _load(s, principal))
        self.email, self.p_name, self.p_timezone = data.email, data.name, data.timezone
        self.p_notify_start, self.p_notify_end = data.notify_start, data.notify_end
        self.contacts, self.devices, self.keys, self.teams = (
            data.contacts,
            data.devices,
            data.keys,
            data.teams,
        )
        self.rules_default, self.rules_important = data.rules["default"], data.rules["important"]
        self.loaded = True

    @rx.event
    def set_field(self, name: str, value: str) -> None:
        """Change a text field of one of the forms."""
        if name in ("p_name", "p_timezone", "c_kind", "c_value", "c_label", "code", "k_name", "k_team"):
            setattr(self, name, str(value)[:500])

    @rx.event
    def set_flag(self, name: str, value: bool) -> None:
        """Change a checkbox or switch."""
        if name in ("p_notify_start", "p_notify_end", "k_read", "k_write", "k_admin", "k_wall"):
            setattr(self, name, bool(value))

    async def _do(self, action: Any, done: str) -> Any:
        try:
            await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            await self._reload()
            return rx.toast.error(exc.message, duration=8000)
        self.error = ""
        await self._reload()
        return rx.toast.success(done)

    # --- profile ---------------------------------------------------------------------------

    @rx.event
    async def save_profile(self) -> Any:
        """Save name, timezone and the shift start/end notices."""
        changes = {
            "name": self.p_name,
            "timezone": self.p_timezone.strip(),
            "notify_on_shift_start": self.p_notify_start,
            "notify_on_shift_end": self.p_notify_end,
        }

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            user = session.get(User, principal.user_id)
            assert user is not None
            contacts.update_profile(session, user=user, changes=changes, actor_user_id=principal.user_id)

        result = await self._do(action, "Profile saved")
        if not self.error:
            # The top bar shows the name; refresh what the shell displays.
            auth = await self.get_state(AuthState)
            auth.user_name = self.p_name.strip()
        return result

    # --- contact methods -------------------------------------------------------------------

    @rx.var
    def contact_placeholder(self) -> str:
        """An example address for the chosen kind."""
        return CONTACT_PLACEHOLDERS.get(self.c_kind, "")

    @rx.event
    async def add_contact(self) -> Any:
        """Add an address (SMS, voice and email ones must be verified before use)."""
        kind, value, label = self.c_kind, self.c_value, self.c_label

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            contacts.create_contact_method(
                session,
                user_id=principal.user_id,
                kind=kind,
                value=value,
                label=label,
                actor_user_id=principal.user_id,
            )

        result = await self._do(action, "Contact method added")
        if not self.error:
            self.c_value, self.c_label = "", ""
        return result

    @rx.event
    async def send_code(self, method_id: str) -> Any:
        """Send a 6-digit code to the address (valid 10 minutes)."""
        mid = int(method_id)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            method = _own_contact(session, principal, mid)
            contacts.send_verification(session, method=method, now=utcnow(), actor_user_id=principal.user_id)

        self.code = ""
        return await self._do(action, "Code sent: enter it below")

    @rx.event
    async def verify(self, method_id: str) -> Any:
        """Check the code that arrived."""
        mid, code = int(method_id), self.code.strip()

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            method = _own_contact(session, principal, mid)
            try:
                contacts.verify_code(
                    session, method=method, code=code, now=utcnow(), actor_user_id=principal.user_id
                )
            except ValidationFailed:
                # The failed guess (and a burnt code) must outlive the refusal.
                session.commit()
                raise

        result = await self._do(action, "Verified")
        if not self.error:
            self.code = ""
        return result

    @rx.event
    async def set_contact_enabled(self, method_id: str, enabled: bool) -> Any:
        """Use (or stop using) an address."""
        mid = int(method_id)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            method = _own_contact(session, principal, mid)
            contacts.update_contact_method(
                session, method=method, changes={"enabled": bool(enabled)}, actor_user_id=principal.user_id
            )

        return await self._do(action, "Enabled" if enabled else "Disabled")

    @rx.event
    async def delete_contact(self, method_id: str) -> Any:
        """Remove an address (rules pinned to it then use every address of its kind)."""
        mid = int(method_id)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            method = _own_contact(session, principal, mid)
            contacts.delete_contact_method(session, method=method, actor_user_id=principal.user_id)

        return await self._do(action, "Contact method removed")

    # --- notification rules ----------------------------------------------------------------

    def _views(self, rules: list[RuleDraft]) -> list[RuleView]:
        by_kind: dict[str, list[dict[str, str]]] = {}
        for m in self.contacts:
            by_kind.setdefault(m["kind"], []).append({"id": m["id"], "name": m["label"] or m["value"]})
        return [
            RuleView(
                index=i,
                method=r.method,
                delay=r.delay,
                contact=r.contact,
                options=[{"id": ANY_ADDRESS, "name": "every usable address"}, *by_kind.get(r.method, [])],
                takes_address=r.method != PUSH,
            )
            for i, r in enumerate(rules)
        ]

    @rx.var
    def default_views(self) -> list[RuleView]:
        """The default-page rules, for display."""
        return self._views(self.rules_default)

    @rx.var
    def important_views(self) -> list[RuleView]:
        """The important-page rules, for display."""
        return self._views(self.rules_important)

    def _rules(self, urgency: str) -> list[RuleDraft]:
        return list(self.rules_important if urgency == "important" else self.rules_default)

    def _put(self, urgency: str, rules: list[RuleDraft]) -> None:
        if urgency == "important":
            self.rules_important = rules
        else:
            self.rules_default = rules

    @rx.event
    def add_rule(self, urgency: str) -> None:
        """Add a rule (push right away)."""
        self._put(urgency, [*self._rules(urgency), RuleDraft()])

    @rx.event
    def remove_rule(self, urgency: str, index: int) -> None:
        """Remove a rule."""
        self._put(urgency, [r for i, r in enumerate(self._rules(urgency)) if i != index])

    @rx.event
    def set_rule(self, urgency: str, index: int, name: str, value: str) -> None:
        """Change a rule's method, delay or pinned address."""
        rules = self._rules(urgency)
        if name not in ("method", "delay", "contact") or not 0 <= index < len(rules):
            return
        changed = dataclasses.replace(rules[index], **{name: str(value)[:20]})
        if name == "method":
            changed = dataclasses.replace(changed, contact=ANY_ADDRESS)
        rules[index] = changed
        self._put(urgency, rules)

    @rx.event
    async def save_rules(self) -> Any:
        """Replace both rule lists at once."""
        try:
            rules = [
                Rule(
                    r.method,
                    parse_int(
                        r.delay,
                        what=f"{urgency.title()} rule {i + 1} delay",
                        low=0,
                        high=notification_rules.MAX_DELAY_MINUTES,
                        default=0,
                    )
                    or 0,
                    int(r.contact) if r.contact.isdigit() else None,
                    urgency=urgency,
                )
                for urgency, items in (("default", self.rules_default), ("important", self.rules_important))
                for i, r in enumerate(items)
            ]
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            notification_rules.replace_rules(
                session, user_id=principal.user_id, rules=rules, actor_user_id=principal.user_id
            )

        return await self._do(action, "Notification rules saved")

    # --- devices ---------------------------------------------------------------------------

    @rx.event
    async def remove_device(self, device_id: str) -> Any:
        """Stop pushing to one of the person's devices."""
        did = int(device_id)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            devices.unregister_device(session, user_id=principal.user_id, device_id=did, now=utcnow())

        return await self._do(action, "Device removed")

    # --- API keys --------------------------------------------------------------------------

    @rx.event
    async def create_key(self) -> Any:
        """Issue a personal API key; its secret is shown once."""
        name = self.k_name
        scopes = (
            [api_keys.WALL_SCOPE]
            if self.k_wall
            else [
                s for s, on in (("read", self.k_read), ("write", self.k_write), ("admin", self.k_admin)) if on
            ]
        )
        team_id = int(self.k_team) if self.k_team.isdigit() else None

        def action(session: Session, principal: Principal, actor: Actor) -> str:
            if api_keys.WALL_SCOPE in scopes:
                principal.require("admin", team_id)
            if team_id is not None:
                principal.require("read", team_id)
            _, secret = api_keys.issue_key(
                session,
                user_id=principal.user_id,
                name=name,
                scopes=scopes,
                team_id=team_id,
                actor_user_id=principal.user_id,
            )
            return secret

        try:
            secret = await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.error, self.new_secret, self.k_name = "", secret, ""
        await self._reload()
        return rx.toast.success("API key created: copy it now, it is shown only once")

    @rx.event
    async def revoke_key(self, key_id: str) -> Any:
        """Revoke one of the person's keys; it stops working at once."""
        kid = int(key_id)

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            key = session.get(ApiKey, kid)
            if key is None or key.user_id != principal.user_id:
                raise Refused(f"API key {kid} not found.")
            api_keys.revoke_key(session, key=key, now=utcnow(), actor_user_id=principal.user_id)

        return await self._do(action, "API key revoked")

    @rx.event
    def hide_secret(self) -> None:
        """Forget the secret shown after creating a key."""
        self.new_secret = ""

    # --- calendar --------------------------------------------------------------------------

    @rx.event
    async def issue_feed(self) -> Any:
        """A new link to a calendar of the person's own shifts (the previous link stops working)."""

        def action(session: Session, principal: Principal, actor: Actor) -> str:
            user = session.get(User, principal.user_id)
            assert user is not None
            return calendars.rotate_user_token(session, user=user, actor=actor)

        try:
            token = await attempt(self, action)
        except Refused as exc:
            return rx.toast.error(exc.message, duration=8000)
        self.feed_url = calendars.feed_url(base_url=get_settings().base_url, kind="users", token=token)
        return rx.toast.success("New calendar link: copy it now, it is shown only once")


# --- view --------------------------------------------------------------------------------------

S = SettingsState


def _profile() -> rx.Component:
    return section(
        "Profile",
        rx.text("Signed in as ", rx.code(S.email), size="2"),
        rx.grid(
            labeled(
                "Name",
                rx.input(
                    width="100%",
                    value=S.p_name,
                    on_change=lambda v: ev(S.set_field, "p_name", v),
                    id="profile-name",
                ),
            ),
            labeled(
                "Timezone",
                rx.input(
                    width="100%",
                    value=S.p_timezone,
                    on_change=lambda v: ev(S.set_field, "p_timezone", v),
                    custom_attrs={"list": "tz-names"},
                    id="profile-timezone",
                ),
                hint="calendars and times are shown in this zone",
            ),
            columns=rx.breakpoints(initial="1", sm="2"),
            spacing="3",
            width="100%",
        ),
        rx.checkbox(
            "Tell me when my on-call shift starts",
            checked=S.p_notify_start,
            on_change=lambda v: ev(S.set_flag, "p_notify_start", v),
            id="profile-notify-start",
        ),
        rx.checkbox(
            "Tell me when my on-call shift ends",
            checked=S.p_notify_end,
            on_change=lambda v: ev(S.set_flag, "p_notify_end", v),
            id="profile-notify-end",
        ),
        rx.button("Save profile", on_click=S.save_profile, id="profile-save"),
        timezone_datalist(),
    )


def _contact_row(m: Any) -> rx.Component:
    status = rx.cond(
        m["needs"] == "",
        rx.badge("no verification needed", color_scheme="gray", variant="soft"),
        rx.cond(
            m["verified"] != "",
            rx.badge("verified", color_scheme="grass", class_name="contact-verified"),
            rx.cond(
                m["pending"] != "",
                rx.badge("code sent", color_scheme="amber"),
                rx.badge("not verified", color_scheme="red", variant="soft"),
            ),
        ),
    )
    verify = rx.cond(
        (m["needs"] != "") & (m["verified"] == ""),
        rx.flex(
            rx.button(
                rx.cond(m["pending"] != "", "Send a new code", "Send code"),
                size="1",
                variant="soft",
                on_click=ev(S.send_code, m["id"]),
                class_name="contact-send-code",
            ),
            rx.cond(
                m["pending"] != "",
                rx.hstack(
                    rx.input(
                        value=S.code,
                        on_change=lambda v: ev(S.set_field, "code", v),
                        placeholder="6-digit code",
                        width="8rem",
                        size="1",
                        class_name="contact-code",
                        input_mode="numeric",
                    ),
                    rx.button(
                        "Verify", size="1", on_click=ev(S.verify, m["id"]), class_name="contact-verify"
                    ),
                    spacing="1",
                ),
            ),
            spacing="2",
            wrap="wrap",
            align="center",
        ),
    )
    return rx.table.row(
        rx.table.cell(rx.badge(m["kind_label"], variant="outline")),
        rx.table.cell(
            rx.vstack(
                rx.text(m["value"], weight="medium", word_break="break-all"),
                rx.cond(m["label"] != "", rx.text(m["label"], size="1", color_scheme="gray")),
                spacing="0",
            )
        ),
        rx.table.cell(rx.vstack(status, verify, spacing="2")),
        rx.table.cell(
            rx.switch(checked=m["enabled"] != "", on_change=lambda v: ev(S.set_contact_enabled, m["id"], v))
        ),
        rx.table.cell(
            rx.icon_button(
                rx.icon("trash-2", size=14),
                size="1",
                variant="ghost",
                color_scheme="red",
                on_click=ev(S.delete_contact, m["id"]),
                aria_label="Remove",
            )
        ),
        id="contact-" + m["id"],
        class_name="contact-row",
        align="center",
    )


def _contacts() -> rx.Component:
    return section(
        "Contact methods",
        data_table(
            ["Kind", "Address", "Status", "On", ""],
            S.contacts,
            _contact_row,
            empty="No addresses yet: add a phone number or email so pages can reach you.",
            id="contacts-table",
        ),
        rx.flex(
            labeled(
                "Kind",
                select_fixed(
                    CONTACT_KINDS,
                    S.c_kind,
                    lambda v: ev(S.set_field, "c_kind", v),
                    id="contact-kind",
                    width="9rem",
                ),
                width="auto",
            ),
            labeled(
                "Address",
                rx.input(
                    width="100%",
                    value=S.c_value,
                    on_change=lambda v: ev(S.set_field, "c_value", v),
                    placeholder=S.contact_placeholder,
                    id="contact-value",
                ),
            ),
            labeled(
                "Label",
                rx.input(
                    width="100%",
                    value=S.c_label,
                    on_change=lambda v: ev(S.set_field, "c_label", v),
                    placeholder="Work phone",
                    id="contact-label",
                ),
            ),
            rx.button("Add", on_click=S.add_contact, id="contact-add", align_self="end"),
            direction=rx.breakpoints(initial="column", md="row"),
            spacing="2",
            width="100%",
        ),
    )


def _rule_list(title: str, urgency: str, views: Any) -> rx.Component:
    return rx.vstack(
        rx.text(title, weight="bold", size="2"),
        rx.foreach(
            views,
            lambda r: rx.flex(
                rx.text("after", size="2"),
                rx.input(
                    value=r.delay,
                    on_change=lambda v: ev(S.set_rule, urgency, r.index, "delay", v),
                    type="number",
                    min=0,
                    width="5rem",
                    class_name="rule-delay",
                ),
                rx.text("min by", size="2"),
                select_fixed(
                    list(METHOD_LABELS.items()),
                    r.method,
                    lambda v: ev(S.set_rule, urgency, r.index, "method", v),
                    width="10rem",
                    class_name="rule-method",
                ),
                rx.cond(
                    r.takes_address,
                    select_from(
                        r.options,
                        r.contact,
                        lambda v: ev(S.set_rule, urgency, r.index, "contact", v),
                        id=f"rule-{urgency}-contact",
                        width="12rem",
                    ),
                ),
                rx.icon_button(
                    rx.icon("x", size=14),
                    size="1",
                    variant="ghost",
                    color_scheme="red",
                    on_click=ev(S.remove_rule, urgency, r.index),
                    aria_label="Remove rule",
                ),
                spacing="2",
                align="center",
                wrap="wrap",
                class_name=f"rule-row rule-{urgency}",
                padding="0.4rem",
                border="1px solid var(--gray-a4)",
                border_radius="var(--radius-2)",
                width="100%",
            ),
        ),
        rx.button(
            "Add a rule", size="1", variant="soft", on_click=ev(S.add_rule, urgency), id=f"rule-add-{urgency}"
        ),
        spacing="2",
        width="100%",
    )


def _rules() -> rx.Component:
    return section(
        "Notification rules",
        rx.text(
            "How you are reached when paged, counted from the page. An empty list falls back to the other list.",
            size="2",
            color_scheme="gray",
        ),
        rx.grid(
            _rule_list("Default pages", "default", S.default_views),
            _rule_list("Important pages", "important", S.important_views),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        rx.button("Save rules", on_click=S.save_rules, id="rules-save"),
    )


def _devices() -> rx.Component:
    return section(
        "Push devices",
        data_table(
            ["Device", "Platform", "Last seen", "Status", ""],
            S.devices,
            lambda d: rx.table.row(
                rx.table.cell(
                    rx.vstack(
                        rx.text(d["name"], weight="medium"),
                        rx.text(d["hint"], " · ", d["version"], size="1", color_scheme="gray"),
                        spacing="0",
                    )
                ),
                rx.table.cell(d["platform"]),
                rx.table.cell(rx.cond(d["seen"] != "", ago(d["seen"]), "never")),
                rx.table.cell(
                    rx.cond(
                        d["active"] != "",
                        rx.badge("active", color_scheme="grass"),
                        rx.badge("off: ", d["reason"], color_scheme="gray"),
                    )
                ),
                rx.table.cell(row_danger_button("Remove", ev(S.remove_device, d["id"]))),
                class_name="device-row",
            ),
            empty="No devices: sign in to the mobile app to receive push notifications.",
            id="devices-table",
        ),
    )


def _keys() -> rx.Component:
    return section(
        "Personal API keys",
        rx.cond(
            S.new_secret != "",
            rx.vstack(
                rx.callout(
                    "Copy the key now: it is shown only once.",
                    icon="key-round",
                    color_scheme="amber",
                    size="1",
                    width="100%",
                ),
                copy_row("Secret", S.new_secret, id="key-secret"),
                rx.button("Done", size="1", variant="soft", on_click=S.hide_secret),
                width="100%",
            ),
        ),
        data_table(
            ["Name", "Key", "Scopes", "Last used", ""],
            S.keys,
            lambda k: rx.table.row(
                rx.table.cell(k["name"], weight="medium"),
                rx.table.cell(rx.code(k["prefix"], "…")),
                rx.table.cell(k["scopes"], rx.cond(k["team"] != "", " (team " + k["team"] + ")", "")),
                rx.table.cell(rx.cond(k["used"] != "", ago(k["used"]), "never")),
                rx.table.cell(
                    rx.cond(
                        k["revoked"] != "",
                        rx.badge("revoked", color_scheme="gray"),
                        rx.cond(
                            k["expired"] != "",
                            rx.badge("expired", color_scheme="gray"),
                            row_danger_button("Revoke", ev(S.revoke_key, k["id"]), class_name="key-revoke"),
                        ),
                    )
                ),
                class_name="key-row",
            ),
            empty="No keys.",
            id="keys-table",
        ),
        rx.flex(
            labeled(
                "Name",
                rx.input(
                    width="100%",
                    value=S.k_name,
                    on_change=lambda v: ev(S.set_field, "k_name", v),
                    placeholder="grafana-plugin",
                    id="key-name",
                ),
            ),
            labeled(
                "Team",
                select_from(
                    S.teams,
                    S.k_team,
                    lambda v: ev(S.set_field, "k_team", v),
                    id="key-team",
                    extra=[(NO_TEAM, "All my teams")],
                ),
            ),
            direction=rx.breakpoints(initial="column", sm="row"),
            spacing="2",
            width="100%",
        ),
        rx.flex(
            rx.checkbox(
                "read", checked=S.k_read, on_change=lambda v: ev(S.set_flag, "k_read", v), disabled=S.k_wall
            ),
            rx.checkbox(
                "write",
                checked=S.k_write,
                on_change=lambda v: ev(S.set_flag, "k_write", v),
                disabled=S.k_wall,
            ),
            rx.checkbox(
                "admin",
                checked=S.k_admin,
                on_change=lambda v: ev(S.set_flag, "k_admin", v),
                disabled=S.k_wall,
            ),
            rx.checkbox(
                "NOC wall display only", checked=S.k_wall, on_change=lambda v: ev(S.set_flag, "k_wall", v)
            ),
            rx.spacer(),
            rx.button("Create key", on_click=S.create_key, id="key-create"),
            spacing="3",
            wrap="wrap",
            align="center",
            width="100%",
        ),
    )


def _calendar() -> rx.Component:
    return section(
        "My on-call calendar",
        rx.text(
            "Subscribe to a calendar of your own shifts across every schedule.", size="2", color_scheme="gray"
        ),
        rx.cond(
            S.feed_url != "",
            rx.vstack(
                rx.callout(
                    "Copy the link now: it is shown only once.",
                    icon="key-round",
                    color_scheme="amber",
                    size="1",
                    width="100%",
                ),
                copy_row("iCal", S.feed_url, id="my-feed-url"),
                width="100%",
            ),
        ),
        rx.button("New calendar link", variant="soft", on_click=S.issue_feed, id="my-feed-issue"),
    )


def index() -> rx.Component:
    """The settings page."""
    return shell(
        "Settings",
        error_callout(S.error, id="settings-error"),
        rx.grid(
            rx.vstack(_profile(), _calendar(), _devices(), spacing="4", width="100%"),
            rx.vstack(_contacts(), _rules(), spacing="4", width="100%"),
            columns=rx.breakpoints(initial="1", lg="2"),
            spacing="4",
            width="100%",
            align_items="start",
        ),
        _keys(),
    )


ON_LOAD = [AuthState.require_login, SettingsState.load, LiveState.detach]
