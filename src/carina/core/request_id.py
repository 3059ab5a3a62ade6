"""Correlation IDs: one identifier per HTTP request or DICOM association, carried through the
log lines and the audit events it causes (docs/audit.md, "Correlation ID").

* :class:`RequestIDMiddleware` accepts the caller's ``X-Request-ID`` header when it is a
  plausible identifier (1–64 characters of ``A–Z a–z 0–9 . _ -``), or makes a new one (a
  UUID), and returns it in the ``X-Request-ID`` header of every answer. A proxy or client
  that sends its own ID can then find the request in Carina's log and audit trail.
* The ID of the work in progress is kept in a context variable (:func:`current_request_id`),
  so code far from the request (the audit trail's ``do_record``, a log call) reads it
  without it being passed along. Other entry points set it themselves: the DICOM listener
  per association (:func:`bind`), a background task with the ID of the request that queued it.
* :class:`RequestIDFilter` puts it on every log record as ``request_id`` ("-" outside any
  request); the log format of ``settings.LOGGING`` shows it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import cast

from django.http import FileResponse, HttpRequest, HttpResponseBase, StreamingHttpResponse

#: The request and answer header.
HEADER = "X-Request-ID"
_META_KEY = "HTTP_X_REQUEST_ID"
#: What an ID sent by a client may look like; anything else is replaced by a new one (it
#: ends up in log lines and CSV files, so no spaces, quotes or control characters).
VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")

_current: ContextVar[str] = ContextVar("carina_request_id", default="")


def new_request_id() -> str:
    """A fresh ID (a random UUID, 36 characters)."""
    return str(uuid.uuid4())


def is_valid(value: str) -> bool:
    return VALID.fullmatch(value) is not None


def current_request_id() -> str:
    """The ID of the request, association or task being served ("" outside any)."""
    return _current.get()


@contextlib.contextmanager
def bind(request_id: str | None = None) -> Iterator[str]:
    """Make ``request_id`` (or a new ID) the current one for the ``with`` block."""
    value = request_id if request_id and is_valid(request_id) else new_request_id()
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


def _streamed(content: Iterable[bytes], request_id: str) -> Iterator[bytes]:
    """A streamed body, produced with ``request_id`` current (the WSGI server reads it after
    the middleware has returned)."""
    with bind(request_id):
        yield from content


class RequestIDMiddleware:
    """Accept or make the request's ID (``request.request_id``), keep it current while the
    request is served, and answer it in ``X-Request-ID``. Placed first in ``MIDDLEWARE`` so
    that every answer carries it, errors included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        with bind(request.META.get(_META_KEY, "")) as request_id:
            request.request_id = request_id  # type: ignore[attr-defined]
            response = self.get_response(request)
        if (
            isinstance(response, StreamingHttpResponse)
            and not isinstance(response, FileResponse)  # sent with sendfile when it can be
            and not response.is_async
        ):
            response.streaming_content = _streamed(
                cast(Iterable[bytes], response.streaming_content), request_id
            )
        response[HEADER] = request_id
        return response


class RequestIDFilter(logging.Filter):
    """Adds ``request_id`` (the current ID, or "-") to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get() or "-"
        return True


class RequestIDFormatter(logging.Formatter):
    """A formatter that may show ``%(request_id)s`` even on a handler without
    :class:`RequestIDFilter` (the current ID, or "-")."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = _current.get() or "-"
        return super().format(record)


__all__ = [
    "HEADER",
    "RequestIDFilter",
    "RequestIDFormatter",
    "RequestIDMiddleware",
    "bind",
    "current_request_id",
    "is_valid",
    "new_request_id",
]
