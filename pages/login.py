"""Sign-in page, and the first-administrator setup form while the installation has no users."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx
from sqlmodel import Session

from pages.live import LiveState
from pages.state import (
    AuthState,
    client_address,
    in_db,
    principal_for_session,
    team_roles_of,
    user_agent,
)
from sentinel_app import __version__
from sentinel_app.db import utcnow
from sentinel_app.services import sessions
from sentinel_app.services.errors import ServiceError


def _safe_next(value: str) -> str:
    # Only same-site paths: never send a fresh session to another origin.
    if value.startswith("/") and not value.startswith("//") and not value.startswith("/login"):
        return value
    return "/"


class LoginState(rx.State):
    """The sign-in (or setup) form of this tab."""

    needs_setup: bool = False
    checked: bool = False
    error: str = ""
    busy: bool = False
    next_path: str = "/"

    @rx.event
    async def load(self) -> Any:
        """`on_load`: already signed in → go on; otherwise show sign-in, or setup on an empty install."""
        self.error, self.busy = "", False
        self.next_path = _safe_next(self.router.url.query_parameters.get("next", "/"))
        auth = await self.get_state(AuthState)
        principal = await asyncio.to_thread(principal_for_session, auth.session_token, utcnow())
        if principal is not None:
            return rx.redirect(self.next_path)
        self.needs_setup = await in_db(sessions.needs_setup)
        self.checked = True
        return None

    async def _signed_in(self, token: str) -> Any:
        principal = await asyncio.to_thread(principal_for_session, token, utcnow())
        if principal is None:  # disabled between sign-in and now
            self.error = "This account cannot sign in."
            return None
        roles = await asyncio.to_thread(team_roles_of, principal)
        auth = await self.get_state(AuthState)
        auth.start_session(token, principal, roles)
        return rx.redirect(self.next_path)

    @rx.event
    async def sign_in(self, form: dict[str, Any]) -> Any:
        """Check email and password (rate-limited) and start a session."""
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        address, agent = client_address(self), user_agent(self)

        def attempt(session: Session) -> str:
            _, token = sessions.login(
                session,
                email=email,
                password=password,
                client="web",
                user_agent=agent,
                now=utcnow(),
                address=address,
            )
            return token

        self.busy, self.error = True, ""
        yield
        try:
            token = await in_db(attempt, write=True)
        except sessions.TooManyAttempts as exc:
            self.error, self.busy = exc.message[:1].upper() + exc.message[1:] + ".", False
            return
        except sessions.LoginFailed:
            self.error, self.busy = "Invalid email or password.", False
            return
        self.busy = False
        yield await self._signed_in(token)

    @rx.event
    async def set_up(self, form: dict[str, Any]) -> Any:
        """Create the first administrator (only while there are no users) and sign them in."""
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            self.error = "The passwords do not match."
            return
        address, agent = client_address(self), user_agent(self)

        def create(session: Session) -> str:
            _, _, token = sessions.bootstrap_admin(
                session,
                email=str(form.get("email", "")),
                name=str(form.get("name", "")),
                password=password,
                now=utcnow(),
                user_agent=agent,
                address=address,
            )
            return token

        try:
            token = await in_db(create, write=True)
        except ServiceError as exc:
            self.error = exc.message[:1].upper() + exc.message[1:] + "."
            if exc.status == 409:
                self.needs_setup = False
            return
        yield await self._signed_in(token)


def _field(label: str, name: str, kind: str = "text", **props: Any) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium", as_="label", html_for=name),
        rx.input(name=name, id=name, type=kind, required=True, size="3", width="100%", **props),
        spacing="1",
        width="100%",
    )


def _error() -> rx.Component:
    return rx.cond(
        LoginState.error != "",
        rx.callout(
            LoginState.error,
            icon="triangle-alert",
            color_scheme="red",
            role="alert",
            id="login-error",
            width="100%",
        ),
    )


def _sign_in_form() -> rx.Component:
    return rx.el.form(
        rx.vstack(
            _field("Email", "email", "email", auto_complete="username", placeholder="you@example.com"),
            _field("Password", "password", "password", auto_complete="current-password"),
            _error(),
            rx.button(
                "Sign in", type="submit", size="3", width="100%", loading=LoginState.busy, id="sign-in"
            ),
            spacing="4",
            width="100%",
        ),
        on_submit=LoginState.sign_in,
        reset_on_submit=False,
        id="login-form",
        width="100%",
    )


def _setup_form() -> rx.Component:
    return rx.el.form(
        rx.vstack(
            rx.callout(
                "No one can sign in yet: create the first administrator of this installation.",
                icon="info",
                width="100%",
            ),
            _field("Your name", "name", auto_complete="name"),
            _field("Email", "email", "email", auto_complete="username"),
            _field(
                "Password (at least 10 characters)",
                "password",
                "password",
                auto_complete="new-password",
                min_length=10,
            ),
            _field("Repeat the password", "confirm", "password", auto_complete="new-password"),
            _error(),
            rx.button("Create administrator", type="submit", size="3", width="100%", id="create-admin"),
            spacing="4",
            width="100%",
        ),
        on_submit=LoginState.set_up,
        reset_on_submit=False,
        id="setup-form",
        width="100%",
    )


def index() -> rx.Component:
    """The sign-in page."""
    return rx.center(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.icon("shield-alert", size=28),
                    rx.heading("Fangorn Sentinel", size="7"),
                    rx.spacer(),
                    rx.color_mode.button(variant="ghost"),
                    align="center",
                    width="100%",
                ),
                rx.text(
                    rx.cond(
                        LoginState.needs_setup,
                        "Set up your installation.",
                        "Sign in to see and act on alerts.",
                    ),
                    color_scheme="gray",
                ),
                rx.cond(
                    LoginState.checked,
                    rx.cond(LoginState.needs_setup, _setup_form(), _sign_in_form()),
                    rx.center(rx.spinner(size="3"), padding="2rem", width="100%"),
                ),
                rx.text(f"Version {__version__}", id="version", size="1", color_scheme="gray"),
                spacing="4",
                width="100%",
            ),
            size="4",
            width="min(26rem, 94vw)",
        ),
        min_height="100vh",
        padding="1rem",
        background="var(--gray-2)",
    )


ON_LOAD = [LoginState.load, LiveState.detach]
