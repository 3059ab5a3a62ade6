"""Signals of the audit trail; other domain apps connect to them (ops counts DICOM
associations from them: carina.ops.metrics)."""

from django.dispatch import Signal

#: Sent after events were written (by ``do_record`` or ``do_record_many``).
#: Argument: ``events``, the list of saved :class:`~carina.audit.models.AuditEvent`.
events_recorded = Signal()
