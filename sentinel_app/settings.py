"""Runtime configuration, read from `SENTINEL_*` environment variables (and `.env`)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """A setting is missing, malformed or points at something unreachable."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


class Settings(BaseSettings):
    """Every knob of Fangorn Sentinel; empty provider credentials disable that channel."""

    model_config = SettingsConfigDict(
        env_prefix="SENTINEL_", env_file=".env", extra="ignore", validate_default=True
    )

    # Core
    data_dir: Path = Field(
        default=Path("data"), description="Directory for the SQLite file and the generated secret key."
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means a SQLite file in data_dir."
    )
    ray_address: str = Field(
        default="",
        description="Existing Ray cluster (e.g. ray://head:10001 or host:6379); empty starts a local runtime.",
    )
    ray_namespace: str = "sentinel"
    ray_num_cpus: int = Field(
        default=0, ge=0, description="CPUs given to a local Ray runtime; 0 means all cores."
    )
    escalation_hosts: int = Field(
        default=0, ge=0, le=64, description="Escalation host actors (shards); 0 means one per CPU core."
    )
    schedule_hosts: int = Field(default=1, ge=1, le=16, description="Schedule host actors (shards).")
    escalation_sweep_seconds: float = Field(
        default=10.0, gt=0, le=600, description="How often each host sweeps for due escalations no timer ran."
    )
    escalation_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="How late a due escalation must be before the sweeper takes it.",
    )
    public_url: str = Field(
        default="",
        description="URL people and senders use to reach this server; default http://localhost:PORT.",
    )
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=1, le=65535)
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Signs sessions and links; generated into data_dir on first run if empty.",
    )
    log_level: str = "INFO"
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest accepted API/webhook body."
    )

    # Apple Push Notification service (token auth)
    apns_key_file: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    apns_use_sandbox: bool = False

    # Firebase Cloud Messaging
    fcm_credentials_file: str = ""
    fcm_project_id: str = ""

    # Twilio SMS and voice
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from_number: str = ""

    # Email over SMTP
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True
    smtp_from: str = ""

    # Slack
    slack_bot_token: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")

    # Outbox dispatchers (Ray actors that send notifications)
    dispatchers: int = Field(
        default=1, ge=0, le=64, description="Dispatcher actors sending the outbox; 0 starts none."
    )
    dispatch_concurrency: int = Field(
        default=32, ge=1, le=1000, description="Sends in flight per dispatcher."
    )
    dispatch_lease_seconds: float = Field(
        default=60.0,
        ge=15.0,
        description="How long a claimed outbox row belongs to one dispatcher before another may retry it.",
    )
    # Sends per second across all dispatchers, per provider; 0 means unlimited.
    dispatch_rate_apns: float = Field(default=1000.0, ge=0)
    dispatch_rate_fcm: float = Field(default=1000.0, ge=0)
    dispatch_rate_sms: float = Field(default=10.0, ge=0)
    dispatch_rate_voice: float = Field(default=1.0, ge=0)
    dispatch_rate_email: float = Field(default=20.0, ge=0)
    dispatch_rate_slack: float = Field(default=5.0, ge=0)
    dispatch_rate_webhook: float = Field(default=100.0, ge=0)

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    @property
    def effective_database_url(self) -> str:
        """The database URL to use, defaulting to a SQLite file under `data_dir`."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'sentinel.db').resolve()}"

    @property
    def escalation_shards(self) -> int:
        """How many escalation hosts run (the configured number, else one per core)."""
        return self.escalation_hosts or os.cpu_count() or 1

    @property
    def base_url(self) -> str:
        """Public base URL for links and webhook URLs, without a trailing slash."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    @property
    def channels(self) -> dict[str, bool]:
        """Which notification channels have credentials configured."""
        return {
            "apns": bool(self.apns_key_file and self.apns_key_id and self.apns_team_id and self.apns_topic),
            # Without a key file, Google's application default credentials may serve.
            "fcm": bool(
                self.fcm_credentials_file
                or (self.fcm_project_id and os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))
            ),
            "twilio": bool(
                self.twilio_account_sid
                and self.twilio_auth_token.get_secret_value()
                and self.twilio_from_number
            ),
            "email": bool(self.smtp_host and self.smtp_from),
            "slack": bool(self.slack_bot_token.get_secret_value()),
        }

    def resolved_secret_key(self) -> str:
        """Return the secret key, creating and persisting one under `data_dir` if unset."""
        if self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # O_EXCL so two processes starting together agree on one key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def normalize_database_url(url: str) -> str:
    """Make plain `postgres://`/`postgresql://` URLs use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process (cached; tests call `get_settings.cache_clear()`)."""
    return Settings()
