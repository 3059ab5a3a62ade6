"""Carina's DICOM listener: a pynetdicom association server with Carina's sockets, limits,
association acceptance and handlers (docs/dimse.md).

Each accepted TCP connection runs as one association thread. :meth:`Listener.stop` is the
graceful stop: no new connection is accepted, associations in progress may finish (up to the
grace period), and only then are the rest aborted. A C-STORE is acknowledged only after the
ingest pipeline has committed it, so nothing acknowledged is lost by stopping.
"""

from __future__ import annotations

import logging
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Self, cast

from django.conf import settings
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_GET, C_MOVE
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from carina.config.env import DicomTLS
from carina.dimse.association import CarinaAssociation, OwnService
from carina.dimse.conformance import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    supported_contexts,
)
from carina.dimse.find import FIND_HANDLERS
from carina.dimse.get import serve_get
from carina.dimse.handlers import HANDLERS
from carina.dimse.move import serve_move
from carina.dimse.transport import TunedAE, TunedAssociationSocket

logger = logging.getLogger(__name__)

MODE_ACCEPTOR = "acceptor"
#: Spooled data sets older than this at start-up were left by a crash; they are removed.
STALE_SPOOL_SECONDS = 3600
#: Services Carina serves with its own code rather than pynetdicom's event handlers, because
#: their sub-operations must stream stored files and fall back to another transfer syntax
#: (carina.dimse.move, carina.dimse.get).
OWN_SERVICES: dict[type, OwnService] = {C_MOVE: serve_move, C_GET: serve_get}


@dataclass(frozen=True)
class ListenerConfig:
    """How the listener binds and what it allows (docs/dimse.md, "Limits and timeouts")."""

    host: str = "127.0.0.1"
    port: int = 11112
    #: The AE title pynetdicom reports as its own; the called AE title of each request is
    #: checked against every hospital's AE titles, not against this one.
    ae_title: str = "CARINA"
    #: Associations served at once; more are rejected as transient, local limit exceeded.
    max_associations: int = 32
    #: Maximum PDU length Carina receives (bytes, PS3.8 D.1); 0 means no limit.
    max_pdu: int = 262_144
    #: Seconds to wait for the A-ASSOCIATE-RQ after connecting, and for A-RELEASE-RP.
    acse_timeout: float = 30.0
    #: Seconds to wait for a DIMSE message when Carina is the requestor on the association.
    dimse_timeout: float = 60.0
    #: Seconds an association may stay silent (also the socket timeout within a PDU).
    network_timeout: float = 120.0
    #: Seconds associations in progress get to finish when the listener stops.
    grace_period: float = 30.0
    #: TLS certificate, key and optional client CA; None serves plain TCP.
    tls: DicomTLS | None = None
    #: Folder for received data sets on their way to the ingest pipeline; None keeps
    #: Python's temporary folder. Setting it sets :data:`tempfile.tempdir` for the process.
    spool_dir: Path | None = None

    @classmethod
    def from_settings(cls, **overrides: Any) -> ListenerConfig:
        """The configuration from Carina's settings (``CARINA_DICOM_*``, ``CARINA_AE_TITLE``)."""
        config = cls(
            host=settings.CARINA_DICOM_HOST,
            port=int(settings.CARINA_DICOM_PORT),
            ae_title=settings.CARINA_AE_TITLE,
            max_associations=int(settings.CARINA_DICOM_MAX_ASSOCIATIONS),
            max_pdu=int(settings.CARINA_DICOM_MAX_PDU),
            tls=settings.CARINA_DICOM_TLS,
            spool_dir=Path(settings.CARINA_STAGING_DIR) / "dimse",
        )
        return replace(config, **overrides)


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket for several listener processes, made before they fork
    (``carina dicom``, docs/dimse.md): non-blocking, so that every process waits for
    connections and the first one free to accept takes each, the others going back to
    waiting. Raises OSError when the address cannot be bound."""
    sock = socket.create_server((host, port), backlog=128)
    sock.setblocking(False)
    return sock


def _adopting_server(listening: socket.socket) -> type[ThreadedAssociationServer]:
    """pynetdicom's threaded server, serving on an already listening socket."""

    class AdoptingServer(ThreadedAssociationServer):
        def server_bind(self) -> None:
            if self.socket is not None:
                self.socket.close()  # the one socketserver made; the shared one serves
            self.socket = listening
            self.server_address = listening.getsockname()

        def server_activate(self) -> None:
            pass  # listening already

        def server_close(self) -> None:
            # Close this process's descriptor only: a shutdown() would stop the others too.
            listening.close()

    return AdoptingServer


