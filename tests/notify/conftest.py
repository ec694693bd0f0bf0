"""Fixtures: loopback fakes of every provider, started and stopped per test, and test keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sentinel_app.notify.base import ChannelKind, OutgoingMessage
from tests.notify.fakes.apns import FakeAPNs
from tests.notify.fakes.fcm import FakeFCM
from tests.notify.fakes.slack import FakeSlack
from tests.notify.fakes.smtp import FakeSMTP
from tests.notify.fakes.tls import LoopbackTLS
from tests.notify.fakes.twilio import FakeTwilio
from tests.notify.fakes.webhook import FakeWebhookReceiver

TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
SLACK_TOKEN = "xoxb-test-token"
SMTP_USER, SMTP_PASSWORD = "sentinel", "smtp-secret"
FCM_PROJECT = "sentinel-test"


def message(channel: ChannelKind, target: str, **overrides: Any) -> OutgoingMessage:
    """A typical alert message; override any field."""
    fields: dict[str, Any] = {
        "channel": channel,
        "target": target,
        "alert_id": 42,
        "title": "Disk full on db-1",
        "body": "/var is 98% full",
        "severity": "critical",
        "important": False,
        "actions": {
            "acknowledge": "https://sentinel.example.com/api/v1/notify/act/ack-token",
            "resolve": "https://sentinel.example.com/api/v1/notify/act/res-token",
        },
    }
    fields.update(overrides)
    return OutgoingMessage(**fields)


@pytest.fixture(scope="session")
def loopback_tls(tmp_path_factory: pytest.TempPathFactory) -> LoopbackTLS:
    return LoopbackTLS.create(tmp_path_factory.mktemp("tls"))


@dataclass
class APNsKey:
    key_file: Path
    private_pem: str
    public_pem: bytes
    key_id: str = "KEYID12345"
    team_id: str = "TEAMID6789"
    topic: str = "org.fangorn.sentinel"


@pytest.fixture(scope="session")
def apns_key(tmp_path_factory: pytest.TempPathFactory) -> APNsKey:
    """An ES256 signing key in Apple's .p8 form (PKCS#8 PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_file = tmp_path_factory.mktemp("apns") / "AuthKey_KEYID12345.p8"
    key_file.write_text(private_pem)
    return APNsKey(key_file, private_pem, public_pem)


@pytest.fixture
def apns_fake(loopback_tls: LoopbackTLS, apns_key: APNsKey) -> Iterator[FakeAPNs]:
    fake = FakeAPNs(
        ssl_context=loopback_tls.server_context(alpn=["h2"]),
        public_key_pem=apns_key.public_pem,
        key_id=apns_key.key_id,
        team_id=apns_key.team_id,
        topic=apns_key.topic,
    ).start()
    yield fake
    fake.stop()


@dataclass
class ServiceAccountKey:
    private_pem: str
    public_pem: bytes
    client_email: str = "sentinel-push@sentinel-test.iam.gserviceaccount.com"

    def info(self, token_uri: str) -> dict[str, str]:
        """A service-account JSON like the Firebase console's, with a loopback `token_uri`."""
        return {
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key_id": "0123456789abcdef",
            "private_key": self.private_pem,
            "client_email": self.client_email,
            "client_id": "1234567890",
            "token_uri": token_uri,
        }


@pytest.fixture(scope="session")
def service_account_key() -> ServiceAccountKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ServiceAccountKey(private_pem, public_pem)


@pytest.fixture
def fcm_fake(service_account_key: ServiceAccountKey) -> Iterator[FakeFCM]:
    fake = FakeFCM(
        project_id=FCM_PROJECT,
        client_email=service_account_key.client_email,
        public_key_pem=service_account_key.public_pem,
    )
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio_fake() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def slack_fake() -> Iterator[FakeSlack]:
    fake = FakeSlack(token=SLACK_TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def smtp_fake(loopback_tls: LoopbackTLS) -> Iterator[FakeSMTP]:
    fake = FakeSMTP(tls_context=loopback_tls.server_context(), users={SMTP_USER: SMTP_PASSWORD}).start()
    yield fake
    fake.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[FakeWebhookReceiver]:
    fake = FakeWebhookReceiver()
    fake.start()
    yield fake
    fake.stop()
