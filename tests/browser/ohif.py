"""Helpers for driving OHIF in Chromium: where the browser is, what to wait for, how to
measure a drawn canvas, and a record of the page's HTTP faults (notes: ohif-viewer.md §5)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

PASSWORD = "Carina-test-pw-1"
REPO = Path(__file__).resolve().parents[2]
#: Screenshots land here (gitignored; CI keeps the folder as an artifact).
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_CANDIDATES = (Path("/usr/lib/chromium/chromium"), Path("/usr/bin/chromium"))
#: SwiftShader WebGL: the same software renderer on every machine, GPU or not.
CHROMIUM_ARGS = [
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--no-sandbox",
]

#: True when every cornerstone viewport (at least ``min``) has drawn its image and every
#: volume it shows is fully loaded (OHIF's own tests wait the same way).
WAIT_RENDERED = """({min}) => {
  const cs = window.cornerstone;
  if (!cs?.getRenderingEngines) return false;
  const vps = cs.getRenderingEngines().flatMap(e => e.getViewports ? e.getViewports() : []);
  if (vps.length < min || !vps.every(v => v?.viewportStatus === 'rendered')) return false;
  for (const v of vps) for (const a of (v.getActors ? v.getActors() : [])) {
    const id = a?.referencedId || a?.uid; if (!id) continue;
    let vol; try { vol = cs.cache.getVolume(id); } catch { continue; }
    if (vol?.loadStatus && vol.loadStatus.loaded === false) return false;
  }
  return true;
}"""

#: Per viewport: the share of sampled canvas pixels brighter than near-black, and how many
#: distinct red levels they have (a flat or blank canvas has one or two).
CANVAS_STATS = """() => [...document.querySelectorAll('.cornerstone-viewport-element')].map(el => {
  const c = el.querySelector('canvas.cornerstone-canvas');
  const copy = document.createElement('canvas'); copy.width = c.width; copy.height = c.height;
  const ctx = copy.getContext('2d'); ctx.drawImage(c, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0, nb = 0; const distinct = new Set();
  for (let i = 0; i < d.length; i += 16) {
    n++; if ((d[i] + d[i + 1] + d[i + 2]) / 3 > 16) nb++; distinct.add(d[i]);
  }
  return {id: el.dataset.viewportid, w: c.width, h: c.height, nonBlack: nb / n,
          distinct: distinct.size};
})"""

#: What each viewport shows: its id, type, current image id and that image's transfer syntax.
VIEWPORT_IMAGES = """() => window.cornerstone.getRenderingEngines().flatMap(e => e.getViewports())
  .map(v => {
    const imageId = v.getCurrentImageId ? v.getCurrentImageId() : null;
    const image = imageId ? window.cornerstone.cache.getImage(imageId) : null;
    return {id: v.id, type: v.type, imageId, transferSyntax: image?.transferSyntaxUID ?? null};
  })"""


def chromium_path() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(
        "Chromium is missing: install the Debian package (make system-deps does: apt-get install "
        "chromium). Playwright's own browser download is not used."
    )


@dataclass
class Traffic:
    """HTTP answers the page received that signal a fault, and CSP violations it reported."""

    failures: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    dicomweb_requests: list[str] = field(default_factory=list)

    def on_response(self, response: Response) -> None:
        path = response.url.split("://", 1)[-1].partition("/")[2]
        if path.startswith("dicomweb/"):
            self.dicomweb_requests.append(f"{response.request.method} /{path}")
        if path.startswith(("dicomweb/", "viewer/")) and response.status >= 400:
            self.failures.append(f"{response.status} {response.request.method} /{path}")

    def on_console(self, text: str) -> None:
        if "Content Security Policy" in text:
            self.csp_violations.append(text)


@dataclass
class ViewerPage:
    page: Page
    base_url: str
    traffic: Traffic

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        """Open the study list signed out, sign in on Carina's page, come back to the list."""
        self.page.goto(f"{self.base_url}/viewer/")
        assert "/accounts/login/?next=/viewer/" in self.page.url
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.base_url}/viewer/")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def wait_rendered(self, viewports: int, timeout_s: float = 180) -> None:
        """Wait until ``viewports`` viewports have drawn; stop early, with the failed
        requests, once Carina has refused one (the viewer would wait for ever)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.page.wait_for_function(WAIT_RENDERED, arg={"min": viewports}, timeout=2000)
                return
            except PlaywrightTimeoutError:
                if self.traffic.failures:
                    raise AssertionError(
                        "the viewer did not draw; failed requests:\n"
                        + "\n".join(self.traffic.failures)
                    ) from None
                if time.monotonic() > deadline:
                    raise

    def canvas_stats(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate(CANVAS_STATS))

    def settled_canvas_stats(self, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Canvas figures once every viewport shows something. A viewport reports
        'rendered' before a late layout change (which resizes, and so clears, its canvas)
        is followed by the next draw; a canvas that stays black fails the caller's checks
        with these figures."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.canvas_stats()
            if stats and all(s["nonBlack"] > 0 for s in stats):
                return stats
            if time.monotonic() > deadline:
                return stats
            self.page.wait_for_timeout(250)

    def viewport_images(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate(VIEWPORT_IMAGES))


def record(name: str, figures: Any) -> None:
    """Keep what a test measured beside the screenshots (observations.json)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "observations.json"
    seen = json.loads(path.read_text()) if path.exists() else {}
    seen[name] = figures
    path.write_text(json.dumps(seen, indent=2) + "\n")
