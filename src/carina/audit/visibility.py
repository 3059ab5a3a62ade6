"""Whose audit events a person may read (docs/audit.md, "Who sees what"):

* everyone sees **their own** events — those with their user name as actor
  (``actor_kind=user``) in the hospital they work in, and those that belong to no hospital
  (their sign-ins, sign-outs and personal tokens);
* a role with the ``view_audit`` permission in the hospital (hospital administrators) sees
  **every event of that hospital**, whoever the actor (users, DICOM nodes, ``carina import``);
* a system administrator sees **every event**, of every hospital and of none.

The same rule serves the REST API (``/api/audit/``), its CSV export and the web UI.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from carina.accounts.access import Permission, has_permission
from carina.audit.models import ActorKind, AuditEvent
from carina.tenancy.models import Hospital


def sees_hospital_trail(user: Any, hospital: Hospital) -> bool:
    """Whether ``user`` reads every event of ``hospital`` (not only their own)."""
    return has_permission(user, hospital, Permission.VIEW_AUDIT)


def visible_events(user: Any, hospital: Hospital) -> QuerySet[AuditEvent]:
    """The events ``user`` may read while working in ``hospital``, newest first."""
    events = AuditEvent.objects.all_hospitals().select_related("hospital")
    if not getattr(user, "is_authenticated", False):
        return events.none()
    if user.is_superuser:
        return events
    own = Q(actor_kind=ActorKind.USER, actor=user.get_username()) & (
        Q(hospital=hospital) | Q(hospital__isnull=True)
    )
    if sees_hospital_trail(user, hospital):
        return events.filter(Q(hospital=hospital) | own)
    return events.filter(own)


def scope_of(user: Any, hospital: Hospital) -> str:
    """What :func:`visible_events` covers, in words (for pages and file names)."""
    if user.is_superuser:
        return "every hospital"
    if sees_hospital_trail(user, hospital):
        return f"hospital {hospital.slug}"
    return f"your own events ({user.get_username()})"
