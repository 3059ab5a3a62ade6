"""Carina as a DIMSE requestor (SCU): a small library for later features (routing, C-MOVE,
``carina send``, the node page's "test connection").

* :func:`echo` — C-ECHO (PS3.4 Annex A): status and round-trip time.
* :func:`store` — C-STORE (PS3.4 Annex B) of many files over one association, each sent as it
  is stored (its own transfer syntax, streamed from the file), with a progress callback.

Sockets are tuned like the listener's (:mod:`carina.dimse.transport`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context

from carina.dimse.conformance import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    VERIFICATION,
)
from carina.dimse.models import RemoteNode
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
