"""Who is calling: the same-origin session cookie (the web application, OHIF) or a Bearer
token (programs: JWT access tokens from ``/api/auth/token/``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.exceptions import AuthenticationFailed  # type: ignore[import-untyped]
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken


class CredentialsError(Exception):
    """Credentials were sent but are not valid (expired or forged token)."""


def request_user(request: HttpRequest) -> Any | None:
    """The authenticated user of ``request``, or ``None`` when it carries no credentials.

    A Bearer token wins over the session cookie. Raises :class:`CredentialsError` for a
    token that does not verify, so that the caller can say why instead of "not signed in".
    """
    if request.headers.get("Authorization", "").startswith("Bearer "):
        try:
            found = JWTAuthentication().authenticate(request)
        except (InvalidToken, AuthenticationFailed) as exc:
            raise CredentialsError(
                "The Bearer token is not valid or has expired; get a new one from "
                "/api/auth/token/ (or /api/auth/token/refresh/)."
            ) from exc
        return found[0] if found else None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        return user
    return None
