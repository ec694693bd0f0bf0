"""The Reflex application: UI pages, the mounted API and the process lifespan."""

import reflex as rx

from pages import home
from sentinel_app.api import create_api

app = rx.App(api_transformer=create_api(), theme=rx.theme(accent_color="grass"))
app.add_page(home.index, route="/", title="Fangorn Sentinel")
