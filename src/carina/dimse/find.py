"""C-FIND SCP: Query/Retrieve – FIND, Patient Root and Study Root information models
(PS3.4 C.4.1, C.6.1, C.6.2), on the shared query engine (:mod:`carina.archive.query`).

The handler only checks who asks and translates: the identifier becomes a
:class:`~carina.archive.query.QuerySpec`, each match a Pending response. It never raises;
every failure is a status with an Error Comment (docs/dimse.md, "C-FIND").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pynetdicom import evt
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.events import Event, EventHandlerType

from carina.archive.query import (
    InformationModel,
    QueryError,
    UndecodableIdentifierError,
    run,
    spec_from_identifier,
    to_dataset,
)
from carina.audit.models import Outcome
from carina.dimse.auditing import record_query
from carina.dimse.conformance import PATIENT_ROOT_FIND, STUDY_ROOT_FIND
from carina.dimse.handlers import (
    NOT_AUTHORIZED,
    OUT_OF_RESOURCES,
    SOP_CLASS_MISMATCH,
    failure,
    peer_of,
)
from carina.dimse.models import Service

logger = logging.getLogger(__name__)

#: The information model of each FIND SOP class Carina accepts.
FIND_MODELS: dict[str, InformationModel] = {
    PATIENT_ROOT_FIND: InformationModel.PATIENT_ROOT,
    STUDY_ROOT_FIND: InformationModel.STUDY_ROOT,
}

# C-FIND statuses (PS3.4 C.4.1.1.4, Table C.4-1).
#: Pending: a match, every key supported.
PENDING = 0xFF00
#: Pending: a match, but some optional keys were not supported for matching or return.
PENDING_WARNING = 0xFF01
#: Cancel: matching stopped by a C-CANCEL.
CANCELLED = 0xFE00

FindResponse = tuple[int | Dataset, Dataset | None]


def _query_failure(error: QueryError) -> Dataset:
    """A failure status with Error Comment and, when one attribute is at fault, Offending
    Element (0000,0901)."""
    status = failure(error.dimse_status, error.reason)
    if error.offending_tag is not None:
        status.OffendingElement = [error.offending_tag]
    return status


#: Unique keys that name the object of a query event (object UID), by level.
_LEVEL_UIDS = {
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
#: Identifier attributes that are not matching keys.
_NOT_KEYS = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet", "TimezoneOffsetFromUTC"})


@dataclass
class _Described:
    """What the audit trail says about a C-FIND identifier."""

    level: str = ""
    keys: str = ""
    object_uid: str = ""
    patient_id: str = ""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list):
        return "\\".join(str(item) for item in value)
    return str(value).strip()


def describe_identifier(event: Event) -> _Described:
    """The level, the matching keys given (``keyword=value``; universal keys left out), and
    the object and patient they single out, for the audit trail. Never raises."""
    described = _Described()
    try:
        identifier = event.identifier
        described.level = _text(identifier.get("QueryRetrieveLevel")).upper()
        keys = []
        for element in identifier:
            keyword = element.keyword
            if not keyword or keyword in _NOT_KEYS or element.VR == "SQ":
                continue
            value = _text(element.value)
            if value:
                keys.append(f"{keyword}={value}")
        described.keys = ", ".join(keys)
        patient_id = _text(identifier.get("PatientID"))
        if patient_id and not any(c in patient_id for c in "*?\\"):
            described.patient_id = patient_id
        uid_keyword = _LEVEL_UIDS.get(described.level)
        uid = _text(identifier.get(uid_keyword)) if uid_keyword else ""
        if uid and "\\" not in uid:
            described.object_uid = uid
    except Exception:
        described.keys = described.keys or "(identifier not readable)"
    return described


def handle_find(event: Event) -> Iterator[FindResponse]:
    """EVT_C_FIND: yield one Pending response per match, or a failure; pynetdicom sends the
    final Success after the last one. Each request leaves one ``dicom.query`` audit event when
    it ends (docs/audit.md)."""
    peer = peer_of(event)
    matches = 0

    def record(outcome: Outcome, detail: str) -> None:
        # Described after the answer: reading a broken identifier first would change how
        # the request is answered.
        described = describe_identifier(event)
        record_query(
            event.assoc,
            peer,
            level=described.level,
            keys=described.keys,
            matches=matches,
            outcome=outcome,
            detail=detail,
            object_uid=described.object_uid,
            patient_id=described.patient_id,
        )

    for response in _find(event):
        status = response[0]
        code = status if isinstance(status, int) else int(status.get("Status", 0))
        if code in (PENDING, PENDING_WARNING):
            matches += 1
        elif code == CANCELLED:
            record(Outcome.PARTIAL, "cancelled (C-CANCEL)")
        else:
            comment = status.get("ErrorComment", "") if isinstance(status, Dataset) else ""
            record(Outcome.FAILURE, f"refused 0x{code:04X}: {comment}")
        yield response
        if code not in (PENDING, PENDING_WARNING):
            return
    record(Outcome.SUCCESS, "completed")


def _find(event: Event) -> Iterator[FindResponse]:
    """The C-FIND responses (see :func:`handle_find`)."""
    peer = peer_of(event)
    request = cast(C_FIND, event.request)
    if peer is None or not peer.may(Service.QUERY):
        calling = peer.calling_ae if peer else "?"
        where = f" of hospital {peer.hospital.slug}" if peer else ""
        logger.warning("refused C-FIND from %s: not allowed to query", calling)
        yield failure(NOT_AUTHORIZED, f"{calling} may not query this archive{where}"), None
        return
    context = event.context
    model = FIND_MODELS.get(context.abstract_syntax)
    affected = str(request.AffectedSOPClassUID or "")
    if model is None or affected != context.abstract_syntax:
        yield (
            failure(
                SOP_CLASS_MISMATCH,
                f"wrong context: {context.context_id} is for {context.abstract_syntax}",
            ),
            None,
        )
        return
    started = time.monotonic()
    try:
        try:
            identifier = event.identifier
        except Exception as exc:
            raise UndecodableIdentifierError(
                f"the identifier cannot be decoded: {type(exc).__name__}"
            ) from None
        spec = spec_from_identifier(identifier, model)
    except QueryError as err:
        logger.warning(
            "refused C-FIND from %s (0x%04X): %s", peer.calling_ae, err.dimse_status, err.reason
        )
        yield _query_failure(err), None
        return
    except Exception:
        logger.exception("C-FIND from %s: the identifier could not be read", peer.calling_ae)
        yield failure(0xC000, "the identifier cannot be decoded"), None
        return
    status = PENDING_WARNING if spec.status_warning else PENDING
    matches = 0
    try:
        for match in run(spec, peer.hospital):
            if event.is_cancelled:
                logger.info(
                    "C-FIND %s from %s cancelled after %d matches",
                    spec.level,
                    peer.calling_ae,
                    matches,
                )
                yield CANCELLED, None
                return
            answer = to_dataset(spec, match, retrieve_ae_title=peer.called_ae)
            matches += 1
            yield status, answer
    except Exception:
        logger.exception("C-FIND from %s failed unexpectedly (%r)", peer.calling_ae, spec)
        yield failure(OUT_OF_RESOURCES, "internal error in Carina; see the listener log"), None
        return
    logger.info(
        "C-FIND %s %s from %s: %d matches in %.2f s%s",
        model,
        spec.level,
        peer.calling_ae,
        matches,
        time.monotonic() - started,
        f" (keys not supported: {', '.join(sorted(spec.unsupported))})" if spec.unsupported else "",
    )


#: The listener's C-FIND binding (added to :data:`carina.dimse.handlers.HANDLERS`).
FIND_HANDLERS: list[EventHandlerType] = [(evt.EVT_C_FIND, handle_find)]
