"""Sending stored instances as C-STORE sub-operations, as stored where the peer allows it.

Carina keeps each object in the transfer syntax it was received in. When it sends one (C-MOVE and
C-GET sub-operations), it uses a presentation context in that syntax when the peer accepted one,
and then sends the stored data set bytes unchanged, streamed from the blob. Otherwise it converts
the object to a syntax the peer accepted (the *transfer-syntax fallback*, PS3.5 10 and Annex A):

1. Explicit VR Little Endian, Implicit VR Little Endian, Deflated Explicit VR Little Endian or
   Explicit VR Big Endian, in this order of preference: compressed pixel data are decompressed
   with pydicom and its pylibjpeg plugins, and the data set is re-encoded;
2. for an image, a lossless compressed syntax pydicom can encode (RLE Lossless; JPEG 2000
   Lossless with pylibjpeg-openjpeg), after decompressing;
3. otherwise the sub-operation fails: no acceptable presentation context (PS3.4 C.4.2.3.1).

Nothing is ever re-encoded into a lossy syntax.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context

# The conversion itself lives with the archive's pixel code (shared with DICOMweb WADO-RS);
# these names are re-exported for the DIMSE modules that use them.
from carina.archive.pixels.transcode import LOSSLESS_FALLBACK as LOSSLESS_FALLBACK
from carina.archive.pixels.transcode import UNCOMPRESSED_FALLBACK as UNCOMPRESSED_FALLBACK
from carina.archive.pixels.transcode import can_encode as can_encode
from carina.archive.pixels.transcode import can_send_any as can_send_any
from carina.archive.pixels.transcode import convert as convert
from carina.archive.pixels.transcode import local_file
from carina.archive.pixels.transcode import write_converted as write_converted
from carina.archive.storage import get_storage

logger = logging.getLogger(__name__)

#: What a C-MOVE proposes for each SOP class besides its stored syntaxes.
PROPOSED_FALLBACK: tuple[UID, ...] = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
#: pynetdicom (and PS3.8 9.3.2.2, odd context IDs 1–255) allow 128 contexts per association.
MAX_CONTEXTS = 128


@dataclass(frozen=True)
class StoredInstance:
    """What sending needs to know about one archived instance."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    blob_key: str
    #: Rows (0028,0010): set for images, None for other objects.
    rows: int | None = None
    #: For the audit trail (one event per study and association, docs/audit.md).
    study_instance_uid: str = ""
    patient_id: str = ""


@dataclass(frozen=True)
class Outcome:
    """The result of one C-STORE sub-operation."""

    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"

    sop_instance_uid: str
    category: str
    #: The Storage SCP's status; None if nothing was sent or there was no answer.
    status: int | None = None
    #: Why it failed (for the log and the Error Comment).
    reason: str = ""
    #: The transfer syntax it was sent in.
    sent_as: str = ""


def category_of(status: int) -> str:
    """Success, warning or failure of a C-STORE status (PS3.4 B.2.3: B000, B006, B007 are
    warnings; any other status but 0000 is a failure)."""
    if status == 0x0000:
        return Outcome.SUCCESS
    if status & 0xF000 == 0xB000:
        return Outcome.WARNING
    return Outcome.FAILURE


# --- presentation contexts ------------------------------------------------------------


def batches_with_contexts(
    instances: Iterable[StoredInstance],
) -> list[tuple[list[StoredInstance], list[PresentationContext]]]:
    """Consecutive groups of instances, each with the presentation contexts to propose for it
    (at most 128): per SOP class, one context per stored transfer syntax, so that the peer can
    accept each one on its own, and one with Explicit and Implicit VR Little Endian for the
    fallback."""
    batches: list[tuple[list[StoredInstance], list[PresentationContext]]] = []
    group: list[StoredInstance] = []
    needed: dict[tuple[str, tuple[UID, ...]], None] = {}
    for instance in instances:
        wanted = [
            (instance.sop_class_uid, (UID(instance.transfer_syntax_uid),)),
            (instance.sop_class_uid, PROPOSED_FALLBACK),
        ]
        new = [pair for pair in wanted if pair not in needed]
        if group and len(needed) + len(new) > MAX_CONTEXTS:
            batches.append((group, _contexts(needed)))
            group, needed = [], {}
            new = wanted
        group.append(instance)
        needed.update(dict.fromkeys(new))
    if group:
        batches.append((group, _contexts(needed)))
    return batches


def _contexts(needed: dict[tuple[str, tuple[UID, ...]], None]) -> list[PresentationContext]:
    return [build_context(sop_class, list(syntaxes)) for sop_class, syntaxes in needed]


