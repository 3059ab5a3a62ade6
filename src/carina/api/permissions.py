"""Who may call which API action: the role of the caller in ``request.tenant`` must grant
the action's :class:`~carina.accounts.access.Permission` (the matrix is in docs/accounts.md;
system administrators may do everything)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission  # type: ignore[import-untyped]
from rest_framework.request import Request  # type: ignore[import-untyped]

from carina.accounts.access import Permission, has_permission, role_in

#: What each permission lets a person do, for the refusal message.
WHAT = {
    Permission.VIEW: "see this hospital's archive",
    Permission.DOWNLOAD: "download DICOM files",
    Permission.STORE: "store (upload) objects",
    Permission.SEND: "send objects to DICOM nodes",
    Permission.EDIT: "change patient and study attributes",
    Permission.DELETE: "delete objects",
    Permission.MANAGE_NODES: "manage the hospital's DICOM nodes",
    Permission.MANAGE_USERS: "manage the hospital's users and roles",
    Permission.VIEW_AUDIT: "see the hospital's audit trail",
    Permission.MANAGE_HOSPITALS: "manage hospitals (system administrators only)",
}


class HospitalPermission(BasePermission):
    """Grants a request when the caller's role in its hospital has the permission the view
    asks for (``view.required_permission(request)``; ``None`` asks for none)."""

    message = "You may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        needed: Permission | None = view.required_permission(request)
        if needed is None:
            return True
        hospital = getattr(request, "tenant", None)
        if hospital is None:
            return False
        if has_permission(user, hospital, needed):
            return True
        role = role_in(user, hospital)
        self.message = (
            f"Your role in {hospital.slug} ({role.label if role else 'none'}) does not allow "
            f"you to {WHAT[needed]}; ask a hospital administrator."
        )
        return False