class CarinaRequestHandler(RequestHandler):
    """Creates a :class:`CarinaAssociation` on a :class:`TunedAssociationSocket` for each
    connection (mirrors pynetdicom 3.0's ``RequestHandler._create_association``).

    The supported contexts given here are the server's shared list, not a copy: the
    EVT_REQUESTED handler replaces them with the contexts for the actual request.
    """

    def _create_association(self) -> Association:
        assoc = CarinaAssociation(self.ae, MODE_ACCEPTOR)
        assoc.own_services = OWN_SERVICES
        assoc._server = self.server
        assoc.name = f"AcceptorThread@{datetime.now():%Y%m%d%H%M%S}"
        assoc.set_socket(TunedAssociationSocket(assoc, client_socket=self.request))
        assoc.acceptor.maximum_length = self.ae.maximum_pdu_size
        assoc.acceptor.ae_title = self.server.ae_title
        assoc.acceptor.address_info = self.local
        assoc.acceptor.implementation_class_uid = self.ae.implementation_class_uid
        assoc.acceptor.implementation_version_name = self.ae.implementation_version_name
        assoc.acceptor.supported_contexts = self.server.contexts
        assoc.requestor.address_info = self.remote
        for event in self.server.get_events():
            bound = self.server.get_handlers(event)
            pairs = [bound] if event.is_intervention else bound
            for handler, args in cast(list[tuple[Callable[..., Any] | None, Any]], pairs):
                if handler is not None:
                    assoc.bind(event, handler, args)
        return assoc


class Listener:
    """The DICOM listener: ``start()`` serves in background threads, ``stop()`` ends it."""

    def __init__(
        self, config: ListenerConfig | None = None, listening: socket.socket | None = None
    ) -> None:
        """``listening``: a socket from :func:`shared_socket` to serve on, instead of binding
        ``config.host:config.port``."""
        self.config = config or ListenerConfig.from_settings()
        self._listening = listening
        self.ae = self._build_ae()
        self._server: ThreadedAssociationServer | None = None
        self._thread: threading.Thread | None = None
        self._saved_tempdir: str | None = None

    def _build_ae(self) -> TunedAE:
        config = self.config
        ae = TunedAE(ae_title=config.ae_title)
        ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        ae.maximum_associations = config.max_associations
        ae.maximum_pdu_size = config.max_pdu
        ae.acse_timeout = config.acse_timeout
        ae.dimse_timeout = config.dimse_timeout
        ae.network_timeout = config.network_timeout
        ae.supported_contexts = supported_contexts()
        return ae

    @property
    def port(self) -> int:
        """The port listened on (the actual one when the configuration asked for 0)."""
        assert self._server is not None, "the listener is not started"
        return int(self._server.server_address[1])

    @property
    def active_associations(self) -> list[Association]:
        """Associations in progress."""
        return self._server.active_associations if self._server else []

    def start(self) -> Self:
        """Bind and serve in a background thread (raises OSError if the port is taken)."""
        config = self.config
        if config.spool_dir is not None:
            _prepare_spool(config.spool_dir)
            self._saved_tempdir = tempfile.tempdir
            tempfile.tempdir = str(config.spool_dir)
        server = self.ae.make_server(
            (config.host, config.port),
            ssl_context=server_ssl_context(config.tls) if config.tls else None,
            evt_handlers=[*HANDLERS, *FIND_HANDLERS],
            server_class=(
                ThreadedAssociationServer
                if self._listening is None
                else _adopting_server(self._listening)
            ),
            request_handler=CarinaRequestHandler,
        )
        server.daemon_threads = True
        self.ae._servers.append(server)  # pynetdicom's shutdown() removes it from there
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="carina-dicom-listener",
            daemon=True,
        )
        self._thread.start()
        logger.info(
            "DICOM listener on %s:%d%s (max %d associations, max PDU %d)",
            config.host,
            self.port,
            " over TLS" if config.tls else "",
            config.max_associations,
            config.max_pdu,
        )
        return self

    def stop(self, grace_period: float | None = None) -> int:
        """Stop accepting, let associations in progress finish, abort the rest.

        Returns how many associations had to be aborted after the grace period.
        """
        server, self._server = self._server, None
        if server is None:
            return 0
        server.shutdown()  # stops the accept loop and closes the listening socket
        if self._thread is not None:
            self._thread.join()
        grace = self.config.grace_period if grace_period is None else grace_period
        deadline = time.monotonic() + grace
        in_progress = server.active_associations
        if in_progress:
            logger.info("waiting for %d association(s) to finish", len(in_progress))
        for assoc in in_progress:
            _join_when_started(assoc, deadline)
        aborted = [assoc for assoc in in_progress if assoc.is_alive()]
        for assoc in aborted:
            logger.warning("aborting association still in progress after %.0f s", grace)
            assoc.abort()
            assoc.join(5)
        if self.config.spool_dir is not None:
            tempfile.tempdir = self._saved_tempdir
        logger.info("DICOM listener stopped")
        return len(aborted)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def server_ssl_context(tls: DicomTLS) -> ssl.SSLContext:
    """The listener's TLS context (PS3.15 B.1/B.9: TLS 1.2 or newer). With a CA, callers
    must present a certificate it signed; without, any caller may connect over TLS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=tls.cert, keyfile=tls.key)
    if tls.ca is not None:
        context.load_verify_locations(cafile=tls.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _prepare_spool(folder: Path) -> None:
    """Create the spool folder and remove data sets a crashed listener left behind."""
    folder.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - STALE_SPOOL_SECONDS
    for path in folder.glob("tmp*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


def _join_when_started(assoc: threading.Thread, deadline: float) -> None:
    """Wait for an association thread until ``deadline``; one accepted a moment before the
    stop may not have started yet (joining it would raise)."""
    while assoc.ident is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if assoc.ident is not None:
        assoc.join(max(0.0, deadline - time.monotonic()))
