"""Settings: defaults, URL normalisation, the persisted secret key, disabled channels."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sentinel_app.settings import Settings, get_settings, normalize_database_url


def test_default_database_is_a_sqlite_file_in_the_data_dir(
    settings_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = get_settings()
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve()}/sentinel.db"
    assert settings.base_url == "http://localhost:3000"
    assert settings.ray_address == ""


def test_public_url_follows_the_port_unless_set(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("SENTINEL_PORT", "8080")
    assert get_settings().base_url == "http://localhost:8080"
    settings_env.setenv("SENTINEL_PUBLIC_URL", "https://oncall.example.com/")
    get_settings.cache_clear()
    assert get_settings().base_url == "https://oncall.example.com"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u:p@h:5433/db", "postgresql+psycopg://u:p@h:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////var/lib/sentinel.db", "sqlite:////var/lib/sentinel.db"),
    ],
)
def test_database_urls_use_psycopg_3(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_secret_key_is_generated_once_and_kept_private(
    settings_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = get_settings().resolved_secret_key()
    get_settings.cache_clear()
    second = get_settings().resolved_secret_key()
    assert first == second and len(first) >= 48
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_an_explicit_secret_key_wins_and_is_never_printed(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("SENTINEL_SECRET_KEY", "s3cret-value-from-env")
    settings = get_settings()
    assert settings.resolved_secret_key() == "s3cret-value-from-env"
    assert "s3cret-value-from-env" not in repr(settings)
    assert "s3cret-value-from-env" not in str(settings.model_dump())


def test_channels_without_credentials_are_disabled(settings_env: pytest.MonkeyPatch) -> None:
    assert get_settings().channels == {
        "apns": False,
        "fcm": False,
        "twilio": False,
        "email": False,
        "slack": False,
    }
    settings_env.setenv("SENTINEL_SMTP_HOST", "mail.example.com")
    settings_env.setenv("SENTINEL_SMTP_FROM", "oncall@example.com")
    get_settings.cache_clear()
    assert get_settings().channels["email"] is True


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [
        f"SENTINEL_{name.upper()}"
        for name in Settings.model_fields
        if f"SENTINEL_{name.upper()}" not in readme
    ]
    assert missing == []
