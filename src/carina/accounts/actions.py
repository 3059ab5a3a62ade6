"""State changes of accounts (``do_*``), each atomic."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from carina.accounts.models import Membership, Role
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
