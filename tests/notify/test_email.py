"""Email adapter against a real SMTP server (aiosmtpd) with STARTTLS and AUTH."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import pytest

from sentinel_app.notify.base import ChannelKind
from sentinel_app.notify.email import EmailChannel
from tests.notify.conftest import SMTP_PASSWORD, SMTP_USER, message
from tests.notify.fakes.http import free_port
from tests.notify.fakes.smtp import FakeSMTP
from tests.notify.fakes.tls import LoopbackTLS

pytestmark = pytest.mark.asyncio

SENDER = "Sentinel <sentinel@example.com>"
RECIPIENT = "oncall@example.com"


def channel_for(fake: FakeSMTP, tls: LoopbackTLS, **overrides: object) -> EmailChannel:
    options: dict[str, object] = {
        "host": fake.host,
        "port": fake.port,
        "sender": SENDER,
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "starttls": True,
        "tls_context": tls.client_context(),
        "timeout": 5.0,
    }
    options.update(overrides)
    return EmailChannel(**options)  # type: ignore[arg-type]


def parts(mail: EmailMessage) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in mail.walk():
        if not part.is_multipart():
            assert isinstance(part, EmailMessage)
            found[part.get_content_type()] = str(part.get_content())
    return found


async def test_multipart_email_over_starttls_with_auth(
    smtp_fake: FakeSMTP, loopback_tls: LoopbackTLS
) -> None:
    msg = message(
        ChannelKind.EMAIL,
        RECIPIENT,
        title="Disk <full> on db-1",
        important=True,
        extra={"alert_url": "https://sentinel.example.com/alerts/42"},
    )
    result = await channel_for(smtp_fake, loopback_tls).send(msg)

    assert result.status == "sent"
    (captured,) = smtp_fake.mails
    assert captured.tls and captured.login == SMTP_USER
    assert captured.mail_from == "sentinel@example.com"
    assert captured.rcpt_tos == [RECIPIENT]
    mail = captured.message()
    assert mail["Message-ID"] == result.provider_id
    assert mail["Subject"] == "[CRITICAL] Disk <full> on db-1 (#42)"
    assert mail["From"] == SENDER and mail["To"] == RECIPIENT
    assert mail["References"] == mail["In-Reply-To"] == "<sentinel-alert-42@example.com>"
    assert mail["X-Sentinel-Alert-Id"] == "42"
    assert mail["Importance"] == "high"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    body = parts(mail)
    assert set(body) == {"text/plain", "text/html"}
    text, html = body["text/plain"], body["text/html"]
    assert "CRITICAL: Disk <full> on db-1" in text
    assert "/var is 98% full" in text
    assert "Acknowledge: https://sentinel.example.com/api/v1/notify/act/ack-token" in text
    assert "Resolve: https://sentinel.example.com/api/v1/notify/act/res-token" in text
    assert "View alert: https://sentinel.example.com/alerts/42" in text
    assert "Disk &lt;full&gt; on db-1" in html and "<full>" not in html
    assert '<a href="https://sentinel.example.com/api/v1/notify/act/ack-token"' in html
    assert ">Acknowledge</a>" in html and ">Resolve</a>" in html
    assert html.index("Acknowledge") < html.index("Resolve")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown", "invalid_target"),
        ("451 4.3.0 Mailbox temporarily unavailable", "retry"),
        ("552 5.2.2 Mailbox full", "failed"),
    ],
)
async def test_recipient_refusals(
    smtp_fake: FakeSMTP, loopback_tls: LoopbackTLS, reply: str, expected: str
) -> None:
    smtp_fake.handler.rcpt_replies["gone@example.com"] = reply
    result = await channel_for(smtp_fake, loopback_tls).send(message(ChannelKind.EMAIL, "gone@example.com"))
    assert result.status == expected
    assert result.provider_status == reply[:3]
    assert smtp_fake.mails == []


async def test_wrong_password_fails(smtp_fake: FakeSMTP, loopback_tls: LoopbackTLS) -> None:
    result = await channel_for(smtp_fake, loopback_tls, password="wrong").send(
        message(ChannelKind.EMAIL, RECIPIENT)
    )
    assert result.status == "failed" and result.provider_status == "535"


async def test_untrusted_certificate_fails(smtp_fake: FakeSMTP, loopback_tls: LoopbackTLS) -> None:
    # The system trust store does not know the test CA: a configuration problem, not transient.
    channel = channel_for(smtp_fake, loopback_tls, tls_context=ssl.create_default_context())
    result = await channel.send(message(ChannelKind.EMAIL, RECIPIENT))
    assert result.status == "failed" and result.provider_status == "tls"
    assert smtp_fake.mails == []


async def test_starttls_required_but_not_offered_fails() -> None:
    plain = FakeSMTP(tls_context=None, users={}).start()
    try:
        result = await EmailChannel(
            host=plain.host, port=plain.port, sender=SENDER, starttls=True, timeout=5
        ).send(message(ChannelKind.EMAIL, RECIPIENT))
        assert result.status == "failed"
        assert plain.mails == []
        # Without STARTTLS configured the same server takes the mail.
        ok = await EmailChannel(
            host=plain.host, port=plain.port, sender=SENDER, starttls=False, timeout=5
        ).send(message(ChannelKind.EMAIL, RECIPIENT))
        assert ok.status == "sent" and len(plain.mails) == 1 and not plain.mails[0].tls
    finally:
        plain.stop()


async def test_unreachable_server_is_retry() -> None:
    channel = EmailChannel(host="127.0.0.1", port=free_port(), sender=SENDER, timeout=2)
    result = await channel.send(message(ChannelKind.EMAIL, RECIPIENT))
    assert result.status == "retry" and result.provider_status == "connection"
