"""State changes of accounts (``do_*``), each atomic."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from carina.accounts import personal_tokens, totp
from carina.accounts.errors import CredentialsError
from carina.accounts.jwt_tokens import SID_CLAIM, decode_signed, refresh_is_blacklisted
from carina.accounts.lockout import lock_key
from carina.accounts.models import (
    ApiSignIn,
    Membership,
    PersonalToken,
    Role,
    SignInLock,
    TOTPDevice,
)
from carina.tenancy.models import Hospital


class AccountError(ValueError):
    """An account change that cannot be made, with the reason."""


def do_create_admin(
    username: str, password: str, hospital: Hospital | None = None, role: str | None = None
) -> tuple[AbstractUser, bool]:
    """Create or update an administrator (idempotent); returns the user and whether it is new.

    Without a hospital: a system administrator (superuser, every hospital). With one: a member
    of that hospital with ``role`` (default: hospital administrator).
    """
    if role is not None and role not in Role.values:
        raise AccountError(f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}.")
    if role is not None and hospital is None:
        raise AccountError("--role needs --hospital: a role is held in one hospital.")
    user_model = get_user_model()
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(username=username)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise AccountError("Password refused: " + " ".join(exc.messages)) from None
        user.set_password(password)
        if hospital is None:
            user.is_superuser = True
            user.is_staff = True
        user.save()
        if hospital is not None:
            membership, _ = Membership.objects.get_or_create(
                user=user, hospital=hospital, defaults={"role": role or Role.HOSPITAL_ADMIN}
            )
            if role is not None and membership.role != role:
                membership.role = role
                membership.save(update_fields=["role"])
    return user, created


def do_set_password(user: Any, password: str) -> None:
    """Give ``user`` a new password after the password validators accept it (else
    :class:`AccountError` with their reasons). Every API sign-in of the user ends: its JWTs
    carry the old password's digest and are refused from now on."""
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise AccountError("Password refused: " + " ".join(exc.messages)) from None
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        _revoke_sign_ins(ApiSignIn.objects.filter(user=user), "password changed")


# --- lock-out ------------------------------------------------------------------------------


def _lockout_window() -> dt.timedelta:
    return dt.timedelta(minutes=settings.CARINA_LOCKOUT_MINUTES)


def do_register_sign_in_failure(username: str, source_ip: str = "") -> dt.datetime | None:
    """Count one failed password (or authenticator code) sign-in of ``username``.

    ``CARINA_LOCKOUT_FAILURES`` failures within ``CARINA_LOCKOUT_MINUTES`` of the first one
    lock the name for ``CARINA_LOCKOUT_MINUTES``. Returns the end of the lock when the name is
    locked now, else ``None``.
    """
    now = timezone.now()
    with transaction.atomic():
        lock, _ = SignInLock.objects.select_for_update().get_or_create(
            username=lock_key(username),
            defaults={"failures": 0, "first_failure_at": now, "last_failure_at": now},
        )
        locked = lock.locked_until is not None and lock.locked_until > now
        if not locked and lock.first_failure_at <= now - _lockout_window():
            lock.failures, lock.first_failure_at, lock.locked_until = 0, now, None
        lock.failures += 1
        lock.last_failure_at = now
        lock.last_failure_ip = source_ip[:64]
        if not locked and lock.failures >= settings.CARINA_LOCKOUT_FAILURES:
            lock.locked_until = now + _lockout_window()
        lock.save()
    return lock.locked_until if lock.locked_until and lock.locked_until > now else None


def do_clear_sign_in_failures(username: str) -> None:
    """Forget the failures of ``username`` after a complete, successful sign-in."""
    SignInLock.objects.filter(username=lock_key(username)).exclude(
        locked_until__gt=timezone.now()
    ).delete()


def do_unlock(username: str) -> bool:
    """Unlock ``username`` (an administrator's decision) and forget its failures; returns
    whether there was anything to forget."""
    deleted, _ = SignInLock.objects.filter(username=lock_key(username)).delete()
    return deleted > 0


# --- personal API tokens -------------------------------------------------------------------

#: The longest life of a personal token, and the default one.
PERSONAL_TOKEN_MAX_DAYS = 3650
PERSONAL_TOKEN_DEFAULT_DAYS = 365


def do_create_personal_token(
    user: Any, name: str, expires_in_days: int = PERSONAL_TOKEN_DEFAULT_DAYS
) -> tuple[PersonalToken, str]:
    """Make a personal API token for ``user``; returns the row and the key (shown once, only
    its digest is kept)."""
    name = name.strip()
    if not name:
        raise AccountError("Name the token (what it is for), e.g. 'nightly export'.")
    if len(name) > 100:
        raise AccountError("A token name has at most 100 characters.")
    if not 1 <= expires_in_days <= PERSONAL_TOKEN_MAX_DAYS:
        raise AccountError(
            f"expires_in_days must be between 1 and {PERSONAL_TOKEN_MAX_DAYS} "
            f"(default {PERSONAL_TOKEN_DEFAULT_DAYS})."
        )
    key = personal_tokens.new_key()
    token = PersonalToken.objects.create(
        user=user,
        name=name,
        prefix=personal_tokens.display_prefix(key),
        key_hash=personal_tokens.digest(key),
        expires_at=timezone.now() + dt.timedelta(days=expires_in_days),
    )
    return token, key


