"""What the listener knows about one accepted association, and its clean end.

Each association runs in its own thread (pynetdicom's :class:`Association`). Carina's subclass
keeps the admitted peer (hospital, calling AE, node) and counts its operations (in memory, per
study, for the audit trail: :mod:`carina.dimse.auditing`); when the thread ends, however it ends
(release, abort, dropped connection, timeout), it removes data sets that were spooled to disk
but never handed to the archive, records the association's audit events and closes the thread's
database connection.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connections
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

from carina.core import request_id
from carina.dimse.auditing import Transfers, record_association
from carina.dimse.models import RemoteNode, Service
from carina.dimse.wakeups import WakefulDUL, WakingQueue, wait_for_work
from carina.tenancy.models import Hospital

logger = logging.getLogger(__name__)

#: What a calling AE title that is not a known node may do when its hospital's policy accepts
#: it: verify and store (so that a first run works). Query and retrieve need a known node.
UNKNOWN_PEER_SERVICES = frozenset({Service.ECHO, Service.STORE})


@dataclass(frozen=True)
class Peer:
    """An admitted requestor: the hospital its called AE title picked, and who it is."""

    hospital: Hospital
    called_ae: str
    calling_ae: str
    address: str
    #: The known node with the calling AE title, or None (unknown, accepted by policy).
    node: RemoteNode | None

    def may(self, service: Service) -> bool:
        """Whether this peer may use ``service``."""
        if self.node is None:
            return service in UNKNOWN_PEER_SERVICES
        return self.node.may(service)

    def __str__(self) -> str:
        who = f"node {self.node.name!r}" if self.node else "unknown node"
        return (
            f"{self.calling_ae} ({who}, {self.address}) → {self.called_ae} "
            f"(hospital {self.hospital.slug!r})"
        )


#: A service Carina implements itself: called with the association, the request primitive and
#: its accepted presentation context, it sends every response itself.
OwnService = Callable[["CarinaAssociation", Any, PresentationContext], None]


class CarinaAssociation(Association):
    """An acceptor association with Carina's per-association state."""

    peer: Peer | None = None
    stored: int = 0
    refused: int = 0
    #: Instances sent by C-MOVE and C-GET sub-operations (completed or with a warning).
    sent: int = 0
    #: Services served by Carina's own code instead of pynetdicom's service classes, by
    #: request primitive class (the listener sets C-MOVE and C-GET: docs/dimse.md).
    own_services: Mapping[type, OwnService] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Per-study counts and other operations, written to the audit trail at the end.
        self.transfers = Transfers()
        # Event-driven loops instead of pynetdicom's 1 ms polling (carina.dimse.wakeups).
        self._work = threading.Event()
        self.dul = WakefulDUL(self, self._work.set)
        self.dimse.msg_queue = WakingQueue(self._work.set)
        # The timeouts set the timers of the DUL they find: give them to the new one.
        self.acse_timeout = self.acse_timeout
        self.network_timeout = self.network_timeout

    def kill(self) -> None:
        super().kill()
        self._work.set()

    def _run_reactor(self) -> None:
        """The acceptor's loop (pynetdicom 3.0's ``Association._run_reactor``, with its 1 ms
        sleep replaced by :func:`~carina.dimse.wakeups.wait_for_work`): serve each complete
        DIMSE message; end on the peer's A-RELEASE-RQ (answered, PS3.8 7.2) or A-ABORT, when
        the DUL has stopped, or when the network time-out passes."""
        self._is_paused = False
        while not self._kill:
            wait_for_work(self, self._work)
            # Paused while Carina's own code sends requests on this association.
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False
            context_id, msg = self.dimse.get_msg(block=False)
            if msg and context_id is not None:
                self._serve_request(msg, context_id)
            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return
            if self.acse.is_aborted():
                self.dul.receive_pdu(wait=False)  # so that EVT_ACSE_RECV fires
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return
            if not self.dul.is_alive():
                self.kill()
                return
            if self.dul.idle_timer_expired():
                logger.warning("network time-out: no PDU from %s; aborting", self.peer)
                self.abort()
                self.kill()
                return

    def _serve_request(self, msg: Any, context_id: int) -> None:
        """Serve a request with Carina's own service for its primitive class, if any, else as
        pynetdicom does (mirrors pynetdicom 3.0's ``Association._serve_request``: pending
        C-CANCELs are cleared, and the reactor counts as paused so that the service may send
        C-STORE requests on this association)."""
        serve = self.own_services.get(type(msg))
        context = self._accepted_cx.get(context_id)
        if serve is None or context is None or self._sent_release or not msg.is_valid_request:
            super()._serve_request(msg, context_id)
            return
        self.dimse.cancel_req = {}
        self._is_paused = True
        try:
            serve(self, msg, context)
        except Exception:
            logger.exception("%s from %s failed; aborting the association", msg.msg_type, self.peer)
            self.abort()
            return
        finally:
            self.dimse.cancel_req = {}
        self._is_paused = False

    def run(self) -> None:
        # One correlation ID per association: on its log lines and audit events.
        with request_id.bind():
            self._run()

    def _run(self) -> None:
        started = time.monotonic()
        try:
            super().run()
        finally:
            self.discard_spooled_data_sets()
            seconds = time.monotonic() - started
            ending = _ending(self)
            try:
                if self.peer is not None:
                    record_association(self, ending, seconds)
            finally:
                connections.close_all()
            if self.peer is not None:
                logger.info(
                    "association %s ended (%s): %d stored, %d refused, %d sent, %.1f s",
                    self.peer,
                    ending,
                    self.stored,
                    self.refused,
                    self.sent,
                    seconds,
                )

    def discard_spooled_data_sets(self) -> None:
        """Delete temporary files of C-STORE data sets that were not handled: one cut off
        mid-transfer, and complete ones still queued when the association ended."""
        message = self.dimse.message
        if message is not None:
            _discard(message._data_set_file)
        while True:
            try:
                _, primitive = self.dimse.msg_queue.get_nowait()
            except queue.Empty:
                break
            _discard(getattr(primitive, "_dataset_file", None))


def _discard(handle: Any) -> None:
    if handle is None:
        return
    try:
        handle.close()
        os.unlink(handle.name)
    except OSError:
        pass


def _ending(assoc: Association) -> str:
    if assoc.is_released:
        return "released"
    if assoc.is_aborted:
        return "aborted"
    return "connection closed"
