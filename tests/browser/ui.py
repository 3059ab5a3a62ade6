"""Helpers for driving Carina's web application in Chromium: a running ``carina serve`` on the
test database, a page object that signs in, waits for HTMX, keeps screenshots under a
predictable folder, and runs axe-core (vendored, injected from a local file) on a page.

Screenshots: ``test-artifacts/browser/ui/<page>.png`` (CI keeps ``test-artifacts/``);
the accessibility results beside them in ``axe.json``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from carina.core.testing import child_env, free_port, run_carina, wait_http

from .ohif import ARTIFACTS, CHROMIUM_ARGS, PASSWORD, Traffic, ViewerPage, chromium_path

#: Where this module's screenshots and accessibility results go.
UI_ARTIFACTS = ARTIFACTS / "ui"
#: axe-core, the npm package's ``axe.min.js`` (MPL-2.0), committed beside these tests.
AXE = Path(__file__).with_name("vendor") / "axe-4.11.1.min.js"
#: axe-core impacts that fail a test.
BLOCKING_IMPACTS = ("serious", "critical")


@dataclass
class Server:
    """A ``carina serve`` child process on the test database and its own blob folder."""

    url: str
    dicom_port: int
    home: Path
    blobs: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def check_alive(self) -> None:
        """Fail with the end of the server's log when ``carina serve`` has stopped (it stops
        all its parts when one of them exits)."""
        if self.process.poll() is not None:
            log = (self.home / "serve.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(
                f"carina serve exited with {self.process.returncode}; its log ends:\n{log}"
            )

    def carina(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another ``carina`` command against the same database and files."""
        return run_carina(args, self.env)


@contextmanager
def carina_serve(home: Path) -> Iterator[Server]:
    """Start ``carina serve`` (web server, DICOM listener, worker) on free ports; stop it
    with SIGTERM as an operator would."""
    blobs = home / "blobs"
    http_port, dicom_port = free_port(), free_port()
    env = child_env(
        home,
        storage_url=f"file://{blobs}",
        CARINA_HTTP_HOST="127.0.0.1",
        CARINA_HTTP_PORT=str(http_port),
        CARINA_DICOM_HOST="127.0.0.1",
        CARINA_DICOM_PORT=str(dicom_port),
    )
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "carina", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_http(f"{url}/api/health/live/", timeout=120)
        yield Server(url, dicom_port, home, blobs, env, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


@dataclass
class UiPage:
    """A Chromium page on the running server."""

    page: Page
    base_url: str
    traffic: Traffic
    shots: list[Path] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(f"{self.base_url}{path}")

    def sign_in(self, username: str, password: str = PASSWORD, *, shot: str = "") -> None:
        """Sign in on Carina's page and land on the worklist."""
        self.goto("/")
        self.page.wait_for_url("**/accounts/login/**")
        if shot:
            self.screenshot(shot)
        self.page.get_by_label("User name", exact=True).fill(username)
        self.page.get_by_label("Password", exact=True).fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{self.base_url}/")

    def sign_out(self) -> None:
        self.page.locator("details.usermenu summary").click()
        self.page.get_by_role("button", name="Sign out").click()
        self.page.wait_for_url("**/accounts/login/")

    def settle(self) -> None:
        """Wait until no HTMX request is in flight."""
        self.page.wait_for_function("() => !document.querySelector('.htmx-request')")

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        UI_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = UI_ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.shots.append(path)
        return path

    def rows(self) -> list[str]:
        """The worklist's rows, as their StudyInstanceUIDs."""
        return list(
            self.page.eval_on_selector_all(
                "#results tr[data-study-uid]", "rows => rows.map(r => r.dataset.studyUid)"
            )
        )

    def axe(self, name: str) -> list[dict[str, Any]]:
        """Run axe-core (WCAG 2.x A and AA rules, best practices) on the current page; the
        serious and critical violations, and every result kept in ``axe.json``."""
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(path=str(AXE))
        result = self.page.evaluate(
            """async () => {
              const r = await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                'wcag22aa', 'best-practice']},
                resultTypes: ['violations'],
              });
              return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
            }"""
        )
        violations: list[dict[str, Any]] = list(result)
        record_axe(name, self.page.url, violations)
        return [v for v in violations if v["impact"] in BLOCKING_IMPACTS]

    def viewer(self) -> ViewerPage:
        """The OHIF helpers (ohif.py) for this page."""
        return ViewerPage(page=self.page, base_url=self.base_url, traffic=self.traffic)


def record_axe(name: str, url: str, violations: list[dict[str, Any]]) -> None:
    UI_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = UI_ARTIFACTS / "axe.json"
    seen = json.loads(path.read_text()) if path.exists() else {}
    seen[name] = {"url": url, "violations": violations}
    path.write_text(json.dumps(seen, indent=2) + "\n")


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            headless=True, executable_path=chromium_path(), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def ui_page(server: Server, viewport: dict[str, int] | None = None) -> Iterator[UiPage]:
    """A fresh page (own cookies) on ``server``; start it after the database is set up."""
    server.check_alive()
    traffic = Traffic()
    with chromium() as browser:
        context = browser.new_context(viewport=viewport or {"width": 1400, "height": 900})
        context.add_init_script(
            "localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']))"
        )
        page = context.new_page()
        page.on("response", traffic.on_response)
        page.on("console", lambda message: traffic.on_console(message.text))
        try:
            yield UiPage(page=page, base_url=server.url, traffic=traffic)
        except Exception:
            server.check_alive()  # say so when the server is what failed
            raise
