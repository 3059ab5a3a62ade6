"""Who may see and do what, in which hospital: the questions every adapter asks about the
signed-in user (the permission matrix is in docs/accounts.md).

A system administrator (Django superuser) belongs to every hospital. Anyone else belongs to
the hospitals of their :class:`Membership` rows, with one role in each.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.db.models import QuerySet

from carina.accounts.models import Membership, Role
from carina.tenancy.models import Hospital

#: The session key holding the slug of the hospital the user is working in.
SESSION_HOSPITAL = "carina_hospital"
#: The request header a program sends to choose one of its hospitals.
HOSPITAL_HEADER = "X-Carina-Hospital"


class Permission(StrEnum):
    """What a role may do in its hospital (the matrix is documented in docs/accounts.md)."""

    VIEW = "view"  # find studies, see metadata and images, open the viewer
    # DICOM files and ZIP archives to keep (download buttons, export). Not DICOMweb retrieve:
    # the viewer reads whole objects (SEG, SR) through WADO-RS, so that needs only VIEW.
    DOWNLOAD = "download"
    STORE = "store"  # upload, STOW-RS, import
    SEND = "send"  # transfers to DICOM nodes
    EDIT = "edit"  # change patient/study attributes
    DELETE = "delete"  # delete studies, series, instances
    MANAGE_NODES = "manage_nodes"  # the hospital's known DICOM nodes and routing rules
    MANAGE_USERS = "manage_users"  # the hospital's users and their roles
    VIEW_AUDIT = "view_audit"  # the hospital's whole audit trail (everyone sees their own)
    MANAGE_HOSPITALS = "manage_hospitals"  # hospitals and their AE titles: system admins only


_CLINICAL = {Permission.VIEW, Permission.DOWNLOAD, Permission.STORE, Permission.SEND}

#: The permission matrix: what each role may do in the hospitals it belongs to.
#: A system administrator (superuser) has every permission in every hospital.
MATRIX: dict[Role, frozenset[Permission]] = {
    Role.HOSPITAL_ADMIN: frozenset(set(Permission) - {Permission.MANAGE_HOSPITALS}),
    Role.RADIOLOGIST: frozenset(_CLINICAL),
    Role.TECHNOLOGIST: frozenset(_CLINICAL | {Permission.EDIT}),
    Role.PHYSICIAN: frozenset({Permission.VIEW}),
}


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


def has_permission(user: Any, hospital: Hospital, permission: Permission) -> bool:
    """Whether ``user`` may do ``permission`` in ``hospital`` (see :data:`MATRIX`)."""
    if getattr(user, "is_superuser", False) and getattr(user, "is_authenticated", False):
        return True
    role = role_in(user, hospital)
    return role is not None and permission in MATRIX[role]


def may_store(user: Any, hospital: Hospital) -> bool:
    return has_permission(user, hospital, Permission.STORE)


def may_delete(user: Any, hospital: Hospital) -> bool:
    return has_permission(user, hospital, Permission.DELETE)


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
