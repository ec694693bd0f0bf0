"""A real SMTP server (aiosmtpd) with STARTTLS and AUTH that keeps what it was sent."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.notify.fakes.http import free_port


@dataclass
class CapturedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    tls: bool

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class CapturingHandler:
    def __init__(self) -> None:
        self.mails: list[CapturedMail] = []
        # recipient → SMTP reply used instead of accepting it
        self.rcpt_replies: dict[str, str] = {}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        content = envelope.original_content or b""
        self.mails.append(
            CapturedMail(
                str(envelope.mail_from), list(envelope.rcpt_tos), content, login, session.ssl is not None
            )
        )
        return "250 2.0.0 Ok: queued"


class FakeSMTP:
    """STARTTLS required before AUTH; `users` are the accepted logins."""

    def __init__(
        self, *, tls_context: ssl.SSLContext | None, users: dict[str, str], require_starttls: bool = True
    ) -> None:
        self.handler = CapturingHandler()
        self.users = users
        self.port = free_port()
        self.host = "127.0.0.1"
        kwargs: dict[str, Any] = {}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=require_starttls)
        if users:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=tls_context is not None
            )
        self.controller = Controller(
            self.handler, hostname=self.host, port=self.port, server_hostname="smtp.test", **kwargs
        )

    @property
    def mails(self) -> list[CapturedMail]:
        return self.handler.mails

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> FakeSMTP:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
