"""Sign-ins, sign-outs and personal tokens in the audit trail (connected in
:class:`~carina.audit.apps.AuditConfig`):

* Django's ``user_logged_in`` and ``user_login_failed`` signals, sent by every sign-in path
  (the sign-in page, ``/api/auth/token/``, HTTP Basic; carina.accounts.signin), become
  ``login`` and ``login_failed`` events with the caller's address (the User Authentication
  message of PS3.15 A.5.3, event DCM 110114); ``user_logged_out`` (the web application's
  sign-out, and ``/api/auth/logout/`` with a refresh token) becomes ``logout``;
* a personal API token saved for the first time is ``token.created``, its revocation
  (``do_revoke_personal_token``) ``token.revoked``; the actor is the token's owner.

These events belong to no hospital: their user sees them (as their own) and system
administrators do; in code they are read with ``all_hospitals()``.
"""

from __future__ import annotations

from typing import Any

from carina.accounts.backends import client_ip
from carina.accounts.lockout import locked_until
from carina.accounts.models import PersonalToken, TOTPDevice
from carina.audit.actions import do_record
from carina.audit.models import Action, ActorKind, Outcome


def _where(request: Any) -> str:
    path = getattr(request, "path", "")
    return f" at {path}" if path else ""


def record_sign_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    if user is None:
        return
    factors = (
        "password and authenticator code"
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        else "password"
    )
    do_record(
        action=Action.LOGIN,
        actor=user.get_username(),
        actor_kind=ActorKind.USER,
        source_ip=client_ip(request),
        outcome=Outcome.SUCCESS,
        detail=f"Signed in with {factors}{_where(request)}.",
    )


def record_failed_sign_in(
    sender: Any,
    credentials: dict[str, Any] | None = None,
    request: Any = None,
    reason: str = "",
    **kwargs: Any,
) -> None:
    username = str((credentials or {}).get("username", ""))
    detail = reason or "wrong user name or password"
    until = locked_until(username) if username else None
    if until is not None and reason != "account locked":
        detail += f"; the account is now locked until {until:%Y-%m-%d %H:%M:%S} UTC"
    elif until is not None:
        detail += f" until {until:%Y-%m-%d %H:%M:%S} UTC"
    do_record(
        action=Action.LOGIN_FAILED,
        actor=username,
        actor_kind=ActorKind.USER,
        source_ip=client_ip(request),
        outcome=Outcome.FAILURE,
        detail=f"Sign-in refused{_where(request)}: {detail}.",
    )


def record_sign_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    if user is None:  # logout() of a visitor who was not signed in
        return
    do_record(
        action=Action.LOGOUT,
        actor=user.get_username(),
        actor_kind=ActorKind.USER,
        source_ip=client_ip(request),
        outcome=Outcome.SUCCESS,
        detail=f"Signed out{_where(request)}.",
    )


def record_personal_token(
    sender: Any,
    instance: PersonalToken,
    created: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    owner = instance.user.get_username()
    label = f"personal API token '{instance.name}' ({instance.prefix}…) of {owner}"
    if created:
        expires = f", valid until {instance.expires_at:%Y-%m-%d}" if instance.expires_at else ""
        action, detail = Action.TOKEN_CREATED, f"Created the {label}{expires}."
    elif instance.revoked_at is not None and update_fields and "revoked_at" in update_fields:
        action, detail = Action.TOKEN_REVOKED, f"Revoked the {label}."
    else:
        return
    do_record(
        action=action,
        actor=owner,
        actor_kind=ActorKind.USER,
        outcome=Outcome.SUCCESS,
        detail=detail,
    )
