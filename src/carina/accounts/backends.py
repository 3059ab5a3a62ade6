"""The password check behind every ``authenticate()`` call: Django's model backend, refusing
locked accounts and counting failures towards the lock (docs/accounts.md, "Lock-out")."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from carina.accounts.actions import do_register_sign_in_failure
from carina.accounts.lockout import locked_until


def client_ip(request: HttpRequest | Any | None) -> str:
    """The caller's address (``REMOTE_ADDR``; Carina trusts no forwarding header)."""
    meta = getattr(request, "META", None) or {}
    return str(meta.get("REMOTE_ADDR", ""))


class LockoutModelBackend(ModelBackend):
    """Users and passwords of Django's user table. A locked name is refused before its
    password is checked; a wrong password (or an unknown name) counts one failure.

    The second factor is not checked here: every password path (sign-in page, token
    endpoint, HTTP Basic) asks for it through :mod:`carina.accounts.signin`.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        if locked_until(username) is not None:
            # Django's authenticate() stops here and sends user_login_failed.
            raise PermissionDenied("account locked")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            do_register_sign_in_failure(username, client_ip(request))
        return user
