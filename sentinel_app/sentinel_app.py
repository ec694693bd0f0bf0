"""The Reflex application: UI pages, the mounted API and the process lifespan."""

import reflex as rx

from pages import home
from sentinel_app.api import create_api
from sentinel_app.runtime import lifespan

app = rx.App(api_transformer=create_api())
app.register_lifespan_task(lifespan)
app.add_page(home.index, route="/", title="Fangorn Sentinel", on_load=home.HomeState.refresh)
