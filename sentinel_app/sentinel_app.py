"""The Reflex application: UI pages, the mounted API and the process lifespan."""

import reflex as rx

from pages import alert_detail, alerts, home, login, overview, wall
from sentinel_app.api import create_api
from sentinel_app.runtime import lifespan

app = rx.App(api_transformer=create_api())
app.register_lifespan_task(lifespan)
# The readiness page moved from / (now the overview) to /status; it needs no sign-in.
app.add_page(home.index, route="/status", title="Status · Fangorn Sentinel", on_load=home.HomeState.refresh)
app.add_page(login.index, route="/login", title="Fangorn Sentinel", on_load=login.ON_LOAD)
app.add_page(overview.index, route="/", title="Fangorn Sentinel", on_load=overview.ON_LOAD)
app.add_page(alerts.index, route="/alerts", title="Alerts · Fangorn Sentinel", on_load=alerts.ON_LOAD)
app.add_page(
    alert_detail.index,
    route="/alerts/[alert_id]",
    title="Alert · Fangorn Sentinel",
    on_load=alert_detail.ON_LOAD,
)
app.add_page(wall.index, route="/wall", title="Wall · Fangorn Sentinel", on_load=wall.ON_LOAD)

from pages import config_routes  # noqa: E402  (the configuration pages register themselves last)

config_routes.register(app)
