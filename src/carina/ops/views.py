"""Health endpoints (contract: ``/api/health/``, ``/api/health/live/``, ``/api/health/ready/``).

They answer without authentication so that load balancers and ``carina serve`` can poll them;
they reveal no patient data.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from carina.ops.checks import READINESS_CHECKS


@csrf_exempt
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


def _run_checks() -> JsonResponse:
    results = {name: check() for name, check in READINESS_CHECKS.items()}
    healthy = all(ok for ok, _ in results.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in results.items()},
    }
    return JsonResponse(body, status=200 if healthy else 503)


@csrf_exempt
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Every dependency the archive needs answers: database and storage."""
    return _run_checks()


@csrf_exempt
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """All checks with their details."""
    return _run_checks()
