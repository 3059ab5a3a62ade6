"""The DIMSE side of the audit trail (docs/audit.md).

Following DICOM's own audit model (PS3.15 A.5.3.2 "DICOM Instances Transferred": one message per
study and association, not one per instance), the C-STORE and retrieve paths only count in
memory, per (action, study, patient, destination), on the association (:class:`Transfers`).
When the association ends, :func:`record_association` writes one ``dicom.association`` event
and one ``dicom.store`` / ``dicom.retrieve`` event per study, in one transaction. A C-FIND is
recorded when it ends (:func:`record_query`), a refused retrieve request when it is refused,
and a rejected association when it is rejected. Recording never breaks the DICOM service: a
failure to record is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from carina.audit.actions import build, do_record, do_record_many
from carina.audit.models import Action, ActorKind, AuditEvent, ObjectType, Outcome
from carina.tenancy.models import Hospital

if TYPE_CHECKING:
    from carina.dimse.association import CarinaAssociation, Peer

logger = logging.getLogger(__name__)

#: Query/Retrieve level → the object type of an event.
LEVEL_OBJECT_TYPES = {
    "PATIENT": ObjectType.PATIENT,
    "STUDY": ObjectType.STUDY,
    "SERIES": ObjectType.SERIES,
    "IMAGE": ObjectType.INSTANCE,
}


@dataclass
class Tally:
    succeeded: int = 0
    failed: int = 0


#: (action, Study Instance UID, Patient ID, destination AE)
TallyKey = tuple[str, str, str, str]


@dataclass
class Transfers:
    """What one association did, counted in memory until it ends."""

    tallies: dict[TallyKey, Tally] = field(default_factory=dict)
    echoes: int = 0
    queries: int = 0
    retrieve_failures: int = 0

    def add(
        self,
        action: str,
        study_uid: str,
        patient_id: str,
        destination_ae: str = "",
        ok: bool = True,
    ) -> None:
        """Count one instance stored or sent (``ok``), or one that failed."""
        key = (action, study_uid, patient_id, destination_ae)
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = Tally()
        if ok:
            tally.succeeded += 1
        else:
            tally.failed += 1
            if action == Action.RETRIEVE:
                self.retrieve_failures += 1


def source_ip(address: str) -> str:
    """The host part of ``host:port``."""
    return address.rsplit(":", 1)[0] if ":" in address else address


def outcome_of(succeeded: int, failed: int) -> Outcome:
    if failed == 0:
        return Outcome.SUCCESS
    return Outcome.PARTIAL if succeeded else Outcome.FAILURE


def _peer_fields(peer: Peer) -> dict[str, Any]:
    return {
        "hospital": peer.hospital,
        "actor": peer.calling_ae,
        "actor_kind": ActorKind.DICOM_NODE,
        "source_ip": source_ip(peer.address),
        "source_ae": peer.calling_ae,
    }


def association_events(assoc: CarinaAssociation, ending: str, seconds: float) -> list[AuditEvent]:
    """The events an ended association leaves: itself, then one per study and action."""
    peer = assoc.peer
    assert peer is not None
    transfers = assoc.transfers
    base = _peer_fields(peer)
    failures = assoc.refused + transfers.retrieve_failures
    successes = assoc.stored + assoc.sent + transfers.queries + transfers.echoes
    if ending == "released" and failures == 0:
        outcome = Outcome.SUCCESS
    elif successes:
        outcome = Outcome.PARTIAL
    elif failures or ending != "released":
        outcome = Outcome.FAILURE
    else:
        outcome = Outcome.SUCCESS
    who = f"node {peer.node.name}" if peer.node else "unknown node"
    events = [
        build(
            **base,
            action=Action.ASSOCIATION,
            outcome=outcome,
            count=assoc.stored + assoc.sent,
            detail=(
                f"{peer.calling_ae} ({who}) → {peer.called_ae}, {ending} after {seconds:.1f} s: "
                f"{assoc.stored} stored, {assoc.refused} refused, {assoc.sent} sent, "
                f"{transfers.retrieve_failures} failed to send, {transfers.queries} queries, "
                f"{transfers.echoes} echoes"
            ),
        )
    ]
    if transfers.echoes:
        events.append(
            build(**base, action=Action.ECHO, count=0, detail=f"{transfers.echoes} C-ECHO")
        )
    for (action, study_uid, patient_id, destination), tally in transfers.tallies.items():
        verb = "stored" if action == Action.STORE else f"sent to {destination}"
        events.append(
            build(
                **base,
                action=action,
                object_type=ObjectType.STUDY if study_uid else ObjectType.NONE,
                object_uid=study_uid,
                patient_id=patient_id,
                destination_ae=destination,
                outcome=outcome_of(tally.succeeded, tally.failed),
                count=tally.succeeded + tally.failed,
                detail=f"{tally.succeeded} instance(s) {verb}, {tally.failed} failed"
                + ("" if study_uid else " (study unknown: refused before it was read)"),
            )
        )
    return events


def record_association(assoc: CarinaAssociation, ending: str, seconds: float) -> None:
    """Write the events of an ended association, in one transaction."""
    try:
        do_record_many(association_events(assoc, ending, seconds))
    except Exception:
        logger.exception("the audit events of association %s could not be recorded", assoc.peer)


def record_rejection(
    *, hospital: Hospital | None, called_ae: str, calling_ae: str, address: str, reason: str
) -> None:
    """Record an association rejected (A-ASSOCIATE-RJ)."""
    try:
        do_record(
            hospital=hospital,
            actor=calling_ae,
            actor_kind=ActorKind.DICOM_NODE,
            action=Action.ASSOCIATION_REJECTED,
            source_ip=source_ip(address),
            source_ae=calling_ae,
            outcome=Outcome.FAILURE,
            detail=f"{calling_ae} → {called_ae}: {reason}",
        )
    except Exception:
        logger.exception("the rejection of %s → %s could not be recorded", calling_ae, called_ae)


def record_query(
    assoc: Any,
    peer: Peer | None,
    *,
    level: str,
    keys: str,
    matches: int,
    outcome: Outcome,
    detail: str,
    object_uid: str = "",
    patient_id: str = "",
) -> None:
    """Record one C-FIND request, when it ends."""
    if peer is None:
        return
    transfers: Transfers | None = getattr(assoc, "transfers", None)
    if transfers is not None:
        transfers.queries += 1
    try:
        do_record(
            **_peer_fields(peer),
            action=Action.QUERY,
            object_type=LEVEL_OBJECT_TYPES.get(level, ObjectType.NONE),
            object_uid=object_uid,
            patient_id=patient_id,
            outcome=outcome,
            count=matches,
            detail=f"{level or '?'} level; keys: {keys or '(none)'}; {matches} match(es); {detail}",
        )
    except Exception:
        logger.exception("the C-FIND from %s could not be recorded", peer.calling_ae)


def record_retrieve_refusal(peer: Peer | None, name: str, destination: str, comment: str) -> None:
    """Record a C-MOVE or C-GET refused before any sub-operation."""
    if peer is None:
        return
    try:
        do_record(
            **_peer_fields(peer),
            action=Action.RETRIEVE,
            destination_ae=destination,
            outcome=Outcome.FAILURE,
            detail=f"{name} refused: {comment}",
        )
    except Exception:
        logger.exception("the refused %s from %s could not be recorded", name, peer.calling_ae)
