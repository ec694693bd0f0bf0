"""Integrations: create one (its token and every sender's webhook URL are shown once, with copy
buttons), choose the default escalation policy, enable or disable, rotate the token, look at the
last payloads received, and send a test alert through the integration's own routing.

Configuration needs the admin role in the integration's team; sending a test alert needs the
responder role (it pages people like a real alert). Both are checked on the server.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import reflex as rx
from sqlmodel import Session, col, select

from pages.config_kit import (
    Refused,
    admin_team_ids,
    attempt,
    copy_row,
    error_callout,
    ev,
    labeled,
    local_text,
    read_only_note,
    safe_zone,
    section,
    select_fixed,
    select_from,
    size,
    team_options,
    two_columns,
)
from pages.layout import ago, empty_note, shell
from pages.live import LiveState
from pages.queries import iso
from pages.state import AuthState, in_db, viewer
from sentinel_app.api.deps import Principal
from sentinel_app.db import utcnow
from sentinel_app.ingest.normalized import NormalizedAlert
from sentinel_app.models import Alert, AlertEvent, EscalationPolicy, Integration, IntegrationKind, Team
from sentinel_app.models.base import require_id
from sentinel_app.services import alerts as alert_service
from sentinel_app.services import integrations as service
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import Conflict, ValidationFailed
from sentinel_app.settings import get_settings

KIND_CHOICES = [
    ("alertmanager", "Prometheus Alertmanager"),
    ("grafana_alerting", "Grafana Alerting"),
    ("grafana", "Grafana (legacy)"),
    ("pagerduty", "PagerDuty Events v2"),
    ("webhook", "Generic webhook"),
    ("formatted_webhook", "Formatted webhook"),
]
KIND_LABELS = dict(KIND_CHOICES)
NO_POLICY = "none"
PAYLOADS_SHOWN = 10
TOKEN_PLACEHOLDER = "<token>"


def url_rows(kind: str, token: str) -> list[dict[str, str]]:
    """Each sender's webhook URL for this token, labelled, the integration's own kind first."""
    urls = service.webhook_urls(base_url=get_settings().base_url, kind=kind, token=token)
    rows = [
        {"key": "url", "label": f"This integration ({KIND_LABELS.get(kind, kind)})", "url": urls.pop("url")}
    ]
    if "grafana_oncall" in urls:
        rows.append(
            {
                "key": "grafana_oncall",
                "label": "Grafana OnCall-compatible path",
                "url": urls.pop("grafana_oncall"),
            }
        )
    pagerduty = urls.pop("pagerduty_events_v2", "")
    rows += [{"key": k, "label": KIND_LABELS.get(k, k), "url": v} for k, v in urls.items() if k != kind]
    if pagerduty:
        rows.append(
            {
                "key": "pagerduty_events_v2",
                "label": "PagerDuty Events API v2 (token as routing_key)",
                "url": pagerduty,
            }
        )
    return rows


def _rows(session: Session, teams: set[int] | None, zone: str) -> list[dict[str, str]]:
    query = select(Integration).order_by(col(Integration.name))
    if teams is not None:
        query = query.where(col(Integration.team_id).in_(sorted(teams) or [-1]))
    found = list(session.exec(query))
    team_names = {require_id(t): t.name for t in session.exec(select(Team))}
    policy_ids = {i.default_escalation_policy_id for i in found if i.default_escalation_policy_id}
    policies = {
        require_id(p): p.name
        for p in session.exec(
            select(EscalationPolicy).where(col(EscalationPolicy.id).in_(sorted(policy_ids) or [-1]))
        )
    }
    return [
        {
            "id": str(require_id(i)),
            "name": i.name,
            "kind": i.kind,
            "kind_label": KIND_LABELS.get(i.kind, i.kind),
            "team_id": str(i.team_id),
            "team": team_names.get(i.team_id, ""),
            "policy_id": str(i.default_escalation_policy_id or NO_POLICY),
            "policy": policies.get(i.default_escalation_policy_id or 0, ""),
            "enabled": "yes" if i.enabled else "",
            "prefix": i.token_prefix,
            "last": iso(i.last_received_at),
            "last_text": local_text(i.last_received_at, zone),
        }
        for i in found
    ]


def _policies(session: Session, team_id: int) -> list[dict[str, str]]:
    rows = session.execute(
        select(EscalationPolicy.id, EscalationPolicy.name)
        .where(EscalationPolicy.team_id == team_id)
        .order_by(col(EscalationPolicy.name))
    ).all()
    return [{"id": str(i), "name": str(n)} for i, n in rows]


def recent_payloads(
    session: Session, integration_id: int, zone: str, limit: int = PAYLOADS_SHOWN
) -> list[dict[str, str]]:
    """The newest raw sender payloads of this integration (alert created or repeated)."""
    rows = session.execute(
        select(AlertEvent, Alert.title)
        .join(Alert, col(Alert.id) == AlertEvent.alert_id)
        .where(Alert.integration_id == integration_id, col(AlertEvent.kind).in_(["created", "occurrence"]))
        .order_by(col(AlertEvent.id).desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": str(event.id),
            "alert_id": str(event.alert_id),
            "title": str(title),
            "kind": event.kind,
            "at": iso(event.created_at),
            "at_text": local_text(event.created_at, zone),
            "payload": json.dumps(
                event.payload or {}, indent=2, sort_keys=True, ensure_ascii=False, default=str
            )[:8000],
        }
        for event, title in rows
    ]


def _check_policy(session: Session, team_id: int, policy_id: int | None) -> None:
    """The default policy must belong to the integration's team (as the REST API requires)."""
    if policy_id is None:
        return
    policy = session.get(EscalationPolicy, policy_id)
    if policy is None or policy.team_id != team_id:
        raise ValidationFailed(
            f"escalation policy {policy_id} does not exist in team {team_id}",
            field="default_escalation_policy_id",
        )


