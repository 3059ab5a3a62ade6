"""What every page's frame needs: the hospital switcher (the user's hospitals and the current
one), the user's role and permissions there (menus show only what the user may do), and the
version."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

import carina
from carina.accounts.access import HospitalChoiceError, hospitals_of
from carina.ui.access import attach_tenant

#: The main menu entry of each UI page (``aria-current``), and the administration page.
SECTIONS = {
    "worklist": "worklist",
    "study": "worklist",
    "tags": "worklist",
    "study-history": "worklist",
    "study-delete": "worklist",
    "study-send": "worklist",
    "dashboard": "dashboard",
    "upload": "upload",
    "upload-status": "upload",
    "audit": "audit",
    "transfers": "transfers",
}
MANAGE = {
    "nodes": "nodes",
    "node-add": "nodes",
    "node-edit": "nodes",
    "node-delete": "nodes",
    "users": "users",
    "user-add": "users",
    "user-edit": "users",
    "user-remove": "users",
    "policies": "policies",
    "hospitals": "hospitals",
    "hospital-add": "hospitals",
    "hospital-edit": "hospitals",
    "status": "status",
}


def ui(request: HttpRequest) -> dict[str, Any]:
    """Template context of the UI's frame (``settings.TEMPLATES`` context processor)."""
    context: dict[str, Any] = {"carina_version": carina.__version__}
    match = getattr(request, "resolver_match", None)
    if match is not None and match.namespace == "ui":
        name = match.url_name or ""
        context["section"] = "manage" if name in MANAGE else SECTIONS.get(name, "")
        context["manage"] = MANAGE.get(name, "")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return context
    hospital = getattr(request, "tenant", None)
    if hospital is None or not hasattr(request, "carina_can"):
        # Pages outside the UI's views (sign-in, error pages): the same choice, quietly.
        try:
            hospital = attach_tenant(request)
        except HospitalChoiceError:
            hospital = None
    role = getattr(request, "carina_role", None)
    context.update(
        current_hospital=hospital,
        user_hospitals=list(hospitals_of(user).only("slug", "name")),
        can={p.value for p in getattr(request, "carina_can", frozenset())},
        current_role=role.label if role is not None else "",
    )
    if user.is_superuser:
        context["current_role"] = "System administrator"
    return context
