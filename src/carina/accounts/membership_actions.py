"""State changes of a hospital's users and their roles (``do_*``), each atomic: the REST API
(``/api/users/``, ``/api/memberships/``) and later the UI call these.

A hospital never loses its last administrator through them: removing or demoting the only
active hospital administrator is refused, so that someone can still manage its users.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from carina.accounts.models import Membership, Role
from carina.tenancy.models import Hospital


class MembershipError(ValueError):
    """A change of users or roles that cannot be made, with the reason."""


def _role(role: str) -> Role:
    if role not in Role.values:
        raise MembershipError(f"Unknown role {role!r}; choose one of: {', '.join(Role.values)}.")
    return Role(role)


def _check_password(password: str, user: Any) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise MembershipError("Password refused: " + " ".join(exc.messages)) from None


def _keeps_an_administrator(membership: Membership) -> None:
    """Refuse when ``membership`` is its hospital's last active administrator (the rows are
    locked, so that two concurrent removals cannot both pass)."""
    if membership.role != Role.HOSPITAL_ADMIN:
        return
    others = (
        Membership.objects.select_for_update()
        .filter(hospital=membership.hospital, role=Role.HOSPITAL_ADMIN, user__is_active=True)
        .exclude(pk=membership.pk)
    )
    if not list(others.values_list("pk", flat=True)):
        raise MembershipError(
            f"{membership.user.get_username()} is the last administrator of "
            f"{membership.hospital.slug}; make someone else its administrator first."
        )


def do_create_member(
    hospital: Hospital,
    username: str,
    password: str,
    role: str,
    *,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> Membership:
    """Create the account ``username`` as a member of ``hospital`` with ``role``."""
    wanted = _role(role)
    user_model = get_user_model()
    username = username.strip()
    if not username:
        raise MembershipError("Give a user name.")
    user = user_model(username=username, email=email, first_name=first_name, last_name=last_name)
    _check_password(password, user)
    try:
        with transaction.atomic():
            if user_model.objects.filter(username=username).exists():
                raise MembershipError(
                    f"The user name {username!r} is taken; choose another, or add the existing "
                    "user to this hospital through /api/memberships/."
                )
            user.set_password(password)
            user.save()
            return Membership.objects.create(user=user, hospital=hospital, role=wanted)
    except IntegrityError:
        raise MembershipError(f"The user name {username!r} is taken; choose another.") from None


def do_add_member(hospital: Hospital, user: Any, role: str) -> Membership:
    """Make the existing ``user`` a member of ``hospital`` with ``role``."""
    wanted = _role(role)
    try:
        with transaction.atomic():
            if Membership.objects.filter(user=user, hospital=hospital).exists():
                raise MembershipError(
                    f"{user.get_username()} is already a member of {hospital.slug}; change the "
                    "role of that membership instead."
                )
            return Membership.objects.create(user=user, hospital=hospital, role=wanted)
    except IntegrityError:
        raise MembershipError(
            f"{user.get_username()} is already a member of {hospital.slug}."
        ) from None


def do_set_role(membership: Membership, role: str) -> Membership:
    """Give the member another role in the hospital."""
    wanted = _role(role)
    with transaction.atomic():
        if wanted != Role.HOSPITAL_ADMIN:
            _keeps_an_administrator(membership)
        if membership.role != wanted:
            membership.role = wanted
            membership.save(update_fields=["role"])
    return membership


def do_remove_member(membership: Membership) -> None:
    """Take the user out of the hospital (the account itself stays: its audit records name
    it, and it may belong to other hospitals)."""
    with transaction.atomic():
        _keeps_an_administrator(membership)
        membership.delete()


def do_update_user(
    user: Any,
    *,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    is_active: bool | None = None,
    password: str | None = None,
) -> Any:
    """Change an account's details; ``None`` keeps a value. Deactivating the last active
    administrator of a hospital is refused."""
    with transaction.atomic():
        if is_active is False and user.is_active:
            for membership in Membership.objects.filter(user=user, role=Role.HOSPITAL_ADMIN):
                _keeps_an_administrator(membership)
        changes = {
            "email": email,
            "first_name": first_name,
            "last_name": last_name,
            "is_active": is_active,
        }
        fields = [name for name, value in changes.items() if value is not None]
        for name in fields:
            setattr(user, name, changes[name])
        if password is not None:
            _check_password(password, user)
            user.set_password(password)
            fields.append("password")
        if fields:
            user.save(update_fields=fields)
    return user


__all__ = [
    "MembershipError",
    "do_add_member",
    "do_create_member",
    "do_remove_member",
    "do_set_role",
    "do_update_user",
]
