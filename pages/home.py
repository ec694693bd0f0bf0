"""Landing page: product name, version and readiness."""

import reflex as rx

from sentinel_app import __version__


def index() -> rx.Component:
    """The landing page."""
    return rx.center(
        rx.vstack(
            rx.heading("Fangorn Sentinel", size="8"),
            rx.text(f"Version {__version__}", id="version"),
        ),
        height="100vh",
    )
