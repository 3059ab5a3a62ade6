"""The listener's event handlers: who may associate, C-ECHO and C-STORE.

Handlers only check the request and translate it; storing is the ingest pipeline's job
(:func:`carina.archive.ingest.ingest`), which returns only once the object is durable and
indexed. A handler never raises: every failure becomes a DIMSE status with an Error Comment.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, cast

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event, EventHandlerType

from carina.archive.ingest import IngestError, IngestResult, Origin, ingest
from carina.archive.models import Source
from carina.audit.models import Action
from carina.dimse.association import CarinaAssociation, Peer
from carina.dimse.auditing import record_rejection
from carina.dimse.conformance import (
    contexts_for_request,
)
from carina.dimse.models import Service
from carina.dimse.nodes import node_for_ae
from carina.dimse.part10 import part10_stream
from carina.tenancy.lookups import hospital_for_called_ae
from carina.tenancy.models import Hospital, UnknownCallingAEPolicy

logger = logging.getLogger(__name__)

# DIMSE statuses (PS3.7 Annex C, PS3.4 B.2.3). Ingest failures carry their own.
SUCCESS = 0x0000
#: Refused: Not Authorized (PS3.7 C.5.x general status): the node may not use the service.
NOT_AUTHORIZED = 0x0124
#: Refused: Out of Resources (PS3.4 B.2.3): also used for an unexpected internal error, so that
#: the sender keeps the object and may try again.
OUT_OF_RESOURCES = 0xA700
#: Error: Data Set does not match SOP Class (PS3.4 B.2.3).
SOP_CLASS_MISMATCH = 0xA900

# A-ASSOCIATE-RJ parameters (PS3.8 9.3.4, Table 9-21).
REJECTED_PERMANENT = 0x01
REJECTED_TRANSIENT = 0x02
SOURCE_SERVICE_USER = 0x01
NO_REASON_GIVEN = 0x01
CALLING_AE_NOT_RECOGNISED = 0x03
CALLED_AE_NOT_RECOGNISED = 0x07

_NOT_LO = re.compile(r"[\x00-\x1f\x7f\\]+")


def error_comment(text: str) -> str:
    """``text`` as an Error Comment (0000,0902): VR LO, at most 64 characters of the default
    repertoire, no backslash or control characters (PS3.5 6.2)."""
    clean = _NOT_LO.sub(" ", text.replace("\\", "/")).encode("ascii", "replace").decode()
    clean = clean.strip()
    return clean if len(clean) <= 64 else clean[:61].rstrip() + "..."


def failure(status: int, comment: str) -> Dataset:
    """A status data set for a handler's answer."""
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = error_comment(comment)
    return ds


# --- association acceptance -------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """Why an association request is refused (A-ASSOCIATE-RJ)."""

    result: int
    source: int
    diagnostic: int
    reason: str
    #: The hospital the called AE title picked, if any (for the audit trail).
    hospital: Hospital | None = None


def admit(called_ae: str, calling_ae: str, address: str) -> Peer | Rejection:
    """Decide on an association request from its AE titles (PS3.8 7.1.1.3, 7.1.1.4).

    The called AE title picks the hospital; the calling AE title is looked up among that
    hospital's nodes. An unknown calling AE title is accepted or rejected by the hospital's
    policy; a disabled node is rejected.
    """
    called_ae, calling_ae = called_ae.strip(), calling_ae.strip()
    hospital = hospital_for_called_ae(called_ae)
    if hospital is None:
        return Rejection(
            REJECTED_PERMANENT,
            SOURCE_SERVICE_USER,
            CALLED_AE_NOT_RECOGNISED,
            f"called AE title {called_ae!r} is not one Carina answers to",
        )
    node = node_for_ae(hospital, calling_ae)
    if node is None:
        if hospital.unknown_calling_ae_policy == UnknownCallingAEPolicy.ACCEPT:
            return Peer(hospital, called_ae, calling_ae, address, None)
        return Rejection(
            REJECTED_PERMANENT,
            SOURCE_SERVICE_USER,
            CALLING_AE_NOT_RECOGNISED,
            f"calling AE title {calling_ae!r} is not a known node of hospital "
            f"{hospital.slug!r}, whose policy rejects unknown callers",
            hospital,
        )
    if not node.enabled:
        return Rejection(
            REJECTED_PERMANENT,
            SOURCE_SERVICE_USER,
            CALLING_AE_NOT_RECOGNISED,
            f"node {node.name!r} ({calling_ae}) of hospital {hospital.slug!r} is disabled",
            hospital,
        )
    return Peer(hospital, called_ae, calling_ae, address, node)


