"""Request body limits, answered **413** with a JSON message a person can act on
(docs/api.md, "Limits"; docs/operations.md).

* A JSON, form or other body is read into memory: at most ``DATA_UPLOAD_MAX_MEMORY_SIZE``
  bytes (Django's setting). :class:`RequestBodyLimitMiddleware` refuses a larger announced
  ``Content-Length`` before anything reads it; Django's own check (``RequestDataTooBig``, a
  body without a length, the text fields of a form) reaches :func:`bad_request`, the
  project's ``handler400``, which answers 413 as well.
* A ``multipart/form-data`` upload is streamed to temporary files, not held in memory: its
  limit is ``CARINA_UPLOAD_MAX_BYTES`` in total, and ``DATA_UPLOAD_MAX_NUMBER_FILES`` files.
* DICOMweb (``/dicomweb/``) reads its bodies as streams and checks its own limit: STOW-RS
  answers 413 beyond ``CARINA_STOW_MAX_BYTES`` (docs/dicomweb).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views import defaults

logger = logging.getLogger(__name__)

#: Default total size of one multipart upload (``CARINA_UPLOAD_MAX_BYTES``): a DVD's worth.
DEFAULT_UPLOAD_MAX_BYTES = 20 << 30
#: Paths whose bodies are streamed and limited by their own views.
STREAMED_PREFIXES = ("/dicomweb/",)


def _size(count: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= factor:
            return f"{count / factor:.1f} {unit}"
    return f"{count} bytes"


def too_large(message: str, limit: int | None = None) -> JsonResponse:
    body: dict[str, object] = {"detail": message}
    if limit is not None:
        body["limit_bytes"] = limit
    return JsonResponse(body, status=413)


def memory_limit() -> int | None:
    value = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return None if value is None else int(value)


def upload_limit() -> int:
    return int(getattr(settings, "CARINA_UPLOAD_MAX_BYTES", DEFAULT_UPLOAD_MAX_BYTES))


def announced_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


class RequestBodyLimitMiddleware:
    """Refuses, before it is read, a body whose announced length is over its limit."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        length = announced_length(request)
        if length and not request.path.startswith(STREAMED_PREFIXES):
            refusal = self.refusal(request, length)
            if refusal is not None:
                logger.info(
                    "refused %s %s: body of %d bytes over the limit",
                    request.method,
                    request.path,
                    length,
                )
                return refusal
        return self.get_response(request)

    def refusal(self, request: HttpRequest, length: int) -> HttpResponse | None:
        if request.content_type == "multipart/form-data":
            limit = upload_limit()
            if length > limit:
                return too_large(
                    f"The upload ({_size(length)}) is larger than this server's limit of "
                    f"{_size(limit)} per request; send the files in several uploads.",
                    limit,
                )
            return None
        memory = memory_limit()
        if memory is not None and length > memory:
            return too_large(
                f"The request body ({_size(length)}) is larger than this server's limit of "
                f"{_size(memory)} for JSON and form data. Files go to POST /api/uploads/ "
                "(multipart/form-data) or to STOW-RS at /dicomweb/studies.",
                memory,
            )
        return None


#: Bodies read for the NUL check: JSON and form fields only (never uploads of files, which
#: are binary), and only bodies the memory limit lets through anyway.
_TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded")


def _form_or_json_holds_nul(request: HttpRequest) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return False
    if not str(request.META.get("CONTENT_TYPE", "")).startswith(_TEXT_BODIES):
        return False
    try:
        body = request.body  # within the memory limit (RequestBodyLimitMiddleware runs first)
    except RequestDataTooBig:
        return False  # answered 413 where the body is read
    return b"\x00" in body or b"\\u0000" in body or b"%00" in body


class RejectNulMiddleware:
    """400 for a request whose path, query string or JSON/form body holds a NUL character:
    no DICOM value or identifier contains one, and PostgreSQL text columns cannot store it
    (it would surface as a server error deep in a query)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        query = str(request.META.get("QUERY_STRING", ""))
        if (
            "\x00" in request.path
            or "%00" in query.lower()
            or "\x00" in query
            or any("\x00" in str(v) for k, v in request.META.items() if k.startswith("HTTP_"))
            or _form_or_json_holds_nul(request)
        ):
            return JsonResponse(
                {
                    "error": "The request holds a NUL character (%00 or \\u0000), which no "
                    "identifier, search value or field may contain.",
                    "status": 400,
                },
                status=400,
            )
        return self.get_response(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler400``: Django's refusals of oversized bodies become 413 with the limit;
    any other bad request is Django's 400 page."""
    if isinstance(exception, RequestDataTooBig):
        memory = memory_limit()
        return too_large(
            "The request's data (not counting uploaded files) is larger than this server's "
            f"limit of {_size(memory or 0)}; send less, or files as multipart/form-data.",
            memory,
        )
    if isinstance(exception, TooManyFilesSent):
        files = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return too_large(
            f"The upload has more than {files} files; send a ZIP archive of them, or "
            "several uploads."
        )
    if isinstance(exception, TooManyFieldsSent):
        fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return too_large(f"The request has more than {fields} fields.")
    return defaults.bad_request(request, exception or Exception())
