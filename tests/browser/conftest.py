"""Browser tests: Debian's Chromium, headless, driven by Playwright against the real
``interlock serve`` on a free loopback port (SQLite).

Playwright's own browser downloads are never used: Chromium comes from the system
(``scripts/chromium.sh``, which ``make test`` runs and which exports
INTERLOCK_TEST_CHROMIUM). Without it these tests are skipped, unless
INTERLOCK_REQUIRE_CHROMIUM=1 (as under ``make test``), where they fail.

With INTERLOCK_SCREENSHOTS=docs/screenshots the tests also save a picture of each main
page there, for the README.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import CLI_TIMEOUT, KEY_LINE, Server, environment, interlock_command
from tests.support.server import serving as serve_interlock

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}


def _chromium() -> str:
    found = os.environ.get("INTERLOCK_TEST_CHROMIUM") or shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found:
        return found
    if os.environ.get("INTERLOCK_REQUIRE_CHROMIUM") == "1":
        pytest.fail("no Chromium (INTERLOCK_TEST_CHROMIUM); run the tests with `make test`")
    pytest.skip("no Chromium (run scripts/chromium.sh, or `make test`)")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _chromium()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")
    return path


# Module scope, not session: Playwright's sync API keeps an event loop running in the
# main thread while it is open, and every later asyncio.run() in the session would fail.
@pytest.fixture(scope="module")
def playwright_driver(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def open_browser(playwright_driver: Any, chromium_path: str, tmp_path: Path
                 ) -> Iterator[Any]:
    """``open_browser(viewport=...)`` → a fresh browser context with its own profile
    directory (cookies start empty), closed after the test."""
    contexts: list[Any] = []

    def launch(viewport: dict[str, int] | None = None) -> Any:
        context = playwright_driver.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(contexts)}"), executable_path=chromium_path,
            headless=True, args=CHROMIUM_ARGS, viewport=viewport or LAPTOP,
            timezone_id="Europe/Berlin", locale="en-GB",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield launch
    for context in contexts:
        context.close()


class Console:
    """A running ``interlock serve`` with an admin key, and ways to prepare data."""

    def __init__(self, server: Server, admin_key: str, workdir: Path, database_url: str
                 ) -> None:
        self.server = server
        self.url = server.base_url
        self.admin_key = admin_key
        self.workdir = workdir
        self.database_url = database_url
        self.api = httpx.Client(base_url=self.url + "/api/v1", timeout=10,
                                headers={"Authorization": f"Bearer {admin_key}"})

    def create_key(self, name: str, *scopes: str) -> str:
        """A key made with the CLI, as an operator would."""
        scope_args = [arg for scope in scopes for arg in ("--scope", scope)]
        done = subprocess.run(
            [*interlock_command(), "keys", "create", "--name", name, *scope_args,
             "--db", self.database_url],
            capture_output=True, text=True, cwd=self.workdir,
            env=environment(self.workdir), timeout=CLI_TIMEOUT, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip().splitlines()[-1]

    def declare(self, title: str, **fields: Any) -> dict[str, Any]:
        response = self.api.post("/incidents", json={"title": title, **fields})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    workdir = tmp_path_factory.mktemp("console")
    database_url = f"sqlite:///{workdir / 'interlock.db'}"
    extra = {"INTERLOCK_ALLOWED_TARGETS": "127.0.0.0/8"}
    with serve_interlock(database_url, workdir, "serve", extra) as server:
        match = KEY_LINE.search(server.output())
        assert match, server.output()
        running = Console(server, match.group(1), workdir, database_url)
        yield running
        running.api.close()
        server.stop()


def sign_in(page: Any, console: Console, key: str, path: str = "/") -> None:
    page.goto(console.url + path)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save a picture of the page for the README when INTERLOCK_SCREENSHOTS is set."""
    folder = os.environ.get("INTERLOCK_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # local times and fonts settle
    page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)
