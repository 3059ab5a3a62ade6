"""Browser tests: Debian's Chromium, driven by Playwright (Python), against pytest-django's
``live_server`` (a real HTTP server in this process, reading the test database).

Playwright's sync API keeps an event loop running in this thread, where Django refuses
database calls; so every fixture that writes to the database is set up before ``viewer_page``
starts the browser, and the browser is closed before the database is emptied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import sync_playwright

from carina.accounts.actions import do_create_admin
from carina.tenancy.models import Hospital

from .ohif import CHROMIUM_ARGS, PASSWORD, Traffic, ViewerPage, chromium_path


@pytest.fixture
def reader(hospital: Hospital) -> Any:
    """A radiologist of the default hospital (signs in with PASSWORD)."""
    user, _ = do_create_admin("reader", PASSWORD, hospital, role="radiologist")
    return user


@pytest.fixture
def viewer_page(live_server: Any, reader: Any) -> Iterator[ViewerPage]:
    """A fresh headless Chromium page; request it after the fixtures that store data."""
    if not (Path(settings.CARINA_VIEWER_DIR) / "index.html").is_file():
        raise RuntimeError(f"No OHIF build in {settings.CARINA_VIEWER_DIR}: run `make viewer`.")
    traffic = Traffic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            headless=True, executable_path=chromium_path(), args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            # Mark OHIF's onboarding tour as seen; it would cover the viewport.
            context.add_init_script(
                "localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']))"
            )
            page = context.new_page()
            page.on("response", traffic.on_response)
            page.on("console", lambda message: traffic.on_console(message.text))
            pw.selectors.set_test_id_attribute("data-cy")
            yield ViewerPage(page=page, base_url=live_server.url, traffic=traffic)
        finally:
            browser.close()
