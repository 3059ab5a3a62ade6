"""Rewrite the prebuilt OHIF viewer (npm package ``@ohif/app``) so that it works under ``/viewer/``.

The published ``dist/`` is built with ``PUBLIC_URL=/``: the page, the webpack runtimes (the
app and each worker) and the stylesheet load their files from the site root. OHIF has no
run-time setting for that (``routerBasename`` moves only the React routes), so this step copies
``dist/`` and rewrites each root-relative reference to the base path, counting the
replacements. A different OHIF version changes those counts, and the step then stops with a
message instead of producing a viewer that loads half its files from the wrong place.

It also removes the shipped ``app-config.js`` (Carina generates its own), computes the CSP
hashes of the page's two inline scripts, and writes a gzip copy beside each large text or
wasm file so the web server can send it compressed.

Usage (``make viewer`` runs it)::

    python -m carina.viewer.build <unpacked package>/dist build/viewer [--base /viewer/]

The output folder is replaced only when every step succeeded.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The OHIF release whose files the expected counts below describe.
OHIF_VERSION = "3.13.2"
#: Written into the output folder; the web server reads the CSP hashes from it.
MANIFEST_NAME = ".carina-viewer.json"
#: Shipped files Carina replaces or has no use for (static-host rules, the demo data source).
DROPPED_FILES = ("app-config.js", "_headers", "_redirects", "serve.json")
#: Files compressed ahead of time (the server picks ``<file>.gz`` when the browser accepts it).
GZIP_SUFFIXES = frozenset({".js", ".mjs", ".css", ".wasm", ".json", ".svg", ".map", ".jsonc"})
GZIP_MIN_BYTES = 1024

INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
EXPECTED_INLINE_SCRIPTS = 2


class BuildError(Exception):
    """The dist is not the one this step knows how to rewrite; nothing was written."""


@dataclass(frozen=True)
class Rewrite:
    """One counted substitution over the files matching ``glob`` (relative to the dist root)."""

    what: str
    glob: str
    pattern: str
    replacement: Callable[[str], str]  # base path -> replacement text
    expected: int
    regex: bool = False

    def apply(self, root: Path, base: str) -> int:
        files = sorted(root.glob(self.glob))
        if not files:
            raise BuildError(f"{self.what}: no file matches {self.glob!r} in {root}")
        total = 0
        for path in files:
            text = path.read_text(encoding="utf-8")
            replacement = self.replacement(base)
            if self.regex:
                new, count = re.subn(self.pattern, replacement, text)
            else:
                count = text.count(self.pattern)
                new = text.replace(self.pattern, replacement)
            if count:
                path.write_text(new, encoding="utf-8")
            total += count
        if total != self.expected:
            raise BuildError(
                f"{self.what}: found {total} occurrence(s) of {self.pattern!r} in {self.glob}, "
                f"expected {self.expected}. This step knows @ohif/app {OHIF_VERSION}; for "
                "another version, check the new dist and update the counts in "
                "carina/viewer/build.py (see docs/viewer.md, 'Upgrading OHIF')."
            )
        return total


REWRITES: tuple[Rewrite, ...] = (
    Rewrite(
        "PUBLIC_URL in index.html",
        "index.html",
        'window.PUBLIC_URL="/"',
        lambda base: f'window.PUBLIC_URL="{base}"',
        expected=2,
    ),
    Rewrite(
        "root-relative href/src/content in index.html",
        "index.html",
        r'(href|src|content)="/(?!/)',
        lambda base: rf'\1="{base}',
        expected=33,
        regex=True,
    ),
    Rewrite(
        "webpack public path in the app and worker bundles",
        "*.js",
        '__webpack_require__.p = "/";',
        lambda base: f'__webpack_require__.p = "{base}";',
        expected=8,
    ),
    Rewrite(
        "microscopy viewer path in the app bundle",
        "app.bundle.*.js",
        "'/dicom-microscopy-viewer/",
        lambda base: f"'{base}dicom-microscopy-viewer/",
        expected=1,
    ),
    Rewrite(
        "font URLs in app.bundle.css",
        "app.bundle.css",
        "url(/",
        lambda base: f"url({base}",
        expected=5,
    ),
    Rewrite(
        "icon paths in manifest.json",
        "manifest.json",
        '"/assets/',
        lambda base: f'"{base}assets/',
        expected=9,
    ),
)


def script_hashes(index_html: str) -> list[str]:
    """CSP source expressions (``'sha256-…'`` without quotes) for the page's inline scripts."""
    scripts = INLINE_SCRIPT.findall(index_html)
    if len(scripts) != EXPECTED_INLINE_SCRIPTS:
        raise BuildError(
            f"index.html has {len(scripts)} inline script(s), expected "
            f"{EXPECTED_INLINE_SCRIPTS}; update carina/viewer/build.py for this OHIF version."
        )
    return [
        "sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode("ascii")
        for s in scripts
    ]


