"""The landing page renders in a real browser against the production build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sentinel_app import __version__

pytestmark = pytest.mark.e2e


def test_home_page_shows_product_name_and_version(page: Page, artifacts_dir: Path) -> None:
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} {req.failure}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

    response = page.goto("/")
    assert response is not None and response.ok

    expect(page).to_have_title("Fangorn Sentinel")
    expect(page.get_by_role("heading", name="Fangorn Sentinel")).to_be_visible()
    version = page.locator("#version")
    expect(version).to_be_visible()
    expect(version).to_have_text(re.compile(rf"\b{re.escape(__version__)}\b"))

    page.screenshot(path=str(artifacts_dir / "home.png"), full_page=True)
    # (The browser's own /favicon.ico request is not a page request and is not checked.)
    assert not problems, f"problems while loading the page: {problems}"
