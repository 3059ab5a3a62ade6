"""Query/Retrieve: from a C-MOVE or C-GET identifier to the stored instances, and the
sub-operation loop both services share (PS3.4 C.4.2, C.4.3).

The identifier names what to retrieve (PS3.4 C.4.2.2.1, C.4.3.2.1, C.6.1, C.6.2): a Query/Retrieve
Level and the unique key of that level, with a list of UIDs allowed at the STUDY, SERIES and IMAGE
levels. Instances are selected among the calling hospital's own only, so another hospital's UIDs
match nothing. C-MOVE (:mod:`carina.dimse.move`) sends them over a new association to the move
destination; C-GET (:mod:`carina.dimse.get`) sends them back over the requesting association.
Either way, :func:`run_sub_operations` sends each instance, answers Pending after each
sub-operation, honours C-CANCEL and sends the final status.

Retrieval matches unique keys only (a UID, a list of UIDs, a PatientID): the identifier is
checked here, against the retrieve rules, and the matching itself is the shared query engine's
(:func:`carina.archive.query.matching.uid_list`, PS3.4 C.2.2.2.1–2).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, cast

from django.db.models import F
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID
from pynetdicom.dimse_primitives import C_GET, C_MOVE
from pynetdicom.dsutils import decode, encode
from pynetdicom.presentation import PresentationContext

from carina.archive.models import Instance
from carina.archive.query.matching import uid_list
from carina.audit.models import Action
from carina.dimse.association import CarinaAssociation, Peer
from carina.dimse.auditing import record_retrieve_refusal
from carina.dimse.conformance import (
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
)
from carina.dimse.handlers import error_comment
from carina.dimse.models import Service
from carina.dimse.sending import Outcome, Sender, StoredInstance, is_alive
from carina.tenancy.models import Hospital

logger = logging.getLogger(__name__)

PATIENT, STUDY, SERIES, IMAGE = "PATIENT", "STUDY", "SERIES", "IMAGE"
#: The levels of each model, top down (PS3.4 C.6.1.1.1, C.6.2.1.1).
LEVELS: dict[UID, tuple[str, ...]] = {
    PATIENT_ROOT_MOVE: (PATIENT, STUDY, SERIES, IMAGE),
    PATIENT_ROOT_GET: (PATIENT, STUDY, SERIES, IMAGE),
    STUDY_ROOT_MOVE: (STUDY, SERIES, IMAGE),
    STUDY_ROOT_GET: (STUDY, SERIES, IMAGE),
}
#: The unique key of each level (PS3.4 C.6.1.1.2–5, C.6.2.1.2–4).
UNIQUE_KEYS: dict[str, str] = {
    PATIENT: "PatientID",
    STUDY: "StudyInstanceUID",
    SERIES: "SeriesInstanceUID",
    IMAGE: "SOPInstanceUID",
}
#: The Instance column each unique key matches.
_COLUMNS: dict[str, str] = {
    PATIENT: "series__study__patient__patient_id",
    STUDY: "series__study__study_instance_uid",
    SERIES: "series__series_instance_uid",
    IMAGE: "sop_instance_uid",
}
#: Number of ... Sub-operations are VR US (PS3.7 E.1): one operation retrieves at most this many.
MAX_SUB_OPERATIONS = 65535

# C-MOVE and C-GET response statuses (PS3.4 C.4.2.1.5 Table C.4-2, C.4.3.1.4 Table C.4-3).
SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
#: Warning: Sub-operations Complete – One or more Failures or Warnings.
WARNING = 0xB000
#: Refused: Not Authorized (PS3.7 C.5.x): the calling node may not retrieve.
NOT_AUTHORIZED = 0x0124
#: Refused: Out of Resources – Unable to calculate number of matches.
UNABLE_TO_COUNT = 0xA701
#: Refused: Out of Resources – Unable to perform sub-operations.
UNABLE_TO_PERFORM = 0xA702
#: Refused: Move Destination unknown (C-MOVE only).
MOVE_DESTINATION_UNKNOWN = 0xA801
#: Error: Identifier does not match SOP Class.
IDENTIFIER_MISMATCH = 0xA900
#: Failed: Unable to process (0xC000–0xCFFF).
UNABLE_TO_PROCESS = 0xC000


class Refusal(Exception):  # noqa: N818 (a refusal, not an error)
    """The request is answered with a failure status before any sub-operation."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


