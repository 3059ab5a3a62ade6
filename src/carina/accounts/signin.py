"""Signing in with a password, the same on every path (the sign-in page, ``POST
/api/auth/token/``, HTTP Basic): the lock-out, the password, then the authenticator code for
accounts that have one (docs/accounts.md).

Failures are announced with Django's ``user_login_failed`` signal (with a ``reason``) and
successes with ``user_logged_in``; the audit trail listens to both (carina.audit.receivers).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, user_logged_in, user_login_failed
from django.http import HttpRequest

from carina.accounts.actions import (
    do_clear_sign_in_failures,
    do_register_sign_in_failure,
    do_use_totp_code,
)
from carina.accounts.backends import client_ip
from carina.accounts.errors import (
    AccountLockedError,
    SecondFactorRequiredError,
    WrongCredentialsError,
    WrongSecondFactorError,
)
from carina.accounts.lockout import locked_until
from carina.accounts.models import TOTPDevice


def report_failure(request: HttpRequest | Any | None, username: str, reason: str) -> None:
    """Announce a failed sign-in that Django's ``authenticate()`` did not announce itself."""
    user_login_failed.send(
        sender=__name__, credentials={"username": username}, request=request, reason=reason
    )


def report_success(request: HttpRequest | Any, user: Any) -> None:
    """Announce a sign-in that did not go through ``django.contrib.auth.login()`` (tokens)."""
    user_logged_in.send(sender=user.__class__, request=request, user=user)


def second_factor_of(user: Any) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def check_password(request: HttpRequest | Any | None, username: str, password: str) -> Any:
    """The active user whose name and password these are; raises :class:`AccountLockedError` or
    :class:`WrongCredentialsError`. The second factor is still to be checked."""
    until = locked_until(username)
    if until is not None:
        report_failure(request, username, "account locked")
        raise AccountLockedError(until)
    user = authenticate(request, username=username, password=password)
    if user is None:  # counted by the backend; announced by authenticate()
        until = locked_until(username)
        if until is not None:
            raise AccountLockedError(until)
        raise WrongCredentialsError
    return user


def check_second_factor(request: HttpRequest | Any | None, user: Any, otp: str | None) -> None:
    """Accept ``otp`` as the user's authenticator code when the user has an authenticator
    app; raises :class:`SecondFactorRequiredError`, :class:`WrongSecondFactorError` (a failure that
    counts towards the lock) or :class:`AccountLockedError`."""
    device = second_factor_of(user)
    if device is None:
        return
    username = user.get_username()
    until = locked_until(username)  # locked while the code was being typed
    if until is not None:
        report_failure(request, username, "account locked")
        raise AccountLockedError(until)
    if not otp:
        report_failure(request, username, "authenticator code missing")
        raise SecondFactorRequiredError
    if not do_use_totp_code(device, otp):
        until = do_register_sign_in_failure(username, client_ip(request))
        report_failure(request, username, "wrong authenticator code")
        if until is not None:
            raise AccountLockedError(until)
        raise WrongSecondFactorError


def sign_in(request: HttpRequest | Any, username: str, password: str, otp: str | None) -> Any:
    """Both factors at once (the token endpoint): the user, or a :class:`CredentialsError`
    subclass. The failures of the name are forgotten on success."""
    user = check_password(request, username, password)
    check_second_factor(request, user, otp)
    do_clear_sign_in_failures(username)
    return user
