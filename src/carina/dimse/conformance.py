"""What Carina's DICOM node supports: SOP classes, transfer syntaxes and its implementation
identity (the facts docs/conformance/dimse.md states).

Presentation contexts (PS3.8 7.1.1.13, 9.3.2.2): the listener accepts Verification and every
storage SOP class pynetdicom knows, each with the transfer syntaxes below. Among the transfer
syntaxes a requestor proposes for one context, Carina accepts the one the requestor lists first
(its preferred one, usually the syntax its file is in), so objects are stored as sent instead
of being converted by the sender.
"""

from __future__ import annotations

from collections.abc import Collection

from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom.presentation import (
    AllStoragePresentationContexts,
    PresentationContext,
    build_context,
)

from carina.dimse.sending import can_send_any

#: Verification SOP Class (PS3.4 A.4).
VERIFICATION = UID("1.2.840.10008.1.1")
#: Query/Retrieve – MOVE and GET, Patient Root and Study Root (PS3.4 C.6.1.1, C.6.2.1).
PATIENT_ROOT_MOVE = UID("1.2.840.10008.5.1.4.1.2.1.2")
PATIENT_ROOT_GET = UID("1.2.840.10008.5.1.4.1.2.1.3")
STUDY_ROOT_MOVE = UID("1.2.840.10008.5.1.4.1.2.2.2")
STUDY_ROOT_GET = UID("1.2.840.10008.5.1.4.1.2.2.3")
RETRIEVE_SOP_CLASSES: tuple[UID, ...] = (
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_MOVE,
    PATIENT_ROOT_GET,
    STUDY_ROOT_GET,
)
#: Query/Retrieve – FIND, Patient Root and Study Root (PS3.4 C.6.1.1, C.6.2.1).
PATIENT_ROOT_FIND = UID("1.2.840.10008.5.1.4.1.2.1.1")
STUDY_ROOT_FIND = UID("1.2.840.10008.5.1.4.1.2.2.1")
QUERY_SOP_CLASSES: tuple[UID, ...] = (PATIENT_ROOT_FIND, STUDY_ROOT_FIND)
#: Carina's Implementation Class UID (PS3.7 D.3.3.2), a UUID-derived UID (PS3.5 B.2).
IMPLEMENTATION_CLASS_UID = UID("2.25.75051809277199974919271389724367186014")
#: Implementation Version Name (PS3.7 D.3.3.2.2), at most 16 characters.
IMPLEMENTATION_VERSION_NAME = "CARINA_0_1"

#: Transfer syntaxes accepted for storage (PS3.5 10, Annex A), uncompressed first.
STORAGE_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    JPEG2000MCLossless,
    JPEG2000MC,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    HTJ2K,
    RLELossless,
)
#: Verification needs no data set; the three uncompressed syntaxes cover every requestor.
VERIFICATION_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
)
#: Every storage SOP class pynetdicom knows (PS3.4 Annex B.5).
STORAGE_SOP_CLASSES: tuple[UID, ...] = tuple(
    UID(cx.abstract_syntax) for cx in AllStoragePresentationContexts if cx.abstract_syntax
)

_TRANSFER_SYNTAXES: dict[UID, tuple[UID, ...]] = {
    VERIFICATION: VERIFICATION_TRANSFER_SYNTAXES,
    **{uid: STORAGE_TRANSFER_SYNTAXES for uid in STORAGE_SOP_CLASSES},
    # Retrieve identifiers are small: the uncompressed syntaxes, as for Verification.
    **{uid: VERIFICATION_TRANSFER_SYNTAXES for uid in RETRIEVE_SOP_CLASSES},
    # Query identifiers too, and deflated for requestors that ask for it (findscu -xd).
    **{
        uid: (*VERIFICATION_TRANSFER_SYNTAXES, DeflatedExplicitVRLittleEndian)
        for uid in QUERY_SOP_CLASSES
    },
}
_STORAGE = frozenset(STORAGE_SOP_CLASSES)


def _context(uid: UID, syntaxes: list[UID]) -> PresentationContext:
    """A supported context. Storage contexts accept SCP/SCU role selection (PS3.7 D.3.3.4):
    a C-GET requestor proposes the SCP role for the storage SOP classes it wants to receive,
    and Carina then sends the C-STORE sub-operations on those contexts as the SCU. A requestor
    that proposes no role selection gets the default roles (Carina is the Storage SCP)."""
    context = build_context(uid, list[str | UID](syntaxes))
    if uid in _STORAGE:
        context.scu_role = True
        context.scp_role = True
    return context


def supported_sop_classes() -> tuple[UID, ...]:
    """Abstract syntaxes the listener accepts: Verification, then the storage classes."""
    return tuple(_TRANSFER_SYNTAXES)


def supported_contexts() -> list[PresentationContext]:
    """The listener's presentation contexts, in Carina's own order of transfer syntaxes."""
    return [_context(uid, list(syntaxes)) for uid, syntaxes in _TRANSFER_SYNTAXES.items()]


def contexts_for_request(
    requested: list[PresentationContext], sent_by_carina: Collection[str] = ()
) -> list[PresentationContext]:
    """Contexts to accept for one association, ordered by the requestor's preference.

    pynetdicom keeps one transfer syntax list per SOP class and accepts, for each proposed
    context, the first syntax of that list the context proposes. So the list starts with the
    first (preferred) syntax of every context proposing the SOP class, then the requestor's
    other syntaxes in its order, then Carina's. A requestor such as dcmsend proposes one
    context per compressed syntax, each with the uncompressed ones as fallback (JPEG Lossless,
    Explicit LE, …; Deflated, Explicit LE, …): each context then gets its compressed syntax and
    the object travels as stored. Only contexts that list the same syntaxes in conflicting
    orders can get a syntax other than their first.

    ``sent_by_carina`` names the SOP classes for which the requestor proposed the SCP role
    (C-GET: Carina sends those objects). For them, the preferred syntax of a context is the
    first one Carina can send any object in (:func:`carina.dimse.sending.can_send_any`): a
    requestor proposing JPEG-LS, then Explicit VR Little Endian, gets Explicit VR Little
    Endian, so that an uncompressed object can be sent too.
    """
    firsts: dict[UID, list[UID]] = {}
    others: dict[UID, list[UID]] = {}
    for context in requested:
        uid = UID(context.abstract_syntax or "")
        supported = _TRANSFER_SYNTAXES.get(uid)
        if supported is None:
            continue
        proposed = [UID(s) for s in context.transfer_syntax if s in supported]
        if uid in sent_by_carina:
            proposed.sort(key=lambda syntax: not can_send_any(syntax))
        if proposed:
            firsts.setdefault(uid, []).append(proposed[0])
        others.setdefault(uid, []).extend(proposed[1:])
    contexts = []
    for uid in others:
        order = list(dict.fromkeys([*firsts.get(uid, []), *others[uid], *_TRANSFER_SYNTAXES[uid]]))
        contexts.append(_context(uid, order))
    return contexts
