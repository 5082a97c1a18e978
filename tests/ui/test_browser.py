"""The dashboard in real headless Chromium (Debian's package, driven by Playwright).

Every page renders with no console error, and the actions work by clicking. Screenshots
go to test-artifacts/screenshots/. Without chromium or playwright the tests skip on a
laptop and fail under CI=true.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import Empty, serving
from tests.ui.demo import Demo
from tests.ui.test_pages import PAGES

CHROMIUM = os.environ.get("KEEL_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"chromium not found at {CHROMIUM} (apt-get install chromium)"
    return None


def require_browser() -> None:
    """Skip with a one-line reason, or fail under CI=true, when the browser is missing."""
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests are required under CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    require_browser()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


class Watched:
    """A browser page that records console errors, page errors and failed requests."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"console {message.type}: {message.text}")

    def sign_in(self, key: str) -> None:
        self.page.goto(self.base + "/ui/")
        self.page.fill("#api_key", key)
        self.page.click("#sign-in")
        self.page.wait_for_url("**/ui/")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def admin_page(browser: Any, demo: Demo, base_url: str) -> Iterator[Watched]:
    """A signed-in admin's tab on the shared demo dashboard."""
    watched = Watched(browser, base_url)
    watched.sign_in(demo.admin_key)
    yield watched
    watched.context.close()


@pytest.mark.parametrize("path", [*PAGES, "/ui/deployments/rollback"])
def test_page_renders_without_console_errors(admin_page: Watched, path: str) -> None:
    """Each page loads in Chromium with a heading, no console error and no failed request."""
    admin_page.errors.clear()
    response = admin_page.page.goto(admin_page.base + path)
    assert response is not None and response.status == 200
    assert admin_page.page.locator("h1").count() == 1
    name = path.strip("/").replace("/", "-").replace("?", "-").replace("&", "-").replace("=", "")
    admin_page.shot(name or "overview")
    assert admin_page.errors == []


def test_clicking_acknowledge_marks_the_alert(browser: Any, fresh_demo: Demo) -> None:
    """An admin clicks Acknowledge; the alert shows who acknowledged it."""
    with serving(fresh_demo.root) as base:
        watched = Watched(browser, base)
        try:
            watched.sign_in(fresh_demo.admin_key)
            watched.page.goto(base + "/ui/alerts")
            row = watched.page.locator(f"#a-{fresh_demo.alert_id}")
            row.locator("button.ack").click()
            watched.page.wait_for_url("**/ui/alerts?done=acknowledged*")
            status = watched.page.locator(f"#a-{fresh_demo.alert_id} .alert-status")
            assert status.inner_text() == "acknowledged by ui:ops-admin"
            assert "Alert acknowledged." in watched.page.inner_text(".notice")
            watched.shot("alerts-after-acknowledge")
            assert watched.errors == []
        finally:
            watched.context.close()


def test_clicking_through_a_rollback(browser: Any, fresh_demo: Demo) -> None:
    """Rollback needs the confirmation page and a reason, then version 1 is in production."""
    with serving(fresh_demo.root) as base:
        watched = Watched(browser, base)
        try:
            watched.sign_in(fresh_demo.admin_key)
            watched.page.goto(base + "/ui/deployments")
            watched.page.click("#rollback")
            watched.page.fill("#reason", "p99 latency doubled")
            watched.page.click("#confirm-rollback")
            watched.page.wait_for_url("**/ui/deployments?done=rolled-back")
            watched.page.goto(base + "/ui/")
            assert "version 1" in watched.page.inner_text(".card")
            watched.shot("overview-after-rollback")
            assert watched.errors == []
        finally:
            watched.context.close()


def test_sign_out_returns_to_the_login_form(browser: Any, demo: Demo, base_url: str) -> None:
    """Clicking Sign out ends the session: the overview asks for a key again."""
    watched = Watched(browser, base_url)
    try:
        watched.sign_in(demo.viewer_key)
        watched.page.click("#logout")
        watched.page.wait_for_url("**/ui/login")
        watched.page.goto(base_url + "/ui/")
        assert watched.page.locator("#api_key").count() == 1
        watched.shot("login")
        assert watched.errors == []
    finally:
        watched.context.close()


@pytest.fixture(scope="module")
def empty_page(browser: Any, empty: Empty) -> Iterator[Watched]:
    """A signed-in tab on the empty project's dashboard."""
    watched = Watched(browser, empty.base)
    watched.sign_in(empty.key)
    yield watched
    watched.context.close()


@pytest.mark.parametrize("path", [p for p in PAGES if "registry/" not in p])
def test_empty_project_renders_without_console_errors(empty_page: Watched, path: str) -> None:
    """With nothing recorded, every page still renders cleanly in the browser."""
    empty_page.errors.clear()
    response = empty_page.page.goto(empty_page.base + path)
    assert response is not None and response.status == 200
    empty_page.shot("empty-" + (path.strip("/").replace("/", "-") or "overview"))
    assert empty_page.errors == []