# --- identifier -----------------------------------------------------------------------


@dataclass(frozen=True)
class RetrieveRequest:
    """What a retrieve identifier asks for: a level and, per level key given, its values."""

    level: str
    #: Level → the unique key values to match (a list of UIDs, or one PatientID).
    keys: dict[str, tuple[str, ...]]


def decode_identifier(request: C_MOVE | C_GET, context: PresentationContext) -> Dataset:
    """The request's identifier, decoded in the context's transfer syntax (raises Refusal)."""
    syntax = UID(context.transfer_syntax[0])
    try:
        return decode(
            cast(BytesIO, request.Identifier),
            syntax.is_implicit_VR,
            syntax.is_little_endian,
            syntax.is_deflated,
        )
    except Exception as exc:
        raise Refusal(UNABLE_TO_PROCESS, f"cannot decode the identifier: {exc}") from exc


def parse_identifier(ds: Dataset, model: UID) -> RetrieveRequest:
    """Check a retrieve identifier against its information model (PS3.4 C.4.2.2.1, C.4.3.2.1,
    C.6.1.2.2, C.6.2.2.2) and return what it asks for; raises :class:`Refusal` with
    0xA900 *Identifier does not match SOP Class* when it is malformed.

    * QueryRetrieveLevel is required and must be a level of the model (Study Root has no
      PATIENT level).
    * The unique key of that level is required, not empty: a list of UIDs at the STUDY, SERIES
      and IMAGE levels (values separated by backslash), one PatientID at the PATIENT level.
    * Unique keys of the levels above are optional (Carina does not require the hierarchical
      keys baseline SCUs send); when given, they narrow the selection.
    * A unique key of a level below the retrieve level is refused: it would say that less is
      wanted than the level retrieves. Other attributes are ignored.
    """
    levels = LEVELS[model]
    try:
        raw_level = ds.get("QueryRetrieveLevel", "")
        level = str(raw_level or "").strip().upper()
    except Exception as exc:
        raise Refusal(UNABLE_TO_PROCESS, f"cannot read QueryRetrieveLevel: {exc}") from exc
    if not level:
        raise Refusal(IDENTIFIER_MISMATCH, "QueryRetrieveLevel (0008,0052) is missing")
    if level not in levels:
        raise Refusal(
            IDENTIFIER_MISMATCH,
            f"QueryRetrieveLevel {level} is not in the {_model_name(model)} model",
        )
    keys: dict[str, tuple[str, ...]] = {}
    position = levels.index(level)
    for index, name in enumerate(levels):
        keyword = UNIQUE_KEYS[name]
        values = _values(ds, keyword)
        if index > position:
            if values:
                raise Refusal(IDENTIFIER_MISMATCH, f"{keyword} is below the {level} retrieve level")
            continue
        if not values:
            if index == position:
                raise Refusal(IDENTIFIER_MISMATCH, f"{keyword} is required at the {level} level")
            continue
        if name == PATIENT and len(values) > 1:
            raise Refusal(IDENTIFIER_MISMATCH, "PatientID must be a single value")
        keys[name] = values
    return RetrieveRequest(level, keys)


def _values(ds: Dataset, keyword: str) -> tuple[str, ...]:
    try:
        value = ds.get(keyword)
    except Exception as exc:
        raise Refusal(UNABLE_TO_PROCESS, f"cannot read {keyword}: {exc}") from exc
    if value is None or value == "":
        return ()
    items: Iterable[Any] = value if isinstance(value, MultiValue | list) else str(value).split("\\")
    cleaned = (str(item).strip(" \x00") for item in items)
    return tuple(dict.fromkeys(item for item in cleaned if item))