def _integration_for(session: Session, principal: Principal, integration_id: int, action: str) -> Integration:
    """The integration, if the person may `action` in its team (404 for other teams')."""
    integration = session.get(Integration, integration_id) if integration_id > 0 else None
    team_id = integration.team_id if integration is not None else None
    principal.require_visible(
        team_id, action, what="integration", ident=integration_id, field="integration_id"
    )
    assert integration is not None
    return integration


def _policy_value(value: str) -> int | None:
    return int(value) if value.isdigit() else None


class IntegrationsState(rx.State):
    """The integration list, the selected integration and the create form, in this tab."""

    rows: list[dict[str, str]] = []
    loaded: bool = False
    selected: str = ""
    can_admin: bool = False
    can_write: bool = False
    urls: list[dict[str, str]] = []
    urls_revealed: bool = False
    token: str = ""
    payloads: list[dict[str, str]] = []
    policies: list[dict[str, str]] = []
    admin_teams: list[dict[str, str]] = []
    c_team: str = ""
    c_name: str = ""
    c_kind: str = "alertmanager"
    c_policy: str = NO_POLICY
    c_policies: list[dict[str, str]] = []
    error: str = ""
    viewer_zone: str = "UTC"
    _teams: list[int] = []
    _all: bool = False

    @rx.var
    def current(self) -> dict[str, str]:
        """The selected integration's row (empty when none)."""
        for row in self.rows:
            if row["id"] == self.selected:
                return row
        return {}

    @rx.event
    async def load(self) -> None:
        """`on_load`: the visible integrations (`?id=` selects one) and the create form's choices."""
        principal = await viewer(self)
        if principal is None:
            return
        teams = principal.visible_team_ids()
        self._all, self._teams = teams is None, sorted(teams or [])
        self.viewer_zone = safe_zone(principal.user.timezone)
        self.admin_teams = await in_db(lambda s: team_options(s, admin_team_ids(principal)))
        if self.admin_teams and self.c_team not in {t["id"] for t in self.admin_teams}:
            self.c_team = self.admin_teams[0]["id"]
        await self._load_create_policies()
        self.error, self.token, self.urls_revealed = "", "", False
        wanted = str(self.router.url.query_parameters.get("id", ""))
        await self._reload(principal, wanted)

    async def _load_create_policies(self) -> None:
        team_id = int(self.c_team) if self.c_team.isdigit() else 0
        self.c_policies = await in_db(lambda s: _policies(s, team_id)) if team_id else []
        if self.c_policy not in {p["id"] for p in self.c_policies}:
            self.c_policy = NO_POLICY

    async def _reload(self, principal: Principal | None = None, wanted: str = "") -> None:
        principal = principal or await viewer(self)
        if principal is None:
            return
        teams, zone = (None if self._all else set(self._teams)), self.viewer_zone
        self.rows = await in_db(lambda s: _rows(s, teams, zone))
        ids = [r["id"] for r in self.rows]
        if wanted in ids:
            self.selected = wanted
        elif self.selected not in ids:
            self.selected = ids[0] if ids else ""
        self.loaded = True
        await self._load_selected(principal)

    async def _load_selected(self, principal: Principal) -> None:
        row = next((r for r in self.rows if r["id"] == self.selected), None)
        if row is None:
            self.payloads, self.policies, self.urls = [], [], []
            self.can_admin = self.can_write = False
            return
        team_id, iid, zone = int(row["team_id"]), int(row["id"]), self.viewer_zone
        self.can_admin = principal.can("admin", team_id)
        self.can_write = principal.can("write", team_id)
        self.policies = await in_db(lambda s: _policies(s, team_id))
        self.payloads = await in_db(lambda s: recent_payloads(s, iid, zone))
        if not self.urls_revealed:
            self.urls = url_rows(row["kind"], TOKEN_PLACEHOLDER)

    @rx.event
    async def select(self, integration_id: str) -> None:
        """Show another integration (a revealed token is hidden again)."""
        self.selected, self.token, self.urls_revealed, self.error = integration_id, "", False, ""
        await self._reload()

    @rx.event
    async def refresh_payloads(self) -> None:
        """Load the newest payloads again."""
        await self._reload()

    # --- create ----------------------------------------------------------------------------

    @rx.event
    async def set_create(self, name: str, value: str) -> None:
        """Change a field of the create form."""
        if name in ("c_name", "c_kind", "c_policy"):
            setattr(self, name, str(value)[:200])
        elif name == "c_team":
            self.c_team = value
            await self._load_create_policies()

    @rx.event
    async def create(self) -> Any:
        """Create the integration (team admins); its token and URLs are shown now, once."""
        team_id = int(self.c_team) if self.c_team.isdigit() else 0
        name, kind, policy_id = self.c_name.strip(), self.c_kind, _policy_value(self.c_policy)

        def action(session: Session, principal: Principal, actor: Actor) -> tuple[int, str]:
            principal.require("admin", team_id)
            if kind not in set(IntegrationKind):
                raise ValidationFailed(f"unknown integration kind {kind!r}", field="kind")
            _check_policy(session, team_id, policy_id)
            taken = session.exec(
                select(Integration.id).where(Integration.team_id == team_id, Integration.name == name)
            ).first()
            if taken is not None:
                raise Conflict(f"this team already has an integration named {name!r}", field="name")
            row, token = service.create_integration(
                session,
                team_id=team_id,
                name=name,
                kind=kind,
                default_escalation_policy_id=policy_id,
                actor_user_id=principal.user_id,
            )
            return require_id(row), token

        try:
            integration_id, token = await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.error, self.c_name = "", ""
        self.selected = str(integration_id)
        self.token, self.urls, self.urls_revealed = token, url_rows(kind, token), True
        await self._reload(wanted=str(integration_id))
        return rx.toast.success(f"Integration {name!r} created: copy its URL now")

    # --- change ----------------------------------------------------------------------------

    def _selected_id(self) -> int:
        return int(self.selected) if self.selected.isdigit() else 0

    async def _change(self, changes: dict[str, Any], done: str) -> Any:
        iid = self._selected_id()

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            integration = _integration_for(session, principal, iid, "admin")
            if "default_escalation_policy_id" in changes:
                _check_policy(session, integration.team_id, changes["default_escalation_policy_id"])
            service.update_integration(
                session, integration=integration, changes=changes, actor_user_id=principal.user_id
            )

        try:
            await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            await self._reload()
            return rx.toast.error(exc.message, duration=8000)
        self.error = ""
        await self._reload()
        return rx.toast.success(done)

    @rx.event
    async def set_policy(self, value: str) -> Any:
        """Route this integration's alerts to another default escalation policy (or none)."""
        return await self._change(
            {"default_escalation_policy_id": _policy_value(value)}, "Default policy changed"
        )

    @rx.event
    async def set_enabled(self, value: bool) -> Any:
        """Accept (or refuse) alerts on this integration."""
        return await self._change({"enabled": bool(value)}, "Enabled" if value else "Disabled")

    @rx.event
    async def rotate(self) -> Any:
        """Issue a new token: the URLs change, the old ones stop working at once."""
        iid = self._selected_id()

        def action(session: Session, principal: Principal, actor: Actor) -> tuple[str, str]:
            integration = _integration_for(session, principal, iid, "admin")
            return integration.kind, service.rotate_token(
                session, integration=integration, actor_user_id=principal.user_id
            )

        try:
            kind, token = await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.error, self.token, self.urls, self.urls_revealed = "", token, url_rows(kind, token), True
        await self._reload()
        return rx.toast.success("New token issued: copy the URLs now")

    @rx.event
    async def delete(self) -> Any:
        """Delete the integration (its alerts stay)."""
        iid = self._selected_id()

        def action(session: Session, principal: Principal, actor: Actor) -> None:
            integration = _integration_for(session, principal, iid, "admin")
            service.delete_integration(session, integration=integration, actor_user_id=principal.user_id)

        try:
            await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.error, self.selected, self.token, self.urls_revealed = "", "", "", False
        await self._reload()
        return rx.toast.success("Integration deleted")

    @rx.event
    async def send_test(self) -> Any:
        """Fire a synthetic info alert through this integration (routing and escalation included)."""
        iid = self._selected_id()

        def action(session: Session, principal: Principal, actor: Actor) -> int:
            integration = _integration_for(session, principal, iid, "write")
            if not integration.enabled:
                raise Refused("This integration is disabled: enable it before sending a test alert.")
            now = utcnow()
            raw = {
                "sentinel_test": True,
                "title": "Test alert from Fangorn Sentinel",
                "integration": integration.name,
                "sent_by": principal.user.email,
                "sent_at": now.isoformat(),
            }
            alert = NormalizedAlert(
                action="trigger",
                dedup_key=f"sentinel-test-{uuid.uuid4().hex}",
                title=f"Test alert for {integration.name}",
                message=f"Sent by {principal.user.name} from the integrations page to check routing and notifications.",
                severity="info",
                labels={"sentinel_test": "true", "integration": integration.name},
                source="sentinel-test",
                fired_at=now,
                raw=raw,
            )
            [result] = alert_service.ingest(session, integration=integration, alerts=[alert], now=now)
            return result.alert_id or 0

        try:
            alert_id = await attempt(self, action)
        except Refused as exc:
            self.error = exc.message
            return rx.toast.error(exc.message, duration=8000)
        self.error = ""
        await self._reload()
        return rx.toast.success(f"Test alert #{alert_id} sent")


