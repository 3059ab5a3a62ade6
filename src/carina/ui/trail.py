"""Which audit events a user may read (docs/audit.md): everyone sees their own events in the
current hospital; whoever may ``view_audit`` there (hospital administrators, system
administrators) sees all of that hospital's events."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest

from carina.accounts.access import Permission
from carina.audit.models import ActorKind, AuditEvent
from carina.ui.access import can, tenant


def sees_whole_trail(request: HttpRequest) -> bool:
    return can(request, Permission.VIEW_AUDIT)


def visible_events(request: HttpRequest) -> QuerySet[AuditEvent]:
    """The current hospital's events the user may read, newest first."""
    events = AuditEvent.objects.for_hospital(tenant(request))
    if not sees_whole_trail(request):
        events = events.filter(actor=request.user.get_username(), actor_kind=ActorKind.USER)
    return events.order_by("-occurred_at", "-id")
