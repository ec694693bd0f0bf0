"""Alert email over SMTP (aiosmtplib): STARTTLS and AUTH when configured, text + HTML parts.

Every email of one alert carries `References: <collapse-key@domain>` so mail clients thread them.
SMTP's own classes decide the outcome: 4xx replies are transient (`retry`), 5xx permanent; a 5xx
refusal of the recipient (550/551/553) is `invalid_target`.
"""

from __future__ import annotations

import asyncio
import html
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from sentinel_app.notify.base import (
    ChannelDisabled,
    ChannelKind,
    DeliveryResult,
    OutgoingMessage,
    classify_exception,
    describe,
    log_result,
    unbuildable,
)

__all__ = ["EmailChannel", "build_email", "classify_smtp_error"]

ACTION_LABELS = {"acknowledge": "Acknowledge", "resolve": "Resolve", "escalate": "Escalate"}
DEAD_RECIPIENT_CODES = frozenset({550, 551, 553})


def _links(message: OutgoingMessage) -> list[tuple[str, str]]:
    """(label, url) for each action that is a web link (known intents first), then the alert page."""
    order = [intent for intent in ACTION_LABELS if intent in message.actions]
    order += sorted(intent for intent in message.actions if intent not in ACTION_LABELS)
    links = [
        (ACTION_LABELS.get(intent, intent.title()), message.actions[intent])
        for intent in order
        if message.actions[intent].startswith(("http://", "https://"))
    ]
    alert_url = str(message.extra.get("alert_url") or "")
    if alert_url:
        links.append(("View alert", alert_url))
    return links


def build_email(message: OutgoingMessage, *, sender: str, domain: str) -> EmailMessage:
    """A multipart/alternative email: plain text and HTML, both with the action links."""
    severity = message.severity.upper()
    subject = f"[{severity}] {message.title}"
    if message.alert_id is not None:
        subject += f" (#{message.alert_id})"
    links = _links(message)

    text_lines = [f"{severity}: {message.title}", ""]
    if message.body:
        text_lines += [message.body, ""]
    text_lines += [f"{label}: {url}" for label, url in links]
    text_lines += ["", "-- ", "Fangorn Sentinel"]

    buttons = "".join(
        f'<a href="{html.escape(url, quote=True)}" style="display:inline-block;margin:0 8px 8px 0;'
        f'padding:8px 16px;border-radius:4px;background:#1f6feb;color:#fff;text-decoration:none">'
        f"{html.escape(label)}</a>"
        for label, url in links
    )
    body_html = html.escape(message.body).replace("\n", "<br>")
    html_part = (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f'<p style="font-weight:bold">{html.escape(severity)}: {html.escape(message.title)}</p>'
        + (f"<p>{body_html}</p>" if body_html else "")
        + f"<p>{buttons}</p>"
        '<p style="color:#666;font-size:small">Fangorn Sentinel</p></body></html>'
    )

    email = EmailMessage()
    email["Subject"] = subject
    email["From"] = sender
    email["To"] = message.target
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = make_msgid(idstring="sentinel", domain=domain)
    thread = f"<{message.group_key}@{domain}>"
    email["References"] = thread
    email["In-Reply-To"] = thread
    email["Auto-Submitted"] = "auto-generated"
    if message.alert_id is not None:
        email["X-Sentinel-Alert-Id"] = str(message.alert_id)
    email["X-Sentinel-Severity"] = message.severity
    if message.important:
        email["Importance"] = "high"
        email["X-Priority"] = "1"
    email.set_content("\n".join(text_lines))
    email.add_alternative(html_part, subtype="html")
    return email


def classify_smtp_error(exc: BaseException) -> DeliveryResult:
    """Map an aiosmtplib error: connection/timeout → retry, 4xx → retry, 5xx → failed/invalid_target."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients[0] if exc.recipients else None
        if refused is None:
            return DeliveryResult.failed("SMTP recipients refused")
        return _by_code(
            refused.code, f"SMTP recipient refused: {refused.code} {refused.message}", recipient=True
        )
    if isinstance(
        exc, aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected
    ):
        return DeliveryResult.retry(f"SMTP: {describe(exc)}", provider_status="connection")
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return _by_code(exc.code, f"SMTP recipient refused: {exc.code} {exc.message}", recipient=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, f"SMTP {type(exc).__name__}: {exc.code} {exc.message}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryResult.failed(f"SMTP TLS certificate rejected: {exc}", provider_status="tls")
    if isinstance(exc, aiosmtplib.SMTPException):
        # e.g. STARTTLS or AUTH not offered by the server: a configuration problem.
        return DeliveryResult.failed(f"SMTP: {describe(exc)}", provider_status="smtp")
    return classify_exception(exc, what="SMTP")


def _by_code(code: int, error: str, *, recipient: bool = False) -> DeliveryResult:
    if 400 <= code < 500 or code < 0:
        return DeliveryResult.retry(error, provider_status=str(code))
    if recipient and code in DEAD_RECIPIENT_CODES:
        return DeliveryResult.invalid_target(error, provider_status=str(code))
    return DeliveryResult.failed(error, provider_status=str(code))


class EmailChannel:
    """Email. `target` is the recipient address."""

    kind = ChannelKind.EMAIL

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        port: int = 587,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        implicit_tls: bool | None = None,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 15.0,
        message_id_domain: str | None = None,
    ) -> None:
        if not (host and sender):
            raise ChannelDisabled("email", "SMTP host and sender address are required")
        self.host = host
        self.port = port
        self.sender = sender
        self._username = username or None
        self._password = password or None
        # Port 465 speaks TLS from the first byte; everything else upgrades with STARTTLS.
        self.implicit_tls = port == 465 if implicit_tls is None else implicit_tls
        self.starttls = starttls and not self.implicit_tls
        self._tls_context = tls_context
        self.timeout = timeout
        self.domain = message_id_domain or (sender.rpartition("@")[2] or "sentinel.local").strip(">")

    def build(self, message: OutgoingMessage) -> EmailMessage:
        return build_email(message, sender=self.sender, domain=self.domain)

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        try:
            email = self.build(message)
        except Exception as exc:
            return log_result(self.kind, message, unbuildable("email", exc))
        try:
            async with asyncio.timeout(self.timeout):
                _errors, response = await aiosmtplib.send(
                    email,
                    hostname=self.host,
                    port=self.port,
                    username=self._username,
                    password=self._password,
                    use_tls=self.implicit_tls,
                    start_tls=self.starttls,
                    tls_context=self._tls_context,
                    timeout=self.timeout,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = classify_smtp_error(exc)
        else:
            result = DeliveryResult.sent(str(email["Message-ID"]), provider_status=response[:64])
        return log_result(self.kind, message, result)

    async def aclose(self) -> None:
        return None  # one connection per message