def precompress(root: Path) -> int:
    """Write ``<file>.gz`` beside each compressible file where it saves space; return count."""
    written = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in GZIP_SUFFIXES:
            continue
        data = path.read_bytes()
        if len(data) < GZIP_MIN_BYTES:
            continue
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        if len(packed) < len(data) * 0.9:
            path.with_name(path.name + ".gz").write_bytes(packed)
            written += 1
    return written


def _package_version(dist: Path) -> str | None:
    package_json = dist.parent / "package.json"
    if not package_json.is_file():
        return None
    version = json.loads(package_json.read_text(encoding="utf-8")).get("version")
    return str(version) if version else None


def _normalise_base(base: str) -> str:
    if not base.startswith("/") or not base.endswith("/") or "//" in base or '"' in base:
        raise BuildError(f"the base path must look like /viewer/ (got {base!r})")
    return base


def build(
    dist: Path, out: Path, base: str = "/viewer/", *, compress: bool = True
) -> dict[str, object]:
    """Copy ``dist`` to ``out`` rewritten for ``base``; return the manifest written with it."""
    base = _normalise_base(base)
    if not (dist / "index.html").is_file():
        raise BuildError(f"{dist} is not an OHIF dist folder (it has no index.html)")
    version = _package_version(dist)
    if version is not None and version != OHIF_VERSION:
        raise BuildError(
            f"{dist} holds @ohif/app {version}; this step knows {OHIF_VERSION}. Update "
            "OHIF_VERSION and the counts in carina/viewer/build.py (see docs/viewer.md)."
        )
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        shutil.copytree(dist, work)
        counts = {rewrite.what: rewrite.apply(work, base) for rewrite in REWRITES}
        for name in DROPPED_FILES:
            (work / name).unlink(missing_ok=True)
        hashes = script_hashes((work / "index.html").read_text(encoding="utf-8"))
        gzipped = precompress(work) if compress else 0
        manifest: dict[str, object] = {
            "ohif_version": version or OHIF_VERSION,
            "base": base,
            "script_hashes": hashes,
            "replacements": counts,
            "gzipped_files": gzipped,
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        (work / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        if out.exists():
            out.rename(old)
        work.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m carina.viewer.build",
        description="Rewrite the prebuilt OHIF viewer (@ohif/app dist) for Carina's /viewer/.",
    )
    parser.add_argument("dist", type=Path, help="the dist/ folder of the unpacked npm package")
    parser.add_argument("out", type=Path, help="where the rewritten viewer goes (replaced)")
    parser.add_argument("--base", default="/viewer/", help="URL path the viewer is served at")
    parser.add_argument("--no-gzip", action="store_true", help="skip the .gz copies")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.dist, args.out, args.base, compress=not args.no_gzip)
    except BuildError as exc:
        sys.stderr.write(f"carina.viewer.build: {exc}\n")
        return 1
    print(
        f"OHIF {manifest['ohif_version']} rewritten for {manifest['base']} in {args.out} "
        f"({manifest['gzipped_files']} files pre-compressed)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
