"""Transfers in the audit trail (docs/audit.md, docs/routing.md): one event when a transfer
ends (PS3.15 A.5.3.2, *DICOM Instances Transferred*: who, which study, to which
destination, how many instances, the outcome) and one when someone cancels it.

The audit app's ``Action`` choices have no routing entry yet: the action is recorded as the
plain value :data:`TRANSFER` (Django does not enforce choices when saving).
"""

from __future__ import annotations

from carina.audit.actions import do_record
from carina.audit.models import ActorKind, ObjectType, Outcome
from carina.routing.models import Level, Origin, Transfer, TransferStatus

#: The audit action of a transfer (to become ``Action.TRANSFER`` in carina.audit.models).
TRANSFER = "routing.transfer"

_OUTCOMES = {
    TransferStatus.SUCCEEDED: Outcome.SUCCESS,
    TransferStatus.PARTLY_FAILED: Outcome.PARTIAL,
}
_ACTORS = {Origin.USER: ActorKind.USER, Origin.CLI: ActorKind.CLI, Origin.RULE: ActorKind.SYSTEM}


def record_transfer(transfer: Transfer, note: str = "") -> None:
    """Record the transfer's outcome (call it in the transaction that ends it)."""
    where = transfer.destination_name
    if transfer.destination_ae:
        where += f" ({transfer.destination_ae})"
    detail = (
        f"transfer {transfer.pk} to {where}: {transfer.status}, {transfer.sent} of "
        f"{transfer.total} instance(s) sent, {transfer.failed} failed"
    )
    if transfer.last_error:
        detail += f"; {transfer.last_error}"
    if note:
        detail += f"; {note}"
    object_type = ObjectType.SERIES if transfer.level == Level.SERIES else ObjectType.STUDY
    do_record(
        hospital_id=transfer.hospital_id,
        actor=transfer.requested_by_name,
        actor_kind=_ACTORS.get(Origin(transfer.origin), ActorKind.SYSTEM),
        action=TRANSFER,
        object_type=object_type,
        object_uid=transfer.object_uid or transfer.study_instance_uid,
        patient_id=transfer.patient_id,
        destination_ae=transfer.destination_ae,
        outcome=_OUTCOMES.get(TransferStatus(transfer.status), Outcome.FAILURE),
        detail=detail,
        count=transfer.sent,
        correlation_id=transfer.correlation_id,
    )
