"""Recording audit events: the only way rows enter the audit trail (docs/audit.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models, transaction

from carina.audit.models import AuditEvent
from carina.audit.signals import events_recorded
from carina.core.request_id import current_request_id


def build(**fields: Any) -> AuditEvent:
    """An unsaved event, its text fields cut to their column sizes (a long detail or an odd
    AE title must never make recording fail). Without a ``correlation_id`` it takes the ID of
    the request, association or task being served (:mod:`carina.core.request_id`)."""
    if not fields.get("correlation_id"):
        fields["correlation_id"] = current_request_id()
    event = AuditEvent(**fields)
    for field in AuditEvent._meta.fields:
        if isinstance(field, models.CharField) and field.max_length:
            value = getattr(event, field.attname)
            if isinstance(value, str) and len(value) > field.max_length:
                setattr(event, field.attname, value[: field.max_length - 1] + "…")
    return event


def do_record(**fields: Any) -> AuditEvent:
    """Record one event (the fields of :class:`AuditEvent`)."""
    event = build(**fields)
    event.save()
    events_recorded.send_robust(sender=AuditEvent, events=[event])
    return event


def do_record_many(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """Record several events (built with :func:`build`) in one transaction, one INSERT."""
    rows = list(events)
    if not rows:
        return []
    with transaction.atomic():
        saved = AuditEvent.unscoped.bulk_create(rows)
    events_recorded.send_robust(sender=AuditEvent, events=saved)
    return saved
