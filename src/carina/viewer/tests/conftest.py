"""A small stand-in for the ``@ohif/app`` dist with the shape the build step expects (the same
counts of root-relative references as 3.13.2), so the serving tests need no npm download."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from carina.viewer.build import REWRITES, build

HASHED_BUNDLE = "app.bundle.0f6159c501addfe9.js"
WORKER_BUNDLES = [
    "136.bundle.b948da0438a0a660.js",
    "2299.bundle.2375af8b16a1702e.js",
    "8097.bundle.8ae6404ba94890a0.js",
    "compute.bundle.0fc3a3ee85296cf2.js",
    "histogram-worker.bundle.ec5f0cf05ce3909c.js",
    "interpolation.bundle.fa54018d8628f8c0.js",
    "polySeg.bundle.2c5892e4c5a6bdd5.js",
]
WASM = "34b1e6b1deb5828e.wasm"
PASSWORD = "Carina-test-pw-1"


def expected(pattern: str) -> int:
    return next(r.expected for r in REWRITES if r.pattern == pattern)


def make_dist(folder: Path) -> Path:
    """Write a fake OHIF dist into ``folder`` and return it."""
    folder.mkdir(parents=True)
    # index.html: two inline scripts setting PUBLIC_URL, then root-relative references.
    references = [
        '<script src="/app-config.js"></script>',
        f'<script defer src="/{HASHED_BUNDLE}"></script>',
        '<link href="/app.bundle.css" rel="stylesheet">',
        '<link rel="manifest" href="/manifest.json">',
        '<meta name="msapplication-TileImage" content="/assets/mstile-144x144.png">',
    ]
    count = expected(r'(href|src|content)="/(?!/)')
    references += [
        f'<link rel="icon" href="/assets/icon-{n}.png">' for n in range(count - len(references))
    ]
    (folder / "index.html").write_text(
        '<!doctype html><html><head><script>console.time("s"),window.PUBLIC_URL="/"</script>'
        + "".join(references)
        + '<link rel="dns-prefetch" href="//cdn.example.org">'
        + '<script>function browserImportFunction(n){return import(n)}window.PUBLIC_URL="/"'
        + '</script></head><body><div id="root"></div></body></html>'
    )
    runtime = '__webpack_require__.p = "/";\n'
    filler = "".join(f"var line{n} = 'viewer code {n}';\n" for n in range(200))  # > 1 KiB
    (folder / HASHED_BUNDLE).write_text(
        runtime
        + "window.browserImportFunction('/dicom-microscopy-viewer/viewer.min.js');\n"
        + filler
    )
    assert len(WORKER_BUNDLES) + 1 == expected('__webpack_require__.p = "/";')
    for name in WORKER_BUNDLES:
        (folder / name).write_text(runtime + filler)
    (folder / "es6-shim.min.js").write_text("/* no public path here */")
    fonts = expected("url(/")
    (folder / "app.bundle.css").write_text(
        "".join(f"@font-face{{src:url(/a34f9d1faa5f{n:04d}.woff2)}}\n" for n in range(fonts))
    )
    icons = expected('"/assets/')
    (folder / "manifest.json").write_text(
        json.dumps({"icons": [{"src": f"/assets/android-{n}.png"} for n in range(icons)]})
    )
    (folder / WASM).write_bytes(b"\0asm\x01\0\0\0" + bytes(4096))
    (folder / "assets").mkdir()
    (folder / "assets" / "favicon.ico").write_bytes(b"\0\0\1\0")
    (folder / "app-config.js").write_text("window.config = {demo: 'AWS'};")
    (folder / "serve.json").write_text("{}")
    return folder


@pytest.fixture
def ohif_dist(tmp_path: Path) -> Path:
    return make_dist(tmp_path / "package" / "dist")


@pytest.fixture
def viewer_dir(ohif_dist: Path, tmp_path: Path, settings: Any) -> Path:
    """The fake dist built for /viewer/ and set as ``CARINA_VIEWER_DIR``."""
    out = tmp_path / "viewer"
    build(ohif_dist, out)
    settings.CARINA_VIEWER_DIR = out
    return out
