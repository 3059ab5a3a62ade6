"""State changes of remote nodes (``do_*``), each atomic, and the node page's "test
connection" (:func:`check_connection`: C-ECHO, or a DICOMweb probe, with the round trip)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from pydicom.uid import UID
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext, build_context

from carina.archive.pixels.transcode import LOSSLESS_FALLBACK, UNCOMPRESSED_FALLBACK, can_encode
from carina.config.env import ConfigError, validate_ae_title
from carina.dimse import scu
from carina.dimse.conformance import VERIFICATION
from carina.dimse.models import Kind, RemoteNode
from carina.dimse.reactor import guard_reactor
from carina.tenancy.models import Hospital


class NodeError(ValueError):
    """A node change that cannot be made, with the reason."""


@dataclass(frozen=True)
class NodeOptions:
    """Optional node settings; ``None`` keeps the stored value (or the default on creation)."""

    description: str | None = None
    enabled: bool | None = None
    may_echo: bool | None = None
    may_store: bool | None = None
    may_query: bool | None = None
    may_retrieve: bool | None = None
    is_move_destination: bool | None = None
    kind: str | None = None
    use_tls: bool | None = None
    preferred_transfer_syntax: str | None = None
    max_associations: int | None = None
    dicomweb_url: str | None = None
    dicomweb_token: str | None = None


def sendable_syntaxes() -> list[UID]:
    """Transfer syntaxes a node may prefer: those Carina converts any object to without loss
    (the uncompressed ones, and the lossless ones pydicom can encode here)."""
    return [*UNCOMPRESSED_FALLBACK, *(s for s in LOSSLESS_FALLBACK if can_encode(s))]


def _clean_destination(name: str, changes: dict[str, object]) -> None:
    """Check the destination settings among ``changes`` (in place: the URL is trimmed)."""
    kind = changes.get("kind")
    if kind is not None and kind not in Kind.values:
        raise NodeError(f"node {name!r}: the kind is one of {', '.join(Kind.values)}.")
    syntax = changes.get("preferred_transfer_syntax")
    if syntax:
        allowed = sendable_syntaxes()
        if syntax not in allowed:
            names = ", ".join(f"{s} ({s.name})" for s in allowed)
            raise NodeError(
                f"node {name!r}: preferred transfer syntax {syntax!r} is not one Carina "
                f"converts to without loss; use one of {names}, or none (as stored)."
            )
    limit = changes.get("max_associations")
    if limit is not None and not (isinstance(limit, int) and 1 <= limit <= 32):
        raise NodeError(f"node {name!r}: maximum parallel associations is between 1 and 32.")
    url = changes.get("dicomweb_url")
    if url:
        url = str(url).strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise NodeError(
                f"node {name!r}: DICOMweb URL {url!r} must be an http:// or https:// URL, "
                "e.g. https://pacs.example/dicomweb."
            )
        changes["dicomweb_url"] = url


def _endpoint_of(url: str) -> tuple[str, int]:
    """The host and port of a DICOMweb URL (for listings)."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _clean(name: str, ae_title: str, host: str, port: int) -> tuple[str, str, str]:
    name = name.strip()
    if not name or len(name) > 64:
        raise NodeError(f"node name {name!r}: use 1 to 64 characters.")
    try:
        ae_title = validate_ae_title(ae_title, f"AE title of node {name!r}")
    except ConfigError as exc:
        raise NodeError(str(exc)) from None
    host = host.strip()
    if not host or len(host) > 255 or any(c.isspace() for c in host):
        raise NodeError(f"host {host!r} of node {name!r}: give a host name or an IP address.")
    if not 0 < port < 65536:
        raise NodeError(f"port {port} of node {name!r}: a port is between 1 and 65535.")
    return name, ae_title, host