def handle_requested(event: Event) -> None:
    """EVT_REQUESTED: admit the requestor or send an A-ASSOCIATE-RJ, before negotiation."""
    assoc = event.assoc
    request = assoc.requestor.primitive
    assert request is not None
    address = f"{assoc.requestor.address}:{assoc.requestor.port}"
    try:
        decision = admit(request.called_ae_title, request.calling_ae_title, address)
    except Exception:
        logger.exception("association request from %s could not be checked", address)
        decision = Rejection(
            REJECTED_TRANSIENT, SOURCE_SERVICE_USER, NO_REASON_GIVEN, "internal error"
        )
    if isinstance(decision, Rejection):
        logger.warning(
            "association from %s (%s → %s) rejected: %s",
            address,
            request.calling_ae_title.strip(),
            request.called_ae_title.strip(),
            decision.reason,
        )
        assoc.acse.send_reject(decision.result, decision.source, decision.diagnostic)
        # Wait until the rejection is sent and the connection closed, and stop the
        # association's reader (as pynetdicom does for its own rejections).
        assoc.kill()
        record_rejection(
            hospital=decision.hospital,
            called_ae=request.called_ae_title.strip(),
            calling_ae=request.calling_ae_title.strip(),
            address=address,
            reason=decision.reason,
        )
        return
    if isinstance(assoc, CarinaAssociation):
        assoc.peer = decision
    # SOP classes the requestor wants to receive (SCP role proposed): C-GET sub-operations.
    receives = [uid for uid, item in assoc.requestor.role_selection.items() if item.scp_role]
    assoc.acceptor.supported_contexts = contexts_for_request(
        request.presentation_context_definition_list, receives
    )
    logger.info("association from %s accepted", decision)


def handle_rejected(event: Event) -> None:
    """EVT_REJECTED: pynetdicom rejected an association that Carina admitted (the limit of
    simultaneous associations was reached, PS3.8 Table 9-21 *local-limit-exceeded*)."""
    assoc = event.assoc
    peer = peer_of(event)
    if peer is None:
        return
    if assoc.requestor.user_identity:
        reason = "user identity not verified"
    else:
        limit = assoc.ae.maximum_associations
        reason = f"the limit of {limit} simultaneous association(s) was reached"
    logger.warning("association from %s rejected: %s", peer, reason)
    if isinstance(assoc, CarinaAssociation):
        assoc.peer = None  # rejected: no association event at its end
    record_rejection(
        hospital=peer.hospital,
        called_ae=peer.called_ae,
        calling_ae=peer.calling_ae,
        address=peer.address,
        reason=reason,
    )


def handle_connection_closed(event: Event) -> None:
    """EVT_CONN_CLOSE: a connection that closes before its A-ASSOCIATE-RQ arrived (a port
    scan, garbage, a peer giving up) ends its association thread at once.

    pynetdicom would otherwise wait the whole ACSE timeout for the request, and such threads
    count against the association limit, so a burst of them would lock real peers out.
    Waking the waiting thread with "nothing received" makes it end as on a timeout.
    """
    assoc = event.assoc
    if assoc.is_acceptor and not assoc.is_established and assoc.requestor.primitive is None:
        queue: Any = assoc.dul.to_user_queue
        queue.put(None)