def _model_name(model: UID) -> str:
    return "Patient Root" if model in (PATIENT_ROOT_MOVE, PATIENT_ROOT_GET) else "Study Root"


# --- selection ------------------------------------------------------------------------


def select_instances(hospital: Hospital, request: RetrieveRequest) -> list[StoredInstance]:
    """The hospital's instances the request names, by study, series number, instance number."""
    queryset = Instance.objects.for_hospital(hospital)
    for level, values in request.keys.items():
        # PS3.4 C.2.2.2.1 Single Value Matching (PatientID), C.2.2.2.2 List of UID Matching.
        queryset = queryset.filter(uid_list(_COLUMNS[level], values))
    rows = queryset.order_by(
        "series__study_id",
        F("series__series_number").asc(nulls_last=True),
        "series_id",
        F("instance_number").asc(nulls_last=True),
        "id",
    ).values_list(
        "sop_class_uid",
        "sop_instance_uid",
        "transfer_syntax_uid",
        "blob_key",
        "rows",
        "series__study__study_instance_uid",
        "series__study__patient__patient_id",
    )
    return [StoredInstance(*row) for row in rows]


# --- the operation --------------------------------------------------------------------


@dataclass
class Counts:
    """Sub-operation counts (PS3.7 9.1.3, 9.1.4: Number of Remaining/Completed/Failed/Warning
    Sub-operations) and the SOP Instance UIDs that failed (PS3.4 C.4.2.1.6)."""

    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.remaining -= 1
        if outcome.category == Outcome.SUCCESS:
            self.completed += 1
        elif outcome.category == Outcome.WARNING:
            self.warning += 1
        else:
            self.failed += 1
            self.failed_uids.append(outcome.sop_instance_uid)

    def fail(self, instances: list[StoredInstance]) -> None:
        """Count ``instances`` (not sent) as failed sub-operations."""
        for instance in instances:
            self.remaining -= 1
            self.failed += 1
            self.failed_uids.append(instance.sop_instance_uid)