def do_add_node(
    hospital: Hospital,
    name: str,
    *,
    ae_title: str,
    host: str,
    port: int,
    options: NodeOptions | None = None,
) -> tuple[RemoteNode, bool]:
    """Create node ``name`` of ``hospital`` or bring it up to date (idempotent).

    Returns the node and whether it was created. An AE title already used by another node of
    the same hospital is refused: a calling AE title must identify one node.

    A DICOMweb node (``options.kind == "dicomweb"``) needs ``options.dicomweb_url``; its AE
    title may be empty, and its host and port are taken from the URL when not given.
    """
    changes: dict[str, object] = {
        f.name: getattr(options, f.name)
        for f in fields(NodeOptions)
        if options is not None and getattr(options, f.name) is not None
    }
    _clean_destination(name.strip(), changes)
    existing = RemoteNode.objects.for_hospital(hospital).filter(name=name.strip()).first()
    kind = changes.get("kind") or (existing.kind if existing else Kind.DIMSE)
    if kind == Kind.DICOMWEB:
        url = changes.get("dicomweb_url") or (existing.dicomweb_url if existing else "")
        if not url:
            raise NodeError(f"DICOMweb node {name.strip()!r} needs a DICOMweb URL.")
        url_host, url_port = _endpoint_of(str(url))
        host, port = host.strip() or url_host, port or url_port
        if not ae_title.strip():
            name = name.strip()
            if not name or len(name) > 64:
                raise NodeError(f"node name {name!r}: use 1 to 64 characters.")
            ae_title = ""
            _, _, host = _clean(name, "X", host, port)
        else:
            name, ae_title, host = _clean(name, ae_title, host, port)
    else:
        name, ae_title, host = _clean(name, ae_title, host, port)
    try:
        with transaction.atomic():
            nodes = RemoteNode.objects.for_hospital(hospital)
            clash = nodes.filter(ae_title=ae_title).exclude(name=name).first() if ae_title else None
            if clash is not None:
                raise NodeError(
                    f"AE title {ae_title!r} is already used by node {clash.name!r} of hospital "
                    f"{hospital.slug!r}; each calling AE title identifies one node."
                )
            node = nodes.select_for_update().filter(name=name).first()
            if node is None:
                node = RemoteNode.objects.create(
                    hospital=hospital,
                    name=name,
                    ae_title=ae_title,
                    host=host,
                    port=port,
                    **changes,
                )
                return node, True
            wanted = {"ae_title": ae_title, "host": host, "port": port, **changes}
            changed = [k for k, v in wanted.items() if getattr(node, k) != v]
            if changed:
                for key in changed:
                    setattr(node, key, wanted[key])
                node.save(update_fields=[*changed, "updated_at"])
            return node, False
    except IntegrityError as exc:  # a concurrent add of the same name or AE title
        raise NodeError(f"node {name!r} could not be saved: {exc}") from None


def do_remove_node(hospital: Hospital, node_id: int) -> bool:
    """Forget the node ``node_id`` of ``hospital``; returns whether it existed (another
    hospital's node counts as absent). Its transfers stay in the log with its name."""
    with transaction.atomic():
        deleted, _ = RemoteNode.objects.for_hospital(hospital).filter(pk=node_id).delete()
    return deleted > 0


# --- connecting to a node ------------------------------------------------------------------


def tls_context() -> ssl.SSLContext:
    """The client side of TLS (PS3.15 B.1): the node's certificate is verified against
    CARINA_DICOM_TLS_CA (else the system's CAs); Carina presents CARINA_DICOM_TLS_CERT and
    CARINA_DICOM_TLS_KEY when they are set (nodes that require a client certificate)."""
    tls = settings.CARINA_DICOM_TLS
    context = ssl.create_default_context(cafile=str(tls.ca) if tls and tls.ca else None)
    if tls is not None:
        context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


class NoContextError(scu.DimseError):
    """The node accepted the association but none of its presentation contexts (PS3.8
    9.3.3.2): it takes none of these SOP classes in any proposed transfer syntax. Unlike an
    unreachable node, trying again does not help."""