def choose_syntax(
    stored: UID, accepted: Iterable[UID], is_image: bool, encodable: Callable[[UID], bool]
) -> UID | None:
    """The transfer syntax to send a stored object in, among those the peer accepted for its
    SOP class: the stored one, else an uncompressed one, else (images) a lossless one pydicom
    can encode; None when there is none."""
    accepted = list(accepted)
    if stored in accepted:
        return stored
    for syntax in UNCOMPRESSED_FALLBACK:
        if syntax in accepted:
            return syntax
    if is_image:
        for syntax in LOSSLESS_FALLBACK:
            if syntax in accepted and encodable(syntax):
                return syntax
    return None


# --- the blob and its conversion --------------------------------------------------------


@contextlib.contextmanager
def blob_file(key: str) -> Iterator[Path]:
    """The stored blob as a local file: the file itself for folder storage, else a temporary
    copy (S3), removed afterwards."""
    with contextlib.closing(get_storage().open(key)) as handle, local_file(handle) as path:
        yield path


# --- sending --------------------------------------------------------------------------


def is_alive(assoc: Association) -> bool:
    """Whether ``assoc`` is established and no abort or closed connection waits to be noticed.

    pynetdicom updates ``is_established`` in the association's own thread only, and that
    thread is busy while it serves a C-MOVE or C-GET, so its DUL is asked as well.
    """
    return bool(assoc.is_established) and assoc.dul.is_alive() and not assoc.acse.is_aborted()


class Sender:
    """Sends stored instances with C-STORE over one established association on which Carina
    may act as the Storage SCU: an association Carina opened (C-MOVE), or the requesting one
    when its storage contexts were negotiated with the SCP/SCU role selection (C-GET)."""

    def __init__(
        self,
        assoc: Association,
        peer_name: str,
        *,
        move_originator: tuple[str, int] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.assoc = assoc
        self.peer_name = peer_name
        self.move_originator = move_originator
        self._on_close = on_close

    @property
    def usable(self) -> bool:
        return is_alive(self.assoc)

    @property
    def why_unusable(self) -> str:
        return f"{self.peer_name} ended the association"

    def accepted_syntaxes(self, sop_class: str) -> list[UID]:
        """Transfer syntaxes accepted for ``sop_class`` with this side as the Storage SCU."""
        return [
            UID(cx.transfer_syntax[0])
            for cx in self.assoc.accepted_contexts
            if cx.abstract_syntax == sop_class and cx.as_scu
        ]

    def send(self, instance: StoredInstance, message_id: int) -> Outcome:
        """One C-STORE sub-operation; never raises."""
        uid = instance.sop_instance_uid
        stored = UID(instance.transfer_syntax_uid)
        accepted = self.accepted_syntaxes(instance.sop_class_uid)
        target = choose_syntax(stored, accepted, instance.rows is not None, can_encode)
        if target is None:
            reason = (
                f"no presentation context with {self.peer_name} for "
                f"{UID(instance.sop_class_uid).name} in {stored.name} or a syntax Carina "
                "converts to"
            )
            return Outcome(uid, Outcome.FAILURE, reason=reason)
        try:
            with blob_file(instance.blob_key) as path:
                if target == stored:
                    return self._send_file(path, uid, target, message_id)
                try:
                    copy = write_converted(path, target)
                except Exception as exc:
                    logger.warning("cannot convert %s to %s: %s", uid, target.name, exc)
                    reason = f"cannot convert {stored.name} to {target.name}: {exc}"
                    return Outcome(uid, Outcome.FAILURE, reason=reason)
                try:
                    logger.debug("sending %s as %s (stored as %s)", uid, target.name, stored.name)
                    return self._send_file(copy, uid, target, message_id)
                finally:
                    copy.unlink(missing_ok=True)
        except OSError as exc:
            logger.error("cannot read the blob of %s: %s", uid, exc)
            return Outcome(uid, Outcome.FAILURE, reason=f"cannot read the stored object: {exc}")

    def _send_file(self, path: Path, uid: str, syntax: UID, message_id: int) -> Outcome:
        originator_ae, originator_id = self.move_originator or (None, None)
        try:
            rsp = self.assoc.send_c_store(
                path, msg_id=message_id, originator_aet=originator_ae, originator_id=originator_id
            )
        except (RuntimeError, ValueError, AttributeError) as exc:
            return Outcome(uid, Outcome.FAILURE, reason=str(exc))
        if "Status" not in rsp:
            reason = f"no answer from {self.peer_name} (timeout or abort)"
            return Outcome(uid, Outcome.FAILURE, reason=reason)
        status = int(rsp.Status)
        category = category_of(status)
        reason = ""
        if category == Outcome.FAILURE:
            comment = str(rsp.get("ErrorComment", "") or "")
            reason = f"{self.peer_name} answered 0x{status:04X}"
            reason += f": {comment}" if comment else ""
        return Outcome(uid, category, status, reason, str(syntax))

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
