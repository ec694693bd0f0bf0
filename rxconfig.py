"""Reflex configuration: one app, one port, database URL from SENTINEL_DATABASE_URL."""

import reflex as rx

from sentinel_app.settings import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="sentinel_app",
    db_url=_settings.effective_database_url,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    frontend_port=_settings.port,
    backend_port=_settings.port,
    api_url=_settings.public_url,
    deploy_url=_settings.public_url,
    plugins=[],
    disable_plugins=["reflex.plugins.sitemap.SitemapPlugin"],
)