def peer_of(event: Event) -> Peer | None:
    """The admitted peer of the event's association."""
    return event.assoc.peer if isinstance(event.assoc, CarinaAssociation) else None


def _count(event: Event, result: IngestResult | None) -> None:
    """Count a C-STORE stored (``result``) or refused (None), in memory only (the audit
    events are written when the association ends)."""
    assoc = event.assoc
    if isinstance(assoc, CarinaAssociation):
        if result is not None:
            assoc.stored += 1
            assoc.transfers.add(Action.STORE, result.study_instance_uid, result.patient_id)
        else:
            assoc.refused += 1
            assoc.transfers.add(Action.STORE, "", "", ok=False)


# --- C-ECHO ---------------------------------------------------------------------------


def handle_echo(event: Event) -> int | Dataset:
    """EVT_C_ECHO: Verification (PS3.4 Annex A)."""
    peer = peer_of(event)
    if peer is None or not peer.may(Service.ECHO):
        calling = peer.calling_ae if peer else "?"
        return failure(NOT_AUTHORIZED, f"{calling} may not use C-ECHO here")
    if isinstance(event.assoc, CarinaAssociation):
        event.assoc.transfers.echoes += 1
    return SUCCESS


# --- C-STORE --------------------------------------------------------------------------


def handle_store(event: Event) -> int | Dataset:
    """EVT_C_STORE: Storage (PS3.4 Annex B). Success only after ingest returns."""
    peer = peer_of(event)
    request = cast(C_STORE, event.request)
    if peer is None or not peer.may(Service.STORE):
        _count(event, None)
        calling = peer.calling_ae if peer else "?"
        where = f" of hospital {peer.hospital.slug}" if peer else ""
        return failure(NOT_AUTHORIZED, f"{calling} may not store into this archive{where}")
    affected = str(request.AffectedSOPClassUID or "")
    context = event.context
    if affected != context.abstract_syntax:
        _count(event, None)
        logger.warning(
            "refused C-STORE from %s: Affected SOP Class %s sent on context %d, which was "
            "negotiated for %s",
            peer.calling_ae,
            affected,
            context.context_id,
            context.abstract_syntax,
        )
        return failure(
            SOP_CLASS_MISMATCH,
            f"wrong context: {context.context_id} is for {context.abstract_syntax}",
        )
    name = f"C-STORE from {peer.calling_ae}"
    try:
        with part10_stream(
            event.dataset_path,
            sop_class=affected,
            sop_instance=str(request.AffectedSOPInstanceUID or ""),
            transfer_syntax=context.transfer_syntax,
            source_ae=peer.calling_ae,
        ) as stream:
            result = ingest(
                stream,
                hospital=peer.hospital,
                origin=Origin(Source.DIMSE, peer.calling_ae),
                name=name,
                expected_sop_class_uid=affected,
            )
    except IngestError as err:
        _count(event, None)
        logger.warning("refused (0x%04X) %s", err.dimse_status, err.message)
        return failure(err.dimse_status, err.reason)
    except Exception:
        _count(event, None)
        logger.exception("%s failed unexpectedly", name)
        return failure(OUT_OF_RESOURCES, "internal error in Carina; see the listener log")
    _count(event, result)
    logger.debug("%s: %s %s", name, result.status, result.sop_instance_uid)
    return SUCCESS


#: The listener's event handlers (``evt_handlers`` of pynetdicom's server).
HANDLERS: list[EventHandlerType] = [
    (evt.EVT_REQUESTED, handle_requested),
    (evt.EVT_REJECTED, handle_rejected),
    (evt.EVT_CONN_CLOSE, handle_connection_closed),
    (evt.EVT_C_ECHO, handle_echo),
    (evt.EVT_C_STORE, handle_store),
]
