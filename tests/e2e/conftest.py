"""Fixtures for end-to-end tests: one running app and a headless chromium for this package.

The app is the production build started the way `make run` starts it, on a free port with
a temporary data directory (SQLite) and its own Reflex web directory, so a developer's
running instance and `.web/` are left alone.

Both fixtures are package-scoped, not session-scoped: Playwright's sync API keeps an
asyncio loop running in the main thread while it is open, which would break every
pytest-asyncio test collected after this package, and the app (Reflex + Ray, ~1 GB) should
not stay up while the rest of the suite runs. Write e2e tests as plain (sync) functions.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.app_process import ARTIFACTS_DIR, RunningApp, run_app

CHROMIUM = os.environ.get("SENTINEL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="package")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The production app, running while this package's tests run."""
    root = tmp_path_factory.mktemp("e2e-app")
    with run_app(
        root / "data",
        extra_env={
            "REFLEX_WEB_WORKDIR": str(root / "web"),
            "REFLEX_STATES_WORKDIR": str(root / "states"),
        },
    ) as app:
        yield app


@pytest.fixture(scope="package")
def base_url(app_server: RunningApp) -> str:
    """Base URL of the running app, e.g. http://127.0.0.1:41234."""
    return app_server.base_url


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots and logs go (gitignored, kept by CI)."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's headless chromium through Playwright (never `playwright install`)."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        message = f"chromium not found at {CHROMIUM}; run `scripts/bootstrap.sh --browser`"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh browser context and page per test, with the app's base URL set."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