class Operation:
    """One C-MOVE or C-GET request being served: its responses on the requesting association."""

    def __init__(
        self, assoc: CarinaAssociation, request: C_MOVE | C_GET, context: PresentationContext
    ) -> None:
        self.assoc = assoc
        self.request = request
        self.context = context
        self.name = "C-MOVE" if isinstance(request, C_MOVE) else "C-GET"
        self.started = time.monotonic()
        #: Where the instances go (the audit trail's destination AE): the Move Destination,
        #: or the requestor itself for a C-GET.
        if isinstance(request, C_MOVE):
            self.destination = str(request.MoveDestination or "").strip()
        else:
            self.destination = assoc.peer.calling_ae if assoc.peer else ""

    def note(self, instance: StoredInstance, ok: bool) -> None:
        """Count one instance sent or failed for the audit trail (in memory)."""
        self.assoc.transfers.add(
            Action.RETRIEVE,
            instance.study_instance_uid,
            instance.patient_id,
            self.destination,
            ok=ok,
        )

    def note_failed(self, instances: list[StoredInstance]) -> None:
        for instance in instances:
            self.note(instance, ok=False)

    @property
    def peer(self) -> Peer | None:
        return self.assoc.peer

    def check_allowed(self) -> Peer:
        """The peer, if it may retrieve (raises Refusal 0x0124 otherwise)."""
        peer = self.peer
        if peer is None or not peer.may(Service.RETRIEVE):
            calling = peer.calling_ae if peer else "?"
            where = f" from hospital {peer.hospital.slug}" if peer else ""
            raise Refusal(NOT_AUTHORIZED, f"{calling} may not retrieve{where}")
        return peer

    def cancelled(self) -> bool:
        """Whether a C-CANCEL for this request arrived (PS3.7 9.3.2.3)."""
        message_id = int(self.request.MessageID or 0)
        return self.assoc.dimse.cancel_req.pop(message_id, None) is not None

    def respond(
        self,
        status: int,
        counts: Counts | None = None,
        *,
        comment: str = "",
        with_remaining: bool = False,
        failed_list: bool = False,
    ) -> None:
        """Send one C-MOVE-RSP or C-GET-RSP."""
        rsp = C_MOVE() if isinstance(self.request, C_MOVE) else C_GET()
        rsp.MessageIDBeingRespondedTo = self.request.MessageID
        rsp.AffectedSOPClassUID = self.request.AffectedSOPClassUID
        rsp.Status = status
        if comment:
            cast(Any, rsp).ErrorComment = error_comment(comment)  # typed None in pynetdicom
        if counts is not None:
            if with_remaining:
                rsp.NumberOfRemainingSuboperations = counts.remaining
            rsp.NumberOfCompletedSuboperations = counts.completed
            rsp.NumberOfFailedSuboperations = counts.failed
            rsp.NumberOfWarningSuboperations = counts.warning
            if failed_list:
                identifier = Dataset()
                identifier.FailedSOPInstanceUIDList = counts.failed_uids
                syntax = UID(self.context.transfer_syntax[0])
                encoded = encode(
                    identifier, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated
                )
                rsp.Identifier = BytesIO(cast(bytes, encoded))
        self.assoc.dimse.send_msg(rsp, cast(int, self.context.context_id))

    def refuse(self, refusal: Refusal) -> None:
        peer = self.peer
        logger.warning(
            "%s from %s refused (0x%04X): %s",
            self.name,
            peer.calling_ae if peer else "?",
            refusal.status,
            refusal.comment,
        )
        self.respond(refusal.status, comment=refusal.comment)
        record_retrieve_refusal(
            peer, self.name, self.destination, f"0x{refusal.status:04X} {refusal.comment}"
        )

    def fail_unexpectedly(self) -> None:
        """Answer 0xC000 *Unable to process* after an unexpected error (logged with its
        traceback), so that the requestor gets an answer and the association goes on."""
        peer = self.peer
        logger.exception("%s from %s failed", self.name, peer.calling_ae if peer else "?")
        self.respond(UNABLE_TO_PROCESS, comment="internal error in Carina; see the listener log")
        record_retrieve_refusal(peer, self.name, self.destination, "0xC000 internal error")

    def select(self, peer: Peer) -> list[StoredInstance]:
        """The instances the identifier names, of the peer's hospital (raises Refusal)."""
        identifier = decode_identifier(self.request, self.context)
        request = parse_identifier(identifier, UID(self.context.abstract_syntax or ""))
        try:
            instances = select_instances(peer.hospital, request)
        except Exception as exc:
            logger.exception("%s from %s: selecting instances failed", self.name, peer.calling_ae)
            raise Refusal(UNABLE_TO_COUNT, "cannot look the instances up; see the log") from exc
        if len(instances) > MAX_SUB_OPERATIONS:
            raise Refusal(
                UNABLE_TO_PERFORM,
                f"{len(instances)} instances match; at most {MAX_SUB_OPERATIONS} per request",
            )
        keys = ", ".join(
            f"{UNIQUE_KEYS[level]}={values[0]}" + (f" (+{len(values) - 1})" if values[1:] else "")
            for level, values in request.keys.items()
        )
        logger.info(
            "%s from %s: %s level, %s: %d instance(s)",
            self.name,
            peer,
            request.level,
            keys,
            len(instances),
        )
        return instances

    def finish(self, counts: Counts, cancelled: bool, reasons: list[str]) -> int:
        """Send the final response (see :func:`run_sub_operations`); return its status."""
        peer = self.peer
        calling = peer.calling_ae if peer else "?"
        if not is_alive(self.assoc):
            logger.warning(
                "%s from %s: the requesting association ended, %d sub-operation(s) not started",
                self.name,
                calling,
                counts.remaining,
            )
            return CANCEL
        if cancelled:
            status = CANCEL
            self.respond(status, counts, with_remaining=True, failed_list=True)
        elif counts.failed == 0 and counts.warning == 0:
            status = SUCCESS
            self.respond(status, counts)
        elif counts.completed == 0 and counts.warning == 0:
            status = UNABLE_TO_PERFORM
            self.respond(status, counts, failed_list=True, comment=_reason(reasons))
        else:
            status = WARNING
            self.respond(status, counts, failed_list=True)
        logger.info(
            "%s from %s: 0x%04X, %d completed, %d failed, %d warning, %d not started, %.1f s%s",
            self.name,
            calling,
            status,
            counts.completed,
            counts.failed,
            counts.warning,
            counts.remaining,
            time.monotonic() - self.started,
            f"; {_reason(reasons)}" if reasons else "",
        )
        return status


