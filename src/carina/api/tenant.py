"""The hospital an API request works in: ``request.tenant``.

DRF authenticates inside the view (Bearer token, session, …), after Django's middleware ran,
so the hospital is chosen by the views' common base (:class:`TenantMixin`), right after
authentication and before the permission checks: the hospital the ``X-Carina-Hospital``
header names, else the one remembered in the session (the UI's hospital switcher), else the
user's first hospital (:func:`carina.accounts.access.current_hospital`).
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import PermissionDenied  # type: ignore[import-untyped]
from rest_framework.request import Request  # type: ignore[import-untyped]

from carina.accounts.access import (
    HOSPITAL_HEADER,
    SESSION_HOSPITAL,
    HospitalChoiceError,
    current_hospital,
)
from carina.tenancy.models import Hospital


def resolve_tenant(request: Request) -> Hospital:
    """The hospital of an authenticated request (raises :class:`HospitalChoiceError`)."""
    session = getattr(request, "session", None)
    return current_hospital(
        request.user,
        requested=request.headers.get(HOSPITAL_HEADER),
        remembered=session.get(SESSION_HOSPITAL) if session is not None else None,
    )


class TenantMixin:
    """Sets ``request.tenant`` (``None`` when not signed in) before permissions are checked.

    A header naming a hospital the user does not belong to, or a user without any hospital,
    is answered 403 with the reason.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.perform_authentication(request)  # type: ignore[attr-defined]
        request.tenant = None
        user = request.user
        if user is not None and user.is_authenticated:
            try:
                request.tenant = resolve_tenant(request)
            except HospitalChoiceError as exc:
                raise PermissionDenied(str(exc)) from None
        # Middleware, logging and error pages see it on the Django request too.
        request._request.tenant = request.tenant
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
