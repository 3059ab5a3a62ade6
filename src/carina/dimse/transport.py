"""TCP sockets tuned for DIMSE, and pynetdicom's process-wide options.

A sender that leaves Nagle's algorithm on (DCMTK's default, most modalities) holds the data set
PDU that follows a C-STORE command until the command's segment is acknowledged, and the
receiving kernel delays that ACK by up to 40 ms: about 20 instances per second. Carina therefore
sets ``TCP_NODELAY`` on every socket it accepts or opens, and on Linux re-arms ``TCP_QUICKACK``
after every ``recv()`` (the kernel clears it), so that such senders are acknowledged at once
(measurements in ``shared/notes/dimse-performance.md``). pynetdicom sets neither option, so its
:class:`~pynetdicom.transport.AssociationSocket` is subclassed here rather than edited.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from pynetdicom import AE, _config
from pynetdicom.transport import AddressInformation, AssociationSocket

if TYPE_CHECKING:
    from ssl import SSLContext

    from pynetdicom.association import Association

#: ``TCP_QUICKACK`` exists on Linux only; elsewhere only ``TCP_NODELAY`` is set.
TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
#: Largest single ``recv()``: fewer system calls than pynetdicom's 4 KiB reads, while memory
#: still grows only as data arrives (a peer cannot make Carina allocate a claimed PDU length).
RECV_CHUNK = 64 * 1024


def configure_pynetdicom() -> None:
    """Set pynetdicom's process-wide options the way Carina needs them.

    * Received C-STORE data sets are written to a temporary file as they arrive, never held
      in memory (``STORE_RECV_CHUNKED_DATASET``); sent ones are streamed from their file.
    * pynetdicom's per-PDU debug handlers are not bound, and it does not format C-FIND
      identifiers for its log: both cost time on every message even when the log level
      drops them.
    """
    _config.STORE_RECV_CHUNKED_DATASET = True
    _config.STORE_SEND_CHUNKED_DATASET = True
    _config.LOG_HANDLER_LEVEL = "none"
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False


def tune_socket(sock: socket.socket) -> None:
    """Disable Nagle's algorithm and ask for immediate ACKs on a TCP socket."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        quickack(sock)
    except OSError:  # not a TCP socket (a test double) or already closed
        pass


def quickack(sock: socket.socket) -> None:
    """Re-arm ``TCP_QUICKACK`` (Linux clears it after it has been used)."""
    if TCP_QUICKACK is not None:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)


class TunedAssociationSocket(AssociationSocket):
    """pynetdicom's association socket with ``TCP_NODELAY`` and re-armed ``TCP_QUICKACK``.

    An accepted socket also gets ``network_timeout`` as its socket timeout, so that a peer that
    stops sending in the middle of a PDU cannot block the association's reader forever.
    """

    def __init__(
        self,
        assoc: Association,
        client_socket: socket.socket | None = None,
        address: AddressInformation | None = None,
    ) -> None:
        super().__init__(assoc, client_socket=client_socket, address=address)
        if client_socket is not None:
            tune_socket(client_socket)
            client_socket.settimeout(assoc.network_timeout)

    def _create_socket(self, address: AddressInformation) -> socket.socket:
        sock = super()._create_socket(address)
        tune_socket(sock)
        return sock

    def recv(self, nr_bytes: int) -> bytearray:
        """Read ``nr_bytes`` (fewer if the peer closes the connection), re-arming
        ``TCP_QUICKACK`` after each ``recv()``. Timeouts and errors propagate as in
        pynetdicom (the DUL turns them into a closed transport, Evt17)."""
        sock = self.socket
        assert sock is not None
        data = bytearray()
        while len(data) < nr_bytes:
            chunk = sock.recv(min(nr_bytes - len(data), RECV_CHUNK))
            if TCP_QUICKACK is not None:
                try:  # noqa: SIM105 (hot path: cheaper than contextlib.suppress)
                    sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
                except OSError:
                    pass
            if not chunk:
                break
            data += chunk
        return data


class TunedAE(AE):
    """An Application Entity whose outgoing associations use :class:`TunedAssociationSocket`."""

    def _create_socket(
        self,
        assoc: Association,
        address: AddressInformation,
        tls_args: tuple[SSLContext, str] | None,
    ) -> AssociationSocket:
        sock = TunedAssociationSocket(assoc, address=address)
        sock.tls_args = tls_args
        return sock