# --- view --------------------------------------------------------------------------------------

I = IntegrationsState  # noqa: E741


def _list() -> rx.Component:
    return section(
        "Integrations",
        rx.cond(
            I.loaded & (size(I.rows) == 0),
            empty_note("No integrations yet."),
            rx.vstack(
                rx.foreach(
                    I.rows,
                    lambda r: rx.box(
                        rx.hstack(
                            rx.vstack(
                                rx.text(r["name"], weight="bold", size="2"),
                                rx.text(r["kind_label"], " · ", r["team"], size="1", color_scheme="gray"),
                                spacing="0",
                            ),
                            rx.spacer(),
                            rx.cond(r["enabled"] == "", rx.badge("disabled", color_scheme="gray", size="1")),
                            align="center",
                            width="100%",
                        ),
                        on_click=ev(I.select, r["id"]),
                        cursor="pointer",
                        padding="0.5rem",
                        border_radius="var(--radius-2)",
                        background=rx.cond(I.selected == r["id"], "var(--accent-a3)", "transparent"),
                        id="integration-" + r["id"],
                        class_name="integration-item",
                        width="100%",
                    ),
                ),
                spacing="1",
                width="100%",
            ),
        ),
    )


def _create() -> rx.Component:
    return section(
        "New integration",
        labeled(
            "Team",
            select_from(I.admin_teams, I.c_team, lambda v: ev(I.set_create, "c_team", v), id="int-team"),
        ),
        labeled(
            "Name",
            rx.input(
                width="100%",
                value=I.c_name,
                on_change=lambda v: ev(I.set_create, "c_name", v),
                placeholder="prometheus-prod",
                id="int-name",
            ),
        ),
        labeled(
            "Sender",
            select_fixed(KIND_CHOICES, I.c_kind, lambda v: ev(I.set_create, "c_kind", v), id="int-kind"),
        ),
        labeled(
            "Default escalation policy",
            select_from(
                I.c_policies,
                I.c_policy,
                lambda v: ev(I.set_create, "c_policy", v),
                id="int-policy",
                extra=[(NO_POLICY, "None")],
            ),
        ),
        rx.button("Create integration", on_click=I.create, id="int-create"),
    )


