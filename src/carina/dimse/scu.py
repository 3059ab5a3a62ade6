"""Carina as a DIMSE requestor (SCU): a small library for later features (routing, C-MOVE,
``carina send``, the node page's "test connection").

* :func:`echo` — C-ECHO (PS3.4 Annex A): status and round-trip time.
* :func:`store` — C-STORE (PS3.4 Annex B) of many files over one association, each sent as it
  is stored (its own transfer syntax, streamed from the file), with a progress callback.
* :func:`move` — C-MOVE (PS3.4 C.4.2): ask a peer to send objects to a move destination, with
  the sub-operation counts of each Pending response as progress, and C-CANCEL.
* :func:`find` — C-FIND (PS3.4 C.4.1): query a peer, each match passed to a callback as it
  arrives, and C-CANCEL.

Sockets are tuned like the listener's (:mod:`carina.dimse.transport`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context

from carina.dimse.conformance import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_FIND,
    STUDY_ROOT_MOVE,
    VERIFICATION,
)
from carina.dimse.models import RemoteNode
from carina.dimse.reactor import guard_reactor
from carina.dimse.transport import TunedAE

#: pynetdicom (and PS3.8 9.3.2.2, odd context IDs 1–255) allow 128 contexts per association.
MAX_CONTEXTS = 128


class DimseError(Exception):
    """An association could not be established or was lost; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where to connect: host, port and the called AE title."""

    host: str
    port: int
    ae_title: str

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def target_of(node_or_host: RemoteNode | str, port: int | None, called_ae: str | None) -> Target:
    """A :class:`Target` from a node, or from a host with its port and called AE title."""
    if isinstance(node_or_host, RemoteNode):
        return Target(
            node_or_host.host, port or node_or_host.port, called_ae or node_or_host.ae_title
        )
    if port is None or not called_ae:
        raise ValueError("a host needs a port and a called AE title")
    return Target(node_or_host, port, called_ae)


def _make_ae(calling_ae: str | None, timeout: float) -> TunedAE:
    ae = TunedAE(ae_title=calling_ae or settings.CARINA_AE_TITLE)
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    return ae


def _why_not(assoc: Association, target: Target, connected: bool) -> str:
    if not connected:
        return f"could not connect to {target} (refused, unreachable or timed out)"
    if assoc.is_rejected and assoc.acceptor.primitive is not None:
        rsp = assoc.acceptor.primitive
        return (
            f"{target} rejected the association ({rsp.result_str}, {rsp.source_str}: "
            f"{rsp.reason_str})"
        )
    if assoc.is_aborted:
        return f"{target} aborted the association (no acceptable presentation context?)"
    return f"{target} did not answer the association request in time"


@contextmanager
def associate(
    target: Target,
    contexts: list[PresentationContext],
    calling_ae: str | None = None,
    timeout: float = 30.0,
) -> Iterator[Association]:
    """An established association to ``target``, released on exit (raises DimseError)."""
    ae = _make_ae(calling_ae, timeout)
    connected: list[bool] = []
    assoc = ae.associate(
        target.host,
        target.port,
        contexts=contexts,
        ae_title=target.ae_title,
        evt_handlers=[(evt.EVT_CONN_OPEN, lambda event: connected.append(True))],
    )
    if not assoc.is_established:
        raise DimseError(_why_not(assoc, target, bool(connected)))
    guard_reactor(assoc)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


# --- C-ECHO ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EchoResult:
    """A C-ECHO answer: its status and the request/response round trip in seconds (the
    association set-up is not included)."""

    status: int
    rtt: float

    @property
    def ok(self) -> bool:
        return self.status == 0x0000


def echo(
    node_or_host: RemoteNode | str,
    port: int | None = None,
    called_ae: str | None = None,
    calling_ae: str | None = None,
    *,
    timeout: float = 30.0,
) -> EchoResult:
    """Verify a peer with C-ECHO (raises DimseError if there is no association or answer)."""
    target = target_of(node_or_host, port, called_ae)
    with associate(target, [build_context(VERIFICATION)], calling_ae, timeout) as assoc:
        started = time.perf_counter()
        rsp = assoc.send_c_echo()
        rtt = time.perf_counter() - started
    if "Status" not in rsp:
        raise DimseError(f"{target} did not answer the C-ECHO (timeout or abort)")
    return EchoResult(int(rsp.Status), rtt)


# --- C-STORE --------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreOutcome:
    """What happened to one file: the peer's status (None if it was not sent or not
    answered) and the Error Comment or the local reason."""

    path: Path
    sop_instance_uid: str
    status: int | None
    comment: str = ""

    @property
    def ok(self) -> bool:
        """Success or a warning (PS3.4 B.2.3: B000, B006, B007 mean stored)."""
        return self.status is not None and (self.status == 0 or self.status & 0xF000 == 0xB000)


@dataclass(frozen=True)
class StoreProgress:
    """Passed to the progress callback after each file."""

    done: int
    total: int
    outcome: StoreOutcome


@dataclass
class StoreReport:
    """The outcome of every file: unreadable files first, then the others as sent."""

    outcomes: list[StoreOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[StoreOutcome]:
        return [o for o in self.outcomes if not o.ok]


@dataclass(frozen=True)
class _Item:
    path: Path
    sop_class: str
    sop_instance: str
    transfer_syntax: str


def _read_item(path: Path) -> _Item | str:
    try:
        meta = read_file_meta_info(path)
    except (OSError, InvalidDicomError, ValueError, EOFError) as exc:
        return f"not a readable DICOM file: {exc}"
    values = [meta.get(k) for k in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID")]
    syntax = meta.get("TransferSyntaxUID")
    if not all(values) or not syntax:
        return "the file meta lacks the SOP Class, SOP Instance or Transfer Syntax UID"
    return _Item(path, str(values[0]), str(values[1]), str(syntax))


def _batches(items: list[_Item]) -> Iterator[list[_Item]]:
    """Consecutive groups needing at most MAX_CONTEXTS (SOP class, syntax) contexts."""
    batch: list[_Item] = []
    pairs: set[tuple[str, str]] = set()
    for item in items:
        pair = (item.sop_class, item.transfer_syntax)
        if pair not in pairs and len(pairs) == MAX_CONTEXTS:
            yield batch
            batch, pairs = [], set()
        batch.append(item)
        pairs.add(pair)
    if batch:
        yield batch


def store(
    paths: Iterable[Path | str],
    node_or_host: RemoteNode | str,
    port: int | None = None,
    called_ae: str | None = None,
    calling_ae: str | None = None,
    *,
    on_progress: Callable[[StoreProgress], None] | None = None,
    timeout: float = 60.0,
) -> StoreReport:
    """Send DICOM files with C-STORE, one association for up to 128 SOP class and transfer
    syntax combinations (usually all files). Each file is proposed and sent in its own
    transfer syntax, streamed from disk. Failures are reported per file, not raised."""
    target = target_of(node_or_host, port, called_ae)
    started = time.monotonic()
    all_paths = [Path(p) for p in paths]
    report = StoreReport()
    total = len(all_paths)

    def record(outcome: StoreOutcome) -> None:
        report.outcomes.append(outcome)
        if on_progress is not None:
            on_progress(StoreProgress(len(report.outcomes), total, outcome))

    items: list[_Item] = []
    for path in all_paths:
        item = _read_item(path)
        if isinstance(item, str):
            record(StoreOutcome(path, "", None, item))
        else:
            items.append(item)
    for batch in _batches(items):
        pairs = dict.fromkeys((i.sop_class, i.transfer_syntax) for i in batch)
        contexts = [build_context(sop, [syntax]) for sop, syntax in pairs]
        sent = 0
        try:
            with associate(target, contexts, calling_ae, timeout) as assoc:
                for item in batch:
                    record(_send_one(assoc, item, target))
                    sent += 1
        except DimseError as exc:
            for item in batch[sent:]:
                record(StoreOutcome(item.path, item.sop_instance, None, str(exc)))
    report.seconds = time.monotonic() - started
    return report


def _send_one(assoc: Association, item: _Item, target: Target) -> StoreOutcome:
    if not assoc.is_established:
        return StoreOutcome(item.path, item.sop_instance, None, f"{target} ended the association")
    try:
        rsp = assoc.send_c_store(item.path)
    except (ValueError, AttributeError) as exc:  # no accepted context, unreadable meta
        return StoreOutcome(item.path, item.sop_instance, None, str(exc))
    if "Status" not in rsp:
        return StoreOutcome(
            item.path, item.sop_instance, None, f"no answer from {target} (timeout or abort)"
        )
    return StoreOutcome(
        item.path, item.sop_instance, int(rsp.Status), str(rsp.get("ErrorComment", ""))
    )


# --- C-MOVE ---------------------------------------------------------------------------

#: C-MOVE information models by name (PS3.4 C.6.1.1.3, C.6.2.1.2).
MOVE_MODELS = {"patient": PATIENT_ROOT_MOVE, "study": STUDY_ROOT_MOVE}
_PENDING = (0xFF00, 0xFF01)


@dataclass(frozen=True)
class MoveProgress:
    """The sub-operation counts of one Pending C-MOVE response."""

    remaining: int
    completed: int
    failed: int
    warning: int


@dataclass(frozen=True)
class MoveResult:
    """The final C-MOVE response: status, counts, Error Comment and failed instances."""

    status: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    #: Sub-operations not started (a Cancel response says how many).
    remaining: int = 0
    error_comment: str = ""
    failed_sop_instance_uids: tuple[str, ...] = ()
    #: How many Pending responses came before it.
    pending: int = 0

    @property
    def ok(self) -> bool:
        return self.status == 0x0000


def move(
    target: RemoteNode | Target,
    level: str,
    identifier: Dataset | Mapping[str, str | Sequence[str]],
    move_destination: str,
    model: str = "study",
    on_progress: Callable[[MoveProgress], None] | None = None,
    *,
    calling_ae: str | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 60.0,
) -> MoveResult:
    """Ask ``target`` to send what ``identifier`` names at ``level`` (PATIENT, STUDY, SERIES,
    IMAGE) to the AE title ``move_destination``, with the Patient Root or Study Root model.

    ``identifier`` is a data set or a mapping of keywords to values (a list of UIDs is
    allowed). ``on_progress`` gets the counts of every Pending response; when ``cancel`` is
    set, a C-CANCEL is sent after the next one. Returns the final response; raises
    :class:`DimseError` when there is no association or no final response.
    """
    if model not in MOVE_MODELS:
        raise ValueError(f"model must be one of {sorted(MOVE_MODELS)}, not {model!r}")
    sop_class = MOVE_MODELS[model]
    if isinstance(target, RemoteNode):
        target = target_of(target, None, None)
    ds = _identifier(level, identifier)
    context = build_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    pending = 0
    cancel_sent = False
    with associate(target, [context], calling_ae, timeout) as assoc:
        for status_ds, response_identifier in assoc.send_c_move(ds, move_destination, sop_class):
            if "Status" not in status_ds:
                raise DimseError(f"{target} did not answer the C-MOVE (timeout or abort)")
            status = int(status_ds.Status)
            if status in _PENDING:
                pending += 1
                if on_progress is not None:
                    on_progress(_move_counts(status_ds))
                if cancel is not None and cancel.is_set() and not cancel_sent:
                    assoc.send_c_cancel(1, query_model=sop_class)
                    cancel_sent = True
                continue
            counts = _move_counts(status_ds)
            failed: tuple[str, ...] = ()
            if response_identifier is not None:
                value = response_identifier.get("FailedSOPInstanceUIDList") or []
                failed = tuple(str(uid) for uid in ([value] if isinstance(value, str) else value))
            return MoveResult(
                status,
                counts.completed,
                counts.failed,
                counts.warning,
                counts.remaining,
                str(status_ds.get("ErrorComment", "") or ""),
                failed,
                pending,
            )
    raise DimseError(f"{target} ended the C-MOVE without a final response")


def _identifier(level: str, keys: Dataset | Mapping[str, str | Sequence[str]]) -> Dataset:
    ds = Dataset()
    if isinstance(keys, Dataset):
        ds.update(keys)
    else:
        for keyword, value in keys.items():
            setattr(ds, keyword, value if isinstance(value, str) else list(value))
    ds.QueryRetrieveLevel = level
    return ds


def _move_counts(status_ds: Dataset) -> MoveProgress:
    def number(keyword: str) -> int:
        return int(status_ds.get(keyword) or 0)

    return MoveProgress(
        number("NumberOfRemainingSuboperations"),
        number("NumberOfCompletedSuboperations"),
        number("NumberOfFailedSuboperations"),
        number("NumberOfWarningSuboperations"),
    )


# --- C-FIND ---------------------------------------------------------------------------

#: C-FIND information models by name (PS3.4 C.6.1.1.2, C.6.2.1.1).
FIND_MODELS = {"patient": PATIENT_ROOT_FIND, "study": STUDY_ROOT_FIND}


@dataclass
class FindResult:
    """The outcome of a C-FIND: the final status, its Error Comment and Offending Element,
    and the matches (the identifiers of the Pending responses, in order)."""

    status: int
    matches: list[Dataset] = field(default_factory=list)
    error_comment: str = ""
    offending_element: tuple[int, ...] = ()
    #: Whether any Pending response was 0xFF01 (the peer did not support some keys).
    warning: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 0x0000

    @property
    def cancelled(self) -> bool:
        return self.status == 0xFE00


def find(
    target: RemoteNode | Target,
    level: str,
    identifier: Dataset | Mapping[str, str | Sequence[str]],
    model: str = "study",
    on_result: Callable[[Dataset], bool | None] | None = None,
    *,
    calling_ae: str | None = None,
    cancel: threading.Event | None = None,
    keep: bool = True,
    timeout: float = 60.0,
) -> FindResult:
    """Query ``target`` at ``level`` (PATIENT, STUDY, SERIES, IMAGE) with the Patient Root or
    Study Root model (``model``: ``"patient"`` or ``"study"``).

    ``identifier`` is a data set, or a mapping of keywords to values: ``""`` asks for a key
    to be returned, a value matches (``{"PatientName": "SMITH*", "StudyDate": ""}``).
    ``on_result`` gets each match as it arrives; when it returns ``False``, or ``cancel`` is
    set, a C-CANCEL is sent and the peer ends with Cancel (0xFE00). ``keep=False`` does not
    collect the matches in the result (for large answers handled by ``on_result``).
    Returns the final response; raises :class:`DimseError` when there is no association or
    no final response.
    """
    if model not in FIND_MODELS:
        raise ValueError(f"model must be one of {sorted(FIND_MODELS)}, not {model!r}")
    sop_class = FIND_MODELS[model]
    if isinstance(target, RemoteNode):
        target = target_of(target, None, None)
    ds = _identifier(level, identifier)
    context = build_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    result = FindResult(status=-1)
    cancel_sent = False
    with associate(target, [context], calling_ae, timeout) as assoc:
        responses = assoc.send_c_find(ds, sop_class)
        for status_ds, match in responses:
            if "Status" not in status_ds:
                raise DimseError(f"{target} did not answer the C-FIND (timeout or abort)")
            status = int(status_ds.Status)
            if status in _PENDING:
                result.warning = result.warning or status == 0xFF01
                wanted = True
                if match is not None:
                    if keep:
                        result.matches.append(match)
                    if on_result is not None:
                        wanted = on_result(match) is not False
                stop = not wanted or (cancel is not None and cancel.is_set())
                if stop and not cancel_sent:
                    assoc.send_c_cancel(1, query_model=sop_class)
                    cancel_sent = True
                continue
            result.status = status
            result.error_comment = str(status_ds.get("ErrorComment", "") or "")
            offending = status_ds.get("OffendingElement") or []
            values = offending if isinstance(offending, list | tuple) else [offending]
            result.offending_element = tuple(int(tag) for tag in values)
            return result
    raise DimseError(f"{target} ended the C-FIND without a final response")