def do_revoke_personal_token(token: PersonalToken) -> None:
    """Revoke ``token``: it is refused from now on (the row stays, for the record)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


# --- authenticator app (TOTP) --------------------------------------------------------------


def do_start_totp(user: Any) -> TOTPDevice:
    """Begin setting up an authenticator app: a new secret, not yet guarding sign-in (it does
    once :func:`do_confirm_totp` saw a code from it). Refused while a confirmed one exists."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.confirmed:
            raise AccountError(
                "An authenticator app already guards this account; turn it off first "
                "(with a code from it) to set up another."
            )
        if device is None:
            device = TOTPDevice(user=user)
        device.secret = totp.new_secret()
        device.confirmed = False
        device.confirmed_at = None
        device.last_used_step = 0
        device.save()
    return device


def do_use_totp_code(device: TOTPDevice, code: str) -> bool:
    """Whether ``code`` is the device's current code, not used before; it is used up."""
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        step = totp.matching_step(locked.secret, code, after=locked.last_used_step)
        if step is None:
            return False
        locked.last_used_step = step
        locked.save(update_fields=["last_used_step"])
    device.last_used_step = step
    return True


def do_confirm_totp(user: Any, code: str) -> TOTPDevice:
    """Turn on the authenticator app being set up, given a code it shows."""
    device = TOTPDevice.objects.filter(user=user).first()
    if device is None:
        raise AccountError("Start the set-up first (POST /api/auth/totp/).")
    if device.confirmed:
        raise AccountError("The authenticator app is already turned on.")
    if not do_use_totp_code(device, code):
        raise AccountError(
            "That code does not match: check the phone's clock and type the code the app shows now."
        )
    device.confirmed = True
    device.confirmed_at = timezone.now()
    device.save(update_fields=["confirmed", "confirmed_at"])
    return device


def do_disable_totp(user: Any) -> bool:
    """Remove the user's authenticator app (the user, with a code, or an administrator when
    the phone is lost); returns whether there was one."""
    deleted, _ = TOTPDevice.objects.filter(user=user).delete()
    return deleted > 0


# --- JWT sign-ins (/api/auth/token/) -------------------------------------------------------


def do_issue_tokens(user: Any, *, source_ip: str = "", user_agent: str = "") -> dict[str, str]:
    """A new API sign-in of ``user``: a refresh and an access token that carry its id."""
    sign_in = ApiSignIn.objects.create(
        id=uuid.uuid4(), user=user, source_ip=source_ip[:64], user_agent=user_agent[:200]
    )
    refresh = RefreshToken.for_user(user)
    refresh[SID_CLAIM] = str(sign_in.id)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def do_refresh_tokens(raw_refresh: str) -> dict[str, str]:
    """Rotate a refresh token: a new access and refresh token; the given refresh token is
    refused from now on. A refresh token presented a second time means that someone else
    may hold a copy: its whole sign-in is revoked (RFC 9700 4.14.2, refresh token reuse)."""
    payload = decode_signed(raw_refresh, "refresh")
    sid = payload.get(SID_CLAIM)
    with transaction.atomic():
        sign_in = ApiSignIn.objects.select_for_update().filter(pk=sid).first() if sid else None
        if sign_in is None:
            raise CredentialsError(
                "This refresh token belongs to no sign-in; sign in again at /api/auth/token/.",
                code="token_not_valid",
            )
        if sign_in.revoked_at is not None:
            raise CredentialsError(
                f"This sign-in was ended ({sign_in.revoked_reason}); sign in again at "
                "/api/auth/token/.",
                code="token_revoked",
            )
        # A refusal that revokes the sign-in is raised after the commit: the revocation stays.
        refused: CredentialsError | None = None
        user = get_user_model().objects.filter(pk=sign_in.user_id, is_active=True).first()
        if user is None:
            raise CredentialsError("This account is deactivated.", code="user_inactive")
        if refresh_is_blacklisted(payload):
            _revoke_sign_ins(ApiSignIn.objects.filter(pk=sign_in.pk), "refresh token reused")
            refused = CredentialsError(
                "This refresh token was already used. As someone else may hold a copy, every "
                "token of this sign-in is now revoked; sign in again at /api/auth/token/.",
                code="token_reused",
            )
        elif api_settings.CHECK_REVOKE_TOKEN and payload.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            _revoke_sign_ins(ApiSignIn.objects.filter(pk=sign_in.pk), "password changed")
            refused = CredentialsError(
                "The password of this account was changed after the token was issued; sign "
                "in again at /api/auth/token/.",
                code="password_changed",
            )
        else:
            refresh = RefreshToken(raw_refresh, verify=False)  # type: ignore[arg-type]
            refresh.blacklist()
            refresh.set_jti()
            refresh.set_exp()
            refresh.set_iat()
            refresh.outstand()
            ApiSignIn.objects.filter(pk=sign_in.pk).update(last_refreshed_at=timezone.now())
    if refused is not None:
        raise refused
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def do_sign_out_tokens(raw_refresh: str) -> None:
    """End the API sign-in of ``raw_refresh``: the refresh token and every access token
    issued with it are refused from now on."""
    payload = decode_signed(raw_refresh, "refresh")
    with transaction.atomic():
        RefreshToken(raw_refresh, verify=False).blacklist()  # type: ignore[arg-type]
        sid = payload.get(SID_CLAIM)
        if sid:
            _revoke_sign_ins(ApiSignIn.objects.filter(pk=sid), "signed out")


def do_revoke_api_sign_in(sign_in: ApiSignIn, reason: str = "revoked by an administrator") -> None:
    """End one API sign-in (its refresh and access tokens are refused from now on)."""
    _revoke_sign_ins(ApiSignIn.objects.filter(pk=sign_in.pk), reason)


def _revoke_sign_ins(sign_ins: Any, reason: str) -> None:
    sign_ins.filter(revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason[:200]
    )
