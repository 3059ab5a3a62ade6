"""Which audit events a user may read: the audit trail's own rule
(:mod:`carina.audit.visibility`, docs/audit.md "Who sees what"), the same for the REST API,
its CSV export and these pages. Everyone sees their own events; whoever may ``view_audit``
in the current hospital (its administrators) sees all of that hospital's events; a system
administrator sees every event."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest

from carina.audit import visibility
from carina.audit.models import AuditEvent
from carina.ui.access import tenant


def sees_whole_trail(request: HttpRequest) -> bool:
    return visibility.sees_hospital_trail(request.user, tenant(request))


def visible_events(request: HttpRequest) -> QuerySet[AuditEvent]:
    """The events the user may read while working in the current hospital, newest first."""
    return visibility.visible_events(request.user, tenant(request)).order_by("-occurred_at", "-id")


def scope(request: HttpRequest) -> str:
    """What the visible events cover, in words."""
    return visibility.scope_of(request.user, tenant(request))
