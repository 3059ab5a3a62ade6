"""What every DICOMweb view shares: authentication, the caller's hospital, and turning
errors into JSON answers (never a redirect to a login page: OHIF and programs read
``/dicomweb`` with XHR/fetch and must see 401).

Views are decorated with :func:`dicomweb_view` and receive ``request.tenant`` (the hospital
whose archive they read) and ``request.carina_user``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from carina.accounts.access import (
    HOSPITAL_HEADER,
    SESSION_HOSPITAL,
    HospitalChoiceError,
    current_hospital,
)
from carina.accounts.authentication import CredentialsError, request_user, www_authenticate
from carina.archive.query.errors import QueryError
from carina.dicomweb.errors import DicomwebError, error_response

log = logging.getLogger(__name__)

View = Callable[..., HttpResponseBase]


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def dicomweb_view(methods: tuple[str, ...] = ("GET",)) -> Callable[[View], View]:
    """Decorate a DICOMweb view: only ``methods`` (405 otherwise, HEAD with GET), 401 JSON
    without valid credentials, the caller's hospital on ``request.tenant``, and JSON errors
    for :class:`DicomwebError` and :class:`QueryError` (400)."""
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in allowed:
                response = error_response(
                    405,
                    f"{request.method} is not supported here; use {', '.join(sorted(allowed))}.",
                )
                response["Allow"] = ", ".join(sorted(allowed))
                return response
            try:
                user = request_user(request)
            except CredentialsError as exc:
                return _unauthorized(str(exc))
            if user is None:
                return _unauthorized(
                    "Sign in first (session cookie) or send 'Authorization: Bearer <token>' "
                    "from /api/auth/token/."
                )
            session = getattr(request, "session", None)
            try:
                hospital = current_hospital(
                    user,
                    requested=request.headers.get(HOSPITAL_HEADER),
                    remembered=session.get(SESSION_HOSPITAL) if session is not None else None,
                )
            except HospitalChoiceError as exc:
                return error_response(403, str(exc))
            request.tenant = hospital  # type: ignore[attr-defined]
            request.carina_user = user  # type: ignore[attr-defined]
            try:
                return view(request, *args, **kwargs)
            except DicomwebError as exc:
                return error_response(exc.status, exc.message)
            except QueryError as exc:
                return error_response(exc.http_status, str(exc))

        # Programs and OHIF cannot send Django's CSRF token; state-changing views (STOW,
        # DELETE) check the Origin header themselves (see views.stow).
        return csrf_exempt(wrapper)

    return decorate


def _unauthorized(message: str) -> HttpResponseBase:
    response = error_response(401, message)
    response["WWW-Authenticate"] = www_authenticate()
    return response