@contextmanager
def node_association(
    node: RemoteNode, contexts: list[PresentationContext], timeout: float = 60.0
) -> Iterator[Association]:
    """An established association with ``node`` (over TLS when the node says so), released
    on exit; raises :class:`carina.dimse.scu.DimseError` with the reason
    (:class:`NoContextError` when no presentation context was accepted).

    Like :func:`carina.dimse.scu.associate`, plus TLS and that distinction."""
    target = scu.target_of(node, None, None)
    ae = scu._make_ae(None, timeout)
    connected: list[bool] = []
    tls_args = (tls_context(), target.host) if node.use_tls else None
    over = " (over TLS)" if node.use_tls else ""
    try:
        assoc = ae.associate(
            target.host,
            target.port,
            contexts=contexts,
            ae_title=target.ae_title,
            tls_args=tls_args,
            evt_handlers=[(evt.EVT_CONN_OPEN, lambda event: connected.append(True))],
        )
    except (OSError, ssl.SSLError) as exc:
        raise scu.DimseError(f"connecting to {target}{over} failed: {exc}") from None
    if not assoc.is_established:
        answer = assoc.acceptor.primitive
        if answer is not None and answer.result == 0x00:  # accepted, but no context
            raise NoContextError(
                f"{target} accepts none of the SOP classes and transfer syntaxes proposed"
            )
        raise scu.DimseError(scu._why_not(assoc, target, bool(connected)) + over)
    guard_reactor(assoc)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of "test connection": whether the node answered, the round trip of the
    request (seconds; None when it did not answer) and a sentence for the page."""

    ok: bool
    rtt: float | None
    message: str


def check_connection(node: RemoteNode, timeout: float = 10.0) -> ConnectionCheck:
    """C-ECHO a DICOM node (PS3.4 A.4), or probe a DICOMweb node with an authenticated
    QIDO-RS search, ``GET {url}/studies?limit=1`` (PS3.18 10.6). Never raises."""
    if node.is_dicomweb:
        return _probe_dicomweb(node, timeout)
    try:
        with node_association(node, [build_context(VERIFICATION)], timeout) as assoc:
            started = time.perf_counter()
            rsp = assoc.send_c_echo()
            rtt = time.perf_counter() - started
    except scu.DimseError as exc:
        return ConnectionCheck(False, None, str(exc))
    if "Status" not in rsp:
        return ConnectionCheck(False, None, f"{node.ae_title} did not answer the C-ECHO")
    status = int(rsp.Status)
    if status != 0:
        return ConnectionCheck(False, rtt, f"{node.ae_title} answered C-ECHO with 0x{status:04X}")
    return ConnectionCheck(True, rtt, f"C-ECHO to {node.ae_title}: success in {rtt * 1000:.0f} ms")


def dicomweb_headers(node: RemoteNode) -> dict[str, str]:
    """The headers of every request to a DICOMweb node (its token as a Bearer token)."""
    headers = {"User-Agent": "Carina PACS"}
    if node.dicomweb_token:
        headers["Authorization"] = f"Bearer {node.dicomweb_token}"
    return headers


def _probe_dicomweb(node: RemoteNode, timeout: float) -> ConnectionCheck:
    url = f"{node.dicomweb_url}/studies"
    headers = {**dicomweb_headers(node), "Accept": "application/dicom+json"}
    started = time.perf_counter()
    try:
        response = requests.get(url, params={"limit": "1"}, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        return ConnectionCheck(False, None, f"cannot reach {url}: {exc.__class__.__name__}")
    rtt = time.perf_counter() - started
    if response.status_code in (200, 204):
        return ConnectionCheck(
            True, rtt, f"QIDO-RS at {url}: HTTP {response.status_code} in {rtt * 1000:.0f} ms"
        )
    why = {401: " (the token was refused)", 403: " (the token may not search)"}
    return ConnectionCheck(
        False,
        rtt,
        f"QIDO-RS at {url} answered HTTP {response.status_code}"
        + why.get(response.status_code, ""),
    )
