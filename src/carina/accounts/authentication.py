"""Who is calling: the credentials of an HTTP request, in the order Carina reads them
(docs/accounts.md, "Signing in"):

1. ``Authorization: Token carina_…`` or ``Bearer carina_…`` — a personal API token;
2. ``Authorization: Bearer <JWT>`` — an access token from ``/api/auth/token/``;
3. ``Authorization: Basic …`` — user name and password (or a personal token as the
   password), only when ``CARINA_HTTP_BASIC`` is on;
4. the session cookie of the sign-in page (the web application, OHIF on the same origin).

:func:`request_user` is what plain Django views (the DICOMweb adapter) call; the DRF classes
in :mod:`carina.accounts.drf` wrap the same functions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from carina.accounts import personal_tokens
from carina.accounts.actions import do_clear_sign_in_failures
from carina.accounts.errors import CredentialsError
from carina.accounts.jwt_tokens import user_for_access_token
from carina.accounts.lockout import locked_until
from carina.accounts.signin import check_password, report_failure, second_factor_of

__all__ = [
    "CredentialsError",
    "basic_user",
    "parse_authorization",
    "request_user",
    "www_authenticate",
]

#: How the caller authenticated (``request.carina_auth``, and ``/api/auth/me/``).
VIA_PERSONAL_TOKEN = "personal_token"
VIA_JWT = "jwt"
VIA_BASIC = "basic"
VIA_SESSION = "session"


def parse_authorization(request: HttpRequest | Any) -> tuple[str, str]:
    """The scheme (lower case) and credentials of the ``Authorization`` header; ``("", "")``
    when there is none."""
    header = str(request.META.get("HTTP_AUTHORIZATION", "")).strip()
    scheme, _, credentials = header.partition(" ")
    return scheme.lower(), credentials.strip()


def header_user(request: HttpRequest | Any) -> tuple[Any, Any, str] | None:
    """The user, the token object (or ``None``) and how they signed in, from the
    ``Authorization`` header; ``None`` without one; :class:`CredentialsError` when it does not
    verify."""
    scheme, credentials = parse_authorization(request)
    if not scheme:
        return None
    if scheme == "token" or (scheme == "bearer" and personal_tokens.is_key(credentials)):
        user, token = personal_tokens.user_for_personal_token(credentials)
        return user, token, VIA_PERSONAL_TOKEN
    if scheme == "bearer":
        if not credentials:
            raise CredentialsError("The Bearer token is missing after 'Bearer '.")
        user, access = user_for_access_token(credentials)
        return user, access, VIA_JWT
    if scheme == "basic":
        return basic_user(request, credentials), None, VIA_BASIC
    raise CredentialsError(
        f"Carina does not accept 'Authorization: {scheme.capitalize()} …'; send "
        "'Bearer <access token>', 'Token <personal token>' or (where turned on) 'Basic'.",
        code="unsupported_scheme",
    )


def www_authenticate() -> str:
    """The ``WWW-Authenticate`` challenge of a 401 (RFC 9110 11.6.1): Bearer, and Basic too
    when it is turned on (tools that send Basic only when challenged need to see it)."""
    bearer = 'Bearer realm="carina"'
    return f'{bearer}, Basic realm="carina"' if settings.CARINA_HTTP_BASIC else bearer


def request_user(request: HttpRequest) -> Any | None:
    """The authenticated user of ``request``, or ``None`` when it carries no credentials.

    The ``Authorization`` header wins over the session cookie. Raises
    :class:`CredentialsError` for credentials that do not verify, so that the caller can say
    why instead of "not signed in". Sets ``request.carina_auth`` to how the user signed in.
    """
    found = header_user(request)
    if found is not None:
        user, _, via = found
        request.carina_auth = via  # type: ignore[attr-defined]
        return user
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        request.carina_auth = VIA_SESSION  # type: ignore[attr-defined]
        return user
    return None


# --- HTTP Basic ----------------------------------------------------------------------------

#: A verified Basic password is remembered this long (seconds), so that a DICOM tool sending
#: it with every request does not pay the deliberate cost of the password hash each time.
BASIC_CACHE_SECONDS = 60
_BASIC_CACHE_SIZE = 1024
_basic_cache: dict[str, tuple[float, int, str]] = {}
_basic_cache_lock = threading.Lock()


def _cache_key(username: str, password: str) -> str:
    secret = settings.SECRET_KEY.encode()
    return hmac.new(secret, f"{username}\0{password}".encode(), hashlib.sha256).hexdigest()


def _cached_basic_user(key: str) -> Any | None:
    with _basic_cache_lock:
        entry = _basic_cache.get(key)
    if entry is None or entry[0] < time.monotonic():
        return None
    _, pk, password_hash = entry
    user = get_user_model().objects.filter(pk=pk, is_active=True).first()
    # A changed password, a lock or a new authenticator app ends the shortcut.
    if user is None or user.password != password_hash:
        return None
    if locked_until(user.get_username()) is not None or second_factor_of(user) is not None:
        return None
    return user


def basic_user(request: HttpRequest | Any, credentials: str) -> Any:
    """The user of HTTP Basic ``credentials`` (RFC 7617): a user name and either a password
    (lock-out applies; refused for accounts with an authenticator app, whose code Basic cannot
    carry) or one of the user's personal tokens. :class:`CredentialsError` when HTTP Basic is
    turned off (``CARINA_HTTP_BASIC``) or the credentials do not verify."""
    if not settings.CARINA_HTTP_BASIC:
        raise CredentialsError(
            "HTTP Basic sign-in is turned off on this server (CARINA_HTTP_BASIC). Send "
            "'Authorization: Token <personal token>' or 'Bearer <access token>' instead.",
            code="basic_disabled",
        )
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    username, colon, password = decoded.partition(":")
    if not colon or not username:
        raise CredentialsError(
            "The Basic credentials are not base64 of 'username:password'.", code="bad_header"
        )
    if personal_tokens.is_key(password):
        user, _ = personal_tokens.user_for_personal_token(password)
        if user.get_username() != username:
            raise CredentialsError(
                "This personal token belongs to another user name.", code="token_not_valid"
            )
        return user
    key = _cache_key(username, password)
    user = _cached_basic_user(key)
    if user is not None:
        return user
    user = check_password(request, username, password)
    if second_factor_of(user) is not None:
        report_failure(request, username, "HTTP Basic cannot carry the authenticator code")
        raise CredentialsError(
            "This account uses an authenticator app, whose code HTTP Basic cannot carry: use "
            "one of your personal tokens (/api/auth/personal-tokens/) as the password.",
            code="otp_required",
        )
    do_clear_sign_in_failures(username)
    with _basic_cache_lock:
        if len(_basic_cache) >= _BASIC_CACHE_SIZE:
            _basic_cache.clear()
        _basic_cache[key] = (time.monotonic() + BASIC_CACHE_SECONDS, user.pk, user.password)
    return user
