"""Reflex configuration: one app, one port, database URL from SENTINEL_DATABASE_URL."""

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from sentinel_app.settings import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="sentinel_app",
    db_url=_settings.effective_database_url,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    frontend_port=_settings.port,
    backend_port=_settings.port,
    # api_url stays http://localhost:PORT: the browser swaps in the host it loaded the page from.
    backend_host=_settings.host,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="grass", radius="medium"))],
    disable_plugins=[SitemapPlugin],
)