def _urls() -> rx.Component:
    return rx.vstack(
        rx.cond(
            I.urls_revealed,
            rx.callout(
                "Copy these URLs now: they contain the integration's secret token, which is not shown again.",
                icon="key-round",
                color_scheme="amber",
                size="1",
                width="100%",
                id="token-shown",
            ),
            rx.text(
                "The token is stored hashed, so URLs show ",
                rx.code(TOKEN_PLACEHOLDER),
                " (it starts with ",
                rx.code(I.current["prefix"]),
                "). Rotate the token to get complete URLs again.",
                size="1",
                color_scheme="gray",
            ),
        ),
        rx.vstack(
            rx.foreach(I.urls, lambda u: copy_row(u["label"], u["url"], id="url-" + u["key"])),
            spacing="0",
            width="100%",
            id="webhook-urls",
        ),
        spacing="2",
        width="100%",
    )


def _payloads() -> rx.Component:
    return rx.vstack(
        rx.cond(
            size(I.payloads) == 0,
            empty_note("Nothing received yet."),
            rx.vstack(
                rx.foreach(
                    I.payloads,
                    lambda p: rx.box(
                        rx.hstack(
                            rx.badge(
                                p["kind"],
                                size="1",
                                color_scheme=rx.cond(p["kind"] == "created", "red", "gray"),
                            ),
                            rx.link(p["title"], href="/alerts/" + p["alert_id"], size="2", weight="medium"),
                            rx.spacer(),
                            rx.text(ago(p["at"]), " · ", p["at_text"], size="1", color_scheme="gray"),
                            wrap="wrap",
                            align="center",
                            width="100%",
                        ),
                        rx.box(
                            rx.el.pre(p["payload"], font_size="12px", margin="0", white_space="pre"),
                            max_height="14rem",
                            overflow="auto",
                            padding="0.5rem",
                            background="var(--gray-a3)",
                            border_radius="var(--radius-2)",
                            margin_top="0.3rem",
                        ),
                        class_name="payload-item",
                        width="100%",
                    ),
                ),
                spacing="3",
                width="100%",
                id="payloads",
            ),
        ),
        width="100%",
    )


