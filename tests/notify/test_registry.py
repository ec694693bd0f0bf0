"""The registry: channels built from Settings, endpoints overridable, missing ones disabled."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from sentinel_app.notify import Channel, ChannelDisabled, ChannelKind, Endpoints, build_registry
from sentinel_app.notify.webhook import verify_signature, webhook_signing_secret
from sentinel_app.settings import Settings
from tests.notify.conftest import (
    FCM_PROJECT,
    SLACK_TOKEN,
    SMTP_PASSWORD,
    SMTP_USER,
    TWILIO_SID,
    TWILIO_TOKEN,
    APNsKey,
    ServiceAccountKey,
    message,
)
from tests.notify.fakes.apns import FakeAPNs
from tests.notify.fakes.fcm import FakeFCM
from tests.notify.fakes.slack import FakeSlack
from tests.notify.fakes.smtp import FakeSMTP
from tests.notify.fakes.tls import LoopbackTLS
from tests.notify.fakes.twilio import FakeTwilio
from tests.notify.fakes.webhook import FakeWebhookReceiver

pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]


def settings(tmp_path: Path, **fields: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, public_url="https://sentinel.example.com", **fields)


def notify_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sentinel_app.notify"]


@pytest.mark.asyncio
async def test_nothing_configured_disables_with_one_line_each(
    settings_env: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sentinel_app.notify")
    registry = build_registry(settings(tmp_path))

    assert registry.enabled == {ChannelKind.WEBHOOK}
    assert notify_lines(caplog) == [
        "notify: apns disabled: not configured",
        "notify: fcm disabled: not configured",
        "notify: twilio (sms, voice) disabled: not configured",
        "notify: email disabled: not configured",
        "notify: slack disabled: not configured",
    ]
    # Sending through a disabled channel never crashes and never logs again.
    caplog.clear()
    result = await registry.send(message(ChannelKind.SMS, "+15555550100"))
    assert result.status == "failed" and result.permanent and result.provider_status == "disabled"
    assert notify_lines(caplog) == []
    with pytest.raises(ChannelDisabled, match="voice disabled: not configured"):
        registry.require(ChannelKind.VOICE)
    assert registry.links is not None
    await registry.aclose()


def test_partial_or_broken_credentials_are_warned_once(
    settings_env: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sentinel_app.notify")
    broken = settings(
        tmp_path,
        apns_key_file=str(tmp_path / "missing.p8"),
        apns_key_id="K",
        apns_team_id="T",
        apns_topic="org.example",
        fcm_project_id="only-a-project",
        twilio_account_sid=TWILIO_SID,
        smtp_host="smtp.example.com",
    )
    registry = build_registry(broken)

    warnings = [r for r in caplog.records if r.name == "sentinel_app.notify" and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"notify: apns disabled: cannot read key file {tmp_path / 'missing.p8'}: No such file or directory",
        "notify: fcm disabled: missing SENTINEL_FCM_CREDENTIALS_FILE (service-account JSON)",
        "notify: twilio (sms, voice) disabled: missing SENTINEL_TWILIO_AUTH_TOKEN, SENTINEL_TWILIO_FROM_NUMBER",
        "notify: email disabled: missing SENTINEL_SMTP_FROM",
    ]
    assert registry.disabled[ChannelKind.SMS] == registry.disabled[ChannelKind.VOICE]
    assert registry.enabled == {ChannelKind.WEBHOOK}


@pytest.mark.asyncio
async def test_every_channel_from_settings_against_fakes(
    settings_env: pytest.MonkeyPatch,
    tmp_path: Path,
    apns_key: APNsKey,
    apns_fake: FakeAPNs,
    service_account_key: ServiceAccountKey,
    fcm_fake: FakeFCM,
    twilio_fake: FakeTwilio,
    smtp_fake: FakeSMTP,
    slack_fake: FakeSlack,
    webhook_receiver: FakeWebhookReceiver,
    loopback_tls: LoopbackTLS,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sentinel_app.notify")
    credentials_file = tmp_path / "firebase.json"
    credentials_file.write_text(json.dumps(service_account_key.info(fcm_fake.token_uri)))
    configured = settings(
        tmp_path,
        apns_key_file=str(apns_key.key_file),
        apns_key_id=apns_key.key_id,
        apns_team_id=apns_key.team_id,
        apns_topic=apns_key.topic,
        fcm_credentials_file=str(credentials_file),
        fcm_project_id=FCM_PROJECT,
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_from_number="+15555550199",
        smtp_host="mail.example.com",
        smtp_port=2525,
        smtp_username=SMTP_USER,
        smtp_password=SMTP_PASSWORD,
        smtp_from="sentinel@example.com",
        slack_bot_token=SLACK_TOKEN,
    )
    assert all(configured.channels.values())
    endpoints = Endpoints(
        apns_host=apns_fake.host,
        apns_port=apns_fake.port,
        apns_ssl_context=loopback_tls.client_context(),
        fcm_base_url=fcm_fake.url,
        twilio_base_url=twilio_fake.url,
        slack_base_url=slack_fake.api_url,
        smtp_host=smtp_fake.host,
        smtp_port=smtp_fake.port,
        smtp_tls_context=loopback_tls.client_context(),
        timeout=5.0,
    )
    registry = build_registry(configured, endpoints)
    try:
        assert registry.enabled == set(ChannelKind)
        assert notify_lines(caplog) == []
        assert all(isinstance(registry.get(kind), Channel) for kind in ChannelKind)
        targets = {
            ChannelKind.APNS: "b" * 64,
            ChannelKind.FCM: "fcm-token",
            ChannelKind.SMS: "+15555550100",
            ChannelKind.VOICE: "+15555550100",
            ChannelKind.EMAIL: "oncall@example.com",
            ChannelKind.SLACK: "C0123ALERTS",
            ChannelKind.WEBHOOK: webhook_receiver.hook_url,
        }
        results = {kind: await registry.send(message(kind, target)) for kind, target in targets.items()}
    finally:
        await registry.aclose()

    assert {kind: r.status for kind, r in results.items()} == dict.fromkeys(ChannelKind, "sent")
    assert len(apns_fake.requests) == len(fcm_fake.sends()) == len(smtp_fake.mails) == 1
    assert [r.path.rsplit("/", 1)[1] for r in twilio_fake.requests] == ["Messages.json", "Calls.json"]
    gather = twilio_fake.requests[1].form()["Twiml"]
    assert 'action="https://sentinel.example.com/api/v1/notify/twilio/voice/gather?alert_id=42"' in gather
    assert len(slack_fake.calls("chat.postMessage")) == 1
    (delivery,) = webhook_receiver.requests
    secret = webhook_signing_secret(configured.resolved_secret_key())
    assert verify_signature(secret, delivery.body, delivery.headers["x-sentinel-signature"])
