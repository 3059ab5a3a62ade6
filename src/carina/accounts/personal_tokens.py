"""Personal API tokens: long-lived keys for scripts, sent as ``Authorization: Token <key>``
(or ``Bearer <key>``, or as the password of HTTP Basic). A key is ``carina_`` followed by
43 random URL-safe characters (256 bits); only its SHA-256 digest is stored. Making and
revoking them is in :mod:`carina.accounts.actions`."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.utils import timezone

from carina.accounts.errors import CredentialsError
from carina.accounts.models import PersonalToken

#: Every key starts with this, so that it is recognised (and found by secret scanners).
PREFIX = "carina_"
#: ``last_used_at`` is written at most this often per token (one write, not one per request).
LAST_USED_PRECISION = dt.timedelta(minutes=1)


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def is_key(value: str) -> bool:
    return value.startswith(PREFIX)


def digest(key: str) -> str:
    """SHA-256 of the key: a random 256-bit key needs no slow password hash."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """The start of the key shown in lists (``carina_AbCd1234``)."""
    return key[: len(PREFIX) + 8]


def user_for_personal_token(key: str) -> tuple[Any, PersonalToken]:
    """The user a personal token belongs to, and the token; :class:`CredentialsError` when it
    is unknown, revoked, expired, or its account is deactivated."""
    token = (
        PersonalToken.objects.select_related("user").filter(key_hash=digest(key.strip())).first()
    )
    if token is None:
        raise CredentialsError(
            "This personal token is not known here (mistyped, or deleted); make a new one at "
            "/api/auth/personal-tokens/.",
            code="token_not_valid",
        )
    now = timezone.now()
    if token.revoked_at is not None:
        raise CredentialsError(
            f"The personal token '{token.name}' ({token.prefix}…) was revoked on "
            f"{token.revoked_at:%Y-%m-%d}; make a new one at /api/auth/personal-tokens/.",
            code="token_revoked",
        )
    if token.expires_at is not None and token.expires_at <= now:
        raise CredentialsError(
            f"The personal token '{token.name}' ({token.prefix}…) expired on "
            f"{token.expires_at:%Y-%m-%d}; make a new one at /api/auth/personal-tokens/.",
            code="token_expired",
        )
    if not token.user.is_active:
        raise CredentialsError("This account is deactivated.", code="user_inactive")
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_PRECISION:
        # Bookkeeping, not a state change of the account: one UPDATE a minute at most.
        PersonalToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token
