"""What the listener knows about one accepted association, and its clean end.

Each association runs in its own thread (pynetdicom's :class:`Association`). Carina's subclass
keeps the admitted peer (hospital, calling AE, node) and counts its operations; when the thread
ends, however it ends (release, abort, dropped connection, timeout), it removes data sets that
were spooled to disk but never handed to the archive and closes the thread's database
connection.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from dataclasses import dataclass
from typing import Any

from django.db import connections
from pynetdicom.association import Association

from carina.dimse.models import RemoteNode, Service
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


class CarinaAssociation(Association):
    """An acceptor association with Carina's per-association state."""

    peer: Peer | None = None
    stored: int = 0
    refused: int = 0

    def run(self) -> None:
        started = time.monotonic()
        try:
            super().run()
        finally:
            self.discard_spooled_data_sets()
            connections.close_all()
            if self.peer is not None:
                logger.info(
                    "association %s ended (%s): %d stored, %d refused, %.1f s",
                    self.peer,
                    _ending(self),
                    self.stored,
                    self.refused,
                    time.monotonic() - started,
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
