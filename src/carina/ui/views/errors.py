"""Error pages (``handler403``, ``handler404``, ``handler500``): in the UI's frame for pages,
JSON ``{"detail": …}`` under ``/api/`` and ``/dicomweb/`` (programs read those)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string

PROGRAM_PREFIXES = ("/api/", "/dicomweb/")


def _message(exception: Exception | None, default: str) -> str:
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        return exception.args[0]
    return default


def _for_programs(request: HttpRequest) -> bool:
    return request.path.startswith(PROGRAM_PREFIXES)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = _message(exception, f"There is no page at {request.path}.")
    if _for_programs(request):
        return JsonResponse({"detail": message}, status=404)
    return render(request, "ui/errors/404.html", {"message": message}, status=404)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = _message(exception, "You may not open this page.")
    if _for_programs(request):
        return JsonResponse({"detail": message}, status=403)
    return render(request, "ui/errors/403.html", {"message": message}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    """A standalone page (no context processor runs: the database may be what failed)."""
    if _for_programs(request):
        return JsonResponse(
            {"detail": "The server failed to answer; the error is in the server log."}, status=500
        )
    return HttpResponse(render_to_string("ui/errors/500.html"), status=500)