#: A group of instances, and the function that opens the way to the Storage SCP for it: it
#: returns a Sender, or the reason why there is none.
Batch = tuple[list[StoredInstance], Callable[[], Sender | str]]


def run_sub_operations(
    operation: Operation, instances: list[StoredInstance], batches: Iterable[Batch]
) -> int:
    """Send ``instances`` as C-STORE sub-operations and answer the request (PS3.4 C.4.2.3,
    C.4.3.3); return the final status.

    ``batches`` splits the instances into groups, each with the function that opens the way to
    the Storage SCP. Every instance of a group for which that fails is a failed sub-operation.
    After each sub-operation a Pending response (0xFF00) carries the counts. A C-CANCEL stops
    before the next sub-operation: Cancel (0xFE00) with the counts, the instances not sent as
    Remaining, and the Failed SOP Instance UID List. The final status (Tables C.4-2, C.4-3):

    * Success (0x0000): every sub-operation completed.
    * Warning (0xB000): some failed or had a warning; with the Failed SOP Instance UID List.
    * Refused (0xA702, *Out of Resources – Unable to perform sub-operations*): every
      sub-operation failed, for example because the move destination cannot be reached
      (C.4.2.3.1: "a sub-operation is considered Failed if the SCP is unable to negotiate an
      appropriate presentation context"); with the list and the first reason as Error Comment.

    If the requesting association ends, the remaining sub-operations are not started and no
    final response can be sent (C.4.2.3.1, note 2).
    """
    counts = Counts(remaining=len(instances))
    reasons: list[str] = []
    cancelled = False
    message_id = operation.request.MessageID or 0
    for group, open_sender in batches:
        if cancelled or not is_alive(operation.assoc):
            break
        sender = open_sender()
        if isinstance(sender, str):
            reasons.append(sender)
            counts.fail(group)
            operation.note_failed(group)
            operation.respond(PENDING, counts, with_remaining=True)
            continue
        try:
            for index, instance in enumerate(group):
                if operation.cancelled():
                    cancelled = True
                    break
                if not is_alive(operation.assoc):
                    break
                if not sender.usable:
                    reasons.append(sender.why_unusable)
                    counts.fail(group[index:])
                    operation.note_failed(group[index:])
                    operation.respond(PENDING, counts, with_remaining=True)
                    break
                message_id = message_id % 65535 + 1
                outcome = sender.send(instance, message_id)
                if outcome.reason:
                    reasons.append(outcome.reason)
                counts.add(outcome)
                if outcome.category != Outcome.FAILURE:
                    operation.assoc.sent += 1
                operation.note(instance, ok=outcome.category != Outcome.FAILURE)
                operation.respond(PENDING, counts, with_remaining=True)
        finally:
            sender.close()
    return operation.finish(counts, cancelled, reasons)


def _reason(reasons: list[str]) -> str:
    """The first reason, and how many others there were."""
    if not reasons:
        return ""
    others = len(reasons) - 1
    return reasons[0] + (f" (+{others} more)" if others else "")
