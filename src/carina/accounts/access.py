"""Who may see and do what, in which hospital: the questions every adapter asks about the
signed-in user (the permission matrix is in docs/accounts.md).

A system administrator (Django superuser) belongs to every hospital. Anyone else belongs to
the hospitals of their :class:`Membership` rows, with one role in each.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from carina.accounts.models import Membership, Role
from carina.tenancy.models import Hospital

#: The session key holding the slug of the hospital the user is working in.
SESSION_HOSPITAL = "carina_hospital"
#: The request header a program sends to choose one of its hospitals.
HOSPITAL_HEADER = "X-Carina-Hospital"

#: Roles that may store objects (upload, STOW-RS).
STORE_ROLES = frozenset({Role.HOSPITAL_ADMIN, Role.RADIOLOGIST, Role.TECHNOLOGIST})
#: Roles that may delete studies, series and instances.
DELETE_ROLES = frozenset({Role.HOSPITAL_ADMIN})


class HospitalChoiceError(LookupError):
    """The request names a hospital the user does not belong to (or none exists)."""


def hospitals_of(user: Any) -> QuerySet[Hospital]:
    """The hospitals ``user`` may work in (every hospital for a system administrator)."""
    if not getattr(user, "is_authenticated", False):
        return Hospital.objects.none()
    if user.is_superuser:
        return Hospital.objects.order_by("slug")
    return Hospital.objects.filter(memberships__user=user).order_by("slug").distinct()


def role_in(user: Any, hospital: Hospital) -> Role | None:
    """The user's role in ``hospital``; a system administrator is treated as its
    administrator; ``None`` when the user does not belong to it."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return Role.HOSPITAL_ADMIN
    role = (
        Membership.objects.filter(user=user, hospital=hospital)
        .values_list("role", flat=True)
        .first()
    )
    return Role(role) if role else None


def may_store(user: Any, hospital: Hospital) -> bool:
    return role_in(user, hospital) in STORE_ROLES


def may_delete(user: Any, hospital: Hospital) -> bool:
    return role_in(user, hospital) in DELETE_ROLES


def current_hospital(user: Any, *, requested: str | None, remembered: str | None) -> Hospital:
    """The hospital a request works in: the one it names (header), else the one remembered
    in the session (the hospital switcher), else the user's first hospital — the default
    hospital for a system administrator when it exists.

    Raises :class:`HospitalChoiceError` when the named hospital is not one of the user's, or
    the user belongs to no hospital.
    """
    allowed = hospitals_of(user)
    for slug in (requested, remembered):
        if slug:
            hospital = allowed.filter(slug=slug).first()
            if hospital is not None:
                return hospital
            if slug is requested:
                raise HospitalChoiceError(
                    f"You do not belong to a hospital called {slug!r}; "
                    f"yours: {', '.join(allowed.values_list('slug', flat=True)) or 'none'}."
                )
    hospital = allowed.filter(slug="default").first() if user.is_superuser else None
    hospital = hospital or allowed.first()
    if hospital is None:
        raise HospitalChoiceError(
            "Your account belongs to no hospital yet; ask an administrator to add you to one."
        )
    return hospital