def _detail() -> rx.Component:
    return rx.vstack(
        section(
            I.current["name"],
            read_only_note(~I.can_admin, "Only the team's admins change this integration."),
            rx.text(I.current["kind_label"], " · team ", I.current["team"], size="2", color_scheme="gray"),
            rx.text(
                "Last received: ",
                rx.cond(
                    I.current["last"] != "",
                    rx.el.span(ago(I.current["last"]), " (", I.current["last_text"], ")"),
                    "never",
                ),
                size="2",
            ),
            rx.flex(
                labeled(
                    "Default escalation policy",
                    select_from(
                        I.policies,
                        I.current["policy_id"],
                        I.set_policy,
                        id="int-detail-policy",
                        extra=[(NO_POLICY, "None")],
                        disabled=~I.can_admin,
                    ),
                ),
                labeled(
                    "Accepts alerts",
                    rx.switch(
                        checked=I.current["enabled"] != "",
                        on_change=I.set_enabled,
                        disabled=~I.can_admin,
                        id="int-enabled",
                    ),
                    width="auto",
                ),
                direction=rx.breakpoints(initial="column", sm="row"),
                spacing="3",
                width="100%",
            ),
            rx.flex(
                rx.cond(
                    I.can_write,
                    rx.button("Send a test alert", on_click=I.send_test, id="int-test", color_scheme="amber"),
                ),
                rx.cond(
                    I.can_admin, rx.button("Rotate token", variant="soft", on_click=I.rotate, id="int-rotate")
                ),
                rx.spacer(),
                rx.cond(
                    I.can_admin,
                    rx.button(
                        "Delete", variant="soft", color_scheme="red", on_click=I.delete, id="int-delete"
                    ),
                ),
                spacing="2",
                wrap="wrap",
                width="100%",
            ),
            error_callout(I.error, id="int-error"),
        ),
        section("Webhook URLs", _urls()),
        section(
            "Last received payloads",
            _payloads(),
            actions=rx.button(
                "Refresh", size="1", variant="soft", on_click=I.refresh_payloads, id="payloads-refresh"
            ),
        ),
        spacing="4",
        width="100%",
    )


def index() -> rx.Component:
    """The integrations page."""
    return shell(
        "Integrations",
        two_columns(
            rx.vstack(
                _list(),
                rx.cond(size(I.admin_teams) > 0, _create()),
                spacing="4",
                width="100%",
            ),
            rx.cond(
                I.selected != "",
                _detail(),
                rx.vstack(
                    error_callout(I.error, id="int-error"),
                    empty_note("Create an integration to receive alerts."),
                    width="100%",
                ),
            ),
        ),
    )


ON_LOAD = [AuthState.require_login, IntegrationsState.load, LiveState.detach]
