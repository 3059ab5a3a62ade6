"""Serve the OHIF viewer at ``/viewer/``: its files, its page for every route, its config.

* A path naming a file of the rewritten build (``settings.CARINA_VIEWER_DIR``, made by
  ``make viewer``) is that file, with an explicit media type (``SecurityMiddleware`` sends
  ``nosniff``, so a wrong type breaks module and worker scripts), the ``.gz`` copy when the
  browser accepts gzip, immutable caching for content-hashed bundles and revalidation (ETag)
  for the rest. The files hold no patient data, so they need no sign-in.
* A missing path that looks like a file (its last segment has an extension with a letter, as
  in ``.js``) is 404: answering index.html there would make the browser run HTML as script.
* Any other path is one of OHIF's client-side routes (``/viewer/``, ``/viewer/viewer``,
  ``/viewer/notfoundstudy`` …): the single page ``index.html``, for signed-in users only,
  never cached, with a Content-Security-Policy whose script hashes the build step computed.
* ``app-config.js`` is generated here (``templates/viewer/app-config.js``) so that OHIF reads
  Carina's own DICOMweb service (PS3.18) on the same origin.
"""

from __future__ import annotations

import json
import mimetypes
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render, resolve_url
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils._os import safe_join
from django.utils.cache import add_never_cache_headers, get_conditional_response, patch_vary_headers
from django.utils.http import http_date
from django.views.decorators.http import require_safe

from carina.viewer.build import MANIFEST_NAME

#: Media types for the viewer's files; Python's table is incomplete or dated for several.
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".jsonc": "application/json",
    ".map": "application/json",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/vnd.microsoft.icon",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml",
    ".txt": "text/plain; charset=utf-8",
    ".onnx": "application/octet-stream",
}
#: webpack's content-hashed names (``136.bundle.b948da0438a0a660.js``, ``34b1e6b1deb5828e.wasm``):
#: a new release has new names, so these may be cached for good.
HASHED_NAME = re.compile(r"(?:^|\.)[0-9a-f]{16}\.(?:js|css|wasm|woff2?)$")
#: A last path segment that names a file (``x.js``, ``a.woff2``), as opposed to a route or a UID.
FILE_LIKE = re.compile(r"\.[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*$")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"

#: The document policy for index.html only (worker scripts get none: their wasm codecs need
#: ``new Function``); the inline-script hashes are added from the build manifest.
CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self' {hashes} 'wasm-unsafe-eval'",
    "worker-src 'self'",
    "img-src 'self' data: blob:",
    "style-src 'self' 'unsafe-inline'",
    "font-src 'self' data:",
    "connect-src 'self'",
    "media-src 'self' blob:",
    "object-src 'self' blob:",
    "frame-ancestors 'self'",
    "base-uri 'self'",
    "form-action 'self'",
)


def viewer_root() -> Path | None:
    """The folder of the rewritten OHIF build, or None when ``make viewer`` has not run."""
    root = Path(settings.CARINA_VIEWER_DIR)
    return root if (root / "index.html").is_file() else None


def not_installed(request: HttpRequest) -> HttpResponse:
    """503 with what to do, when the viewer files are missing."""
    response = render(
        request,
        "viewer/not_installed.html",
        {"viewer_dir": settings.CARINA_VIEWER_DIR},
        status=503,
    )
    add_never_cache_headers(response)
    return response


def content_security_policy(root: Path) -> str:
    manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    hashes = " ".join(f"'{h}'" for h in manifest["script_hashes"])
    return "; ".join(CSP_DIRECTIVES).replace("{hashes}", hashes)


def media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in MEDIA_TYPES:
        return MEDIA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _accepts_gzip(request: HttpRequest) -> bool:
    """Whether Accept-Encoding allows gzip (RFC 9110 §12.5.3; ``q=0`` refuses it)."""
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() not in {"gzip", "*"}:
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def _file_in(root: Path, path: str) -> Path | None:
    """The build file at ``path``, or None (hidden files and escapes from the root are None)."""
    if any(part.startswith(".") for part in path.split("/")):
        return None
    try:
        candidate = Path(safe_join(root, path))
    except SuspiciousFileOperation:
        return None
    return candidate if candidate.is_file() else None


def serve_file(request: HttpRequest, file: Path) -> HttpResponseBase:
    """One build file: media type, gzip copy if accepted, caching, conditional GET."""
    compressed = file.with_name(file.name + ".gz")
    use_gzip = compressed.is_file() and _accepts_gzip(request)
    sent = compressed if use_gzip else file
    stat = sent.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}{"-gz" if use_gzip else ""}"'
    cache_control = IMMUTABLE if HASHED_NAME.search(file.name) else REVALIDATE
    response: HttpResponseBase | None = get_conditional_response(
        request, etag=etag, last_modified=int(stat.st_mtime)
    )
    if response is None:
        response = FileResponse(sent.open("rb"), content_type=media_type(file.name))
        response.headers.pop("Content-Disposition", None)
        if use_gzip:
            response["Content-Encoding"] = "gzip"
    response["ETag"] = etag
    response["Last-Modified"] = http_date(stat.st_mtime)
    response["Cache-Control"] = cache_control
    if compressed.is_file():
        patch_vary_headers(response, ["Accept-Encoding"])
    return response


def index_page(root: Path) -> HttpResponse:
    """OHIF's single page (``index.html``), never cached, with its CSP."""
    response = HttpResponse(
        (root / "index.html").read_bytes(), content_type="text/html; charset=utf-8"
    )
    response["Content-Security-Policy"] = content_security_policy(root)
    add_never_cache_headers(response)
    return response


@require_safe
def app(request: HttpRequest, path: str = "") -> HttpResponseBase:
    """Everything under ``/viewer/`` except ``app-config.js``: a build file or the page."""
    root = viewer_root()
    if root is None:
        return not_installed(request)
    if path and path != "index.html":
        file = _file_in(root, path)
        if file is not None:
            return serve_file(request, file)
        if FILE_LIKE.search(path.rsplit("/", 1)[-1]):
            raise Http404(f"The viewer has no file {path!r}.")
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), resolve_url(settings.LOGIN_URL))
    return index_page(root)


def app_config_context() -> dict[str, Any]:
    prefix = get_script_prefix()
    return {
        "router_basename": reverse("viewer:index").rstrip("/"),
        "dicomweb_root": f"{prefix}dicomweb",
        "login_url": resolve_url(settings.LOGIN_URL),
    }


@require_safe
def app_config(request: HttpRequest) -> HttpResponse:
    """``/viewer/app-config.js``: OHIF's ``window.config``, pointing at ``/dicomweb``."""
    body = render_to_string("viewer/app-config.js", app_config_context(), request=request)
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    add_never_cache_headers(response)
    return response
