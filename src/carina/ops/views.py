"""Health endpoints (contract: ``/api/health/``, ``/api/health/live/``, ``/api/health/ready/``)
and ``/metrics`` (docs/operations.md).

The health endpoints answer without authentication so that load balancers and ``carina
serve`` can poll them; they reveal no patient data. ``/metrics`` answers this machine
(loopback) or a caller with the metrics token (:mod:`carina.ops.metrics`).
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from carina.ops import metrics
from carina.ops.checks import CHECKS


def _carina_version() -> str:
    try:
        return version("carina")
    except PackageNotFoundError:  # pragma: no cover - a source tree without installation
        return "unknown"


@csrf_exempt
@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests (no dependency is checked)."""
    return JsonResponse({"status": "ok"})


def _run_checks(*, full: bool) -> JsonResponse:
    """The required checks (``full``: every check, with its duration and whether it is
    required, and Carina's version)."""
    checks: dict[str, dict[str, object]] = {}
    required_ok = optional_ok = True
    for check in CHECKS:
        if not (full or check.required):
            continue
        started = time.monotonic()
        ok, detail = check.run()
        entry: dict[str, object] = {"ok": ok, "detail": detail}
        if full:
            entry["required"] = check.required
            entry["seconds"] = round(time.monotonic() - started, 4)
        checks[check.name] = entry
        if not ok and check.required:
            required_ok = False
        elif not ok:
            optional_ok = False
    status = "ok" if required_ok and optional_ok else "degraded" if required_ok else "unavailable"
    body: dict[str, object] = {"status": status, "checks": checks}
    if full:
        body["version"] = _carina_version()
    return JsonResponse(body, status=200 if required_ok else 503)


@csrf_exempt
@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Carina can serve requests: the required checks (database, storage); 503 when one
    fails. For a load balancer's readiness probe: quick, and not turned away by a stopped
    DICOM listener or broker, which the web part does not need to answer."""
    return _run_checks(full=False)


@csrf_exempt
@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Every check (the broker and the DICOM listener too) with its detail and duration, and
    Carina's version: 503 when a required check fails, 200 with ``degraded`` when only an
    optional one does."""
    return _run_checks(full=True)


@csrf_exempt
@never_cache
@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """``/metrics``: every process's metrics in the Prometheus text format (version 0.0.4)."""
    refusal = metrics.refusal(request)
    if refusal is not None:
        return JsonResponse({"detail": refusal}, status=403)
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
