"""Builds every configured channel from `Settings`; unconfigured ones become `DisabledChannel`s.

Each provider that cannot work (nothing configured, a missing field, an unreadable key) is
logged once, on one line, when the registry is built — never raised. `Endpoints` overrides every
provider address (and TLS trust), which is how tests aim the real client libraries at loopback
fakes; production leaves it at its defaults.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass, field
from typing import Any

from sentinel_app.notify.base import (
    Channel,
    ChannelDisabled,
    ChannelKind,
    DeliveryResult,
    DisabledChannel,
    OutgoingMessage,
)
from sentinel_app.notify.links import ActionLinks
from sentinel_app.settings import Settings

__all__ = ["ChannelRegistry", "Endpoints", "build_registry"]

logger = logging.getLogger("sentinel_app.notify")


@dataclass
class Endpoints:
    """Provider addresses and TLS trust; the defaults are the real services."""

    apns_host: str | None = None
    apns_port: int | None = None
    apns_ssl_context: ssl.SSLContext | None = None
    fcm_base_url: str = "https://fcm.googleapis.com"
    # A firebase_admin.credentials.Base to use instead of the credentials file.
    fcm_credential: Any = None
    twilio_base_url: str | None = None
    twilio_status_callback: str | None = None
    twilio_gather_url: str | None = None
    slack_base_url: str = "https://slack.com/api/"
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_tls_context: ssl.SSLContext | None = None
    webhook_verify: ssl.SSLContext | bool = True
    timeout: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)


class ChannelRegistry:
    """One adapter per outbox channel; disabled channels answer every send with `failed`."""

    def __init__(
        self,
        channels: dict[ChannelKind, Channel],
        disabled: dict[ChannelKind, str],
        links: ActionLinks | None,
    ) -> None:
        self._channels = channels
        self.disabled = dict(disabled)
        self.links = links

    @property
    def enabled(self) -> frozenset[ChannelKind]:
        return frozenset(self._channels)

    def get(self, kind: ChannelKind | str) -> Channel:
        """The adapter for `kind`, or a `DisabledChannel` explaining why there is none."""
        kind = ChannelKind(kind)
        channel = self._channels.get(kind)
        if channel is not None:
            return channel
        return DisabledChannel(kind, self.disabled.get(kind, "not configured"))

    def require(self, kind: ChannelKind | str) -> Channel:
        """The adapter for `kind`; raises `ChannelDisabled` if it is not configured."""
        kind = ChannelKind(kind)
        if kind not in self._channels:
            raise ChannelDisabled(kind.value, self.disabled.get(kind, "not configured"))
        return self._channels[kind]

    async def send(self, message: OutgoingMessage) -> DeliveryResult:
        return await self.get(message.channel).send(message)

    async def aclose(self) -> None:
        for channel in self._channels.values():
            try:
                await channel.aclose()
            except Exception:  # pragma: no cover - closing must not stop the others
                logger.exception("notify: closing %s failed", channel.kind.value)


def _missing(settings: Settings, names: list[str]) -> list[str]:
    missing = []
    for name in names:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if not value:
            missing.append(f"SENTINEL_{name.upper()}")
    return missing


def _require(settings: Settings, provider: str, names: list[str]) -> None:
    missing = _missing(settings, names)
    if len(missing) == len(names):
        raise ChannelDisabled(provider, "not configured")
    if missing:
        raise ChannelDisabled(provider, f"missing {', '.join(missing)}")


def _apns(settings: Settings, ep: Endpoints) -> Channel:
    from sentinel_app.notify.apns import APNsChannel

    _require(settings, "apns", ["apns_key_file", "apns_key_id", "apns_team_id", "apns_topic"])
    return APNsChannel.from_key_file(
        settings.apns_key_file,
        key_id=settings.apns_key_id,
        team_id=settings.apns_team_id,
        topic=settings.apns_topic,
        use_sandbox=settings.apns_use_sandbox,
        host=ep.apns_host,
        port=ep.apns_port,
        ssl_context=ep.apns_ssl_context,
        timeout=ep.timeout,
    )


def _fcm(settings: Settings, ep: Endpoints) -> Channel:
    from firebase_admin import credentials as fb_credentials

    from sentinel_app.notify.fcm import FCMChannel

    options: dict[str, Any] = {
        "project_id": settings.fcm_project_id or None,
        "base_url": ep.fcm_base_url,
        "timeout": ep.timeout,
    }
    if ep.fcm_credential is not None:
        return FCMChannel(credential=ep.fcm_credential, **options)
    if settings.fcm_credentials_file:
        return FCMChannel.from_service_account(settings.fcm_credentials_file, **options)
    if settings.fcm_project_id and os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return FCMChannel(credential=fb_credentials.ApplicationDefault(), **options)
    if settings.fcm_project_id:
        raise ChannelDisabled("fcm", "missing SENTINEL_FCM_CREDENTIALS_FILE (service-account JSON)")
    raise ChannelDisabled("fcm", "not configured")


def _twilio(settings: Settings, ep: Endpoints) -> dict[ChannelKind, Channel]:
    from sentinel_app.notify.twilio_inbound import GATHER_PATH
    from sentinel_app.notify.twilio_sms import TwilioSMSChannel
    from sentinel_app.notify.twilio_voice import TwilioVoiceChannel

    _require(settings, "twilio", ["twilio_account_sid", "twilio_auth_token", "twilio_from_number"])
    common: dict[str, Any] = {
        "account_sid": settings.twilio_account_sid,
        "auth_token": settings.twilio_auth_token.get_secret_value(),
        "from_number": settings.twilio_from_number,
        "base_url": ep.twilio_base_url,
        "status_callback": ep.twilio_status_callback,
        "timeout": ep.timeout,
    }
    return {
        ChannelKind.SMS: TwilioSMSChannel(**common),
        ChannelKind.VOICE: TwilioVoiceChannel(
            gather_url=ep.twilio_gather_url or f"{settings.base_url}{GATHER_PATH}", **common
        ),
    }


def _email(settings: Settings, ep: Endpoints) -> Channel:
    from sentinel_app.notify.email import EmailChannel

    _require(settings, "email", ["smtp_host", "smtp_from"])
    return EmailChannel(
        host=ep.smtp_host or settings.smtp_host,
        port=ep.smtp_port or settings.smtp_port,
        sender=settings.smtp_from,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        starttls=settings.smtp_starttls,
        tls_context=ep.smtp_tls_context,
        timeout=ep.timeout,
    )


def _slack(settings: Settings, ep: Endpoints) -> Channel:
    from sentinel_app.notify.slack import SlackChannel

    _require(settings, "slack", ["slack_bot_token"])
    return SlackChannel(
        token=settings.slack_bot_token.get_secret_value(), base_url=ep.slack_base_url, timeout=ep.timeout
    )


def _webhook(settings: Settings, ep: Endpoints) -> Channel:
    from sentinel_app.notify.webhook import WebhookChannel, webhook_signing_secret

    return WebhookChannel(
        secret=webhook_signing_secret(settings.resolved_secret_key()),
        timeout=ep.timeout,
        verify=ep.webhook_verify,
    )


def build_registry(settings: Settings, endpoints: Endpoints | None = None) -> ChannelRegistry:
    """Every channel `settings` configures; one log line for each provider that stays off."""
    ep = endpoints or Endpoints()
    channels: dict[ChannelKind, Channel] = {}
    disabled: dict[ChannelKind, str] = {}
    providers: list[tuple[str, tuple[ChannelKind, ...], Any]] = [
        ("apns", (ChannelKind.APNS,), _apns),
        ("fcm", (ChannelKind.FCM,), _fcm),
        ("twilio", (ChannelKind.SMS, ChannelKind.VOICE), _twilio),
        ("email", (ChannelKind.EMAIL,), _email),
        ("slack", (ChannelKind.SLACK,), _slack),
        ("webhook", (ChannelKind.WEBHOOK,), _webhook),
    ]
    for provider, kinds, factory in providers:
        try:
            built = factory(settings, ep)
        except ChannelDisabled as exc:
            reason = exc.reason
        except Exception as exc:  # a broken provider must never stop the app
            reason = f"could not be set up: {type(exc).__name__}: {exc}"
        else:
            channels.update(built if isinstance(built, dict) else {kinds[0]: built})
            continue
        for kind in kinds:
            disabled[kind] = reason
        names = provider if len(kinds) == 1 else f"{provider} ({', '.join(k.value for k in kinds)})"
        level = logging.INFO if reason == "not configured" else logging.WARNING
        logger.log(level, "notify: %s disabled: %s", names, reason)
    links: ActionLinks | None = None
    try:
        links = ActionLinks(settings.resolved_secret_key(), settings.base_url)
    except (OSError, ValueError) as exc:  # pragma: no cover - data dir not writable
        logger.warning("notify: action links disabled: %s", exc)
    return ChannelRegistry(channels, disabled, links)
