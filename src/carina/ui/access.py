"""Who may open which page: every UI view is wrapped in :func:`page`, which signs the visitor
in (redirect to the sign-in page), picks the hospital they work in (the hospital switcher's
choice kept in the session, else their first hospital) and checks that their role there grants
the page's :class:`~carina.accounts.access.Permission` (the matrix is in docs/accounts.md).

Objects are always looked up through ``Model.objects.for_hospital(request.tenant)``, so
another hospital's study is answered 404, exactly like a study that does not exist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase, HttpResponseNotAllowed
from django.shortcuts import render

from carina.accounts.access import (
    MATRIX,
    SESSION_HOSPITAL,
    HospitalChoiceError,
    Permission,
    current_hospital,
    role_in,
)
from carina.accounts.models import Role
from carina.tenancy.models import Hospital

View = Callable[..., HttpResponseBase]

#: What each permission lets a person do, for the refusal page.
WHAT = {
    Permission.VIEW: "see this hospital's archive",
    Permission.DOWNLOAD: "download DICOM files",
    Permission.STORE: "upload DICOM files",
    Permission.SEND: "send studies to DICOM nodes",
    Permission.EDIT: "change patient and study attributes",
    Permission.DELETE: "delete studies",
    Permission.MANAGE_NODES: "manage the hospital's DICOM nodes and policies",
    Permission.MANAGE_USERS: "manage the hospital's users and roles",
    Permission.VIEW_AUDIT: "see the hospital's whole audit trail",
    Permission.MANAGE_HOSPITALS: "manage hospitals (system administrators only)",
}


def permissions_of(user: Any, role: Role | None) -> frozenset[Permission]:
    """Everything ``user`` may do where their role is ``role`` (all for a system
    administrator)."""
    if getattr(user, "is_superuser", False):
        return frozenset(Permission)
    return MATRIX[role] if role is not None else frozenset()


def tenant(request: HttpRequest) -> Hospital:
    """The hospital the signed-in user works in (set by :func:`page`)."""
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    return hospital


def signed_in(request: HttpRequest) -> User:
    """The signed-in user of a request :func:`page` let through."""
    return cast(User, request.user)


def can(request: HttpRequest, permission: Permission) -> bool:
    """Whether the signed-in user may do ``permission`` in the current hospital."""
    return permission in getattr(request, "carina_can", frozenset())


def require(request: HttpRequest, permission: Permission) -> None:
    """Refuse (403 page with the reason) unless the user may do ``permission`` here."""
    if not can(request, permission):
        role: Role | None = getattr(request, "carina_role", None)
        hospital = tenant(request)
        raise PermissionDenied(
            f"Your role in {hospital.name} ({role.label if role else 'none'}) does not allow you "
            f"to {WHAT[permission]}; ask a hospital administrator."
        )


def attach_tenant(request: HttpRequest) -> Hospital:
    """Choose the request's hospital and the user's permissions there (raises
    :class:`HospitalChoiceError`)."""
    session = getattr(request, "session", None)
    hospital = current_hospital(
        request.user,
        requested=None,
        remembered=session.get(SESSION_HOSPITAL) if session is not None else None,
    )
    role = role_in(request.user, hospital)
    request.tenant = hospital  # type: ignore[attr-defined]
    request.carina_role = role  # type: ignore[attr-defined]
    request.carina_can = permissions_of(request.user, role)  # type: ignore[attr-defined]
    return hospital


def page(
    permission: Permission | None = Permission.VIEW,
    methods: tuple[str, ...] = ("GET", "HEAD"),
) -> Callable[[View], View]:
    """Decorate a UI view: signed-in users only, ``request.tenant`` set, ``permission``
    required there (``None``: any member), only ``methods``."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                return HttpResponseNotAllowed(methods)
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            try:
                attach_tenant(request)
            except HospitalChoiceError as exc:
                return render(request, "ui/no_hospital.html", {"reason": str(exc)}, status=403)
            if permission is not None:
                require(request, permission)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


__all__ = [
    "WHAT",
    "attach_tenant",
    "can",
    "page",
    "permissions_of",
    "require",
    "signed_in",
    "tenant",
]
