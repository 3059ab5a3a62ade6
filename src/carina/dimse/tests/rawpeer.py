"""A DICOM peer on a bare TCP socket, for traffic no well-behaved SCU sends: a transfer cut
off half-way, a stalled or garbled PDU, a C-STORE whose SOP class is not its context's.

PDUs are encoded with pynetdicom's own classes (PS3.8 9.3), then written to the socket as the
test decides.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import decode
from pynetdicom.pdu import A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import build_context

A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA = 0x04
A_RELEASE_RQ = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"
A_ABORT = b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00"
MAX_PDU = 16384


def associate_rq(called: str, calling: str, contexts: list[tuple[str, str]]) -> bytes:
    """An encoded A-ASSOCIATE-RQ proposing (SOP class, transfer syntax) pairs as contexts
    1, 3, 5, …"""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = UID("1.2.840.10008.3.1.1.1")
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = MAX_PDU
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = UID("1.2.826.0.1.3680043.9.3811.0")
    primitive.user_information = [max_length, implementation]
    proposed = []
    for index, (sop_class, syntax) in enumerate(contexts):
        context = build_context(sop_class, syntax)
        context.context_id = 2 * index + 1
        proposed.append(context)
    primitive.presentation_context_definition_list = proposed
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return bytes(pdu.encode())


def c_store_pdus(
    context_id: int, sop_class: str, sop_instance: str, data_set: bytes
) -> list[bytes]:
    """The P-DATA-TF PDUs of one C-STORE-RQ: the command first, then the data set."""
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = sop_class
    request.AffectedSOPInstanceUID = sop_instance
    request.Priority = 2
    request.DataSet = BytesIO(data_set)
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    pdus = []
    for primitive in message.encode_msg(context_id, MAX_PDU):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        pdus.append(bytes(pdu.encode()))
    return pdus


class RawPeer:
    """One TCP connection to the listener."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_pdu(self) -> tuple[int, bytes]:
        header = self._read(6)
        pdu_type, _, length = struct.unpack(">BBL", header)
        return pdu_type, self._read(length)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the listener closed the connection")
            data += chunk
        return data

    def associate(
        self, contexts: list[tuple[str, str]], called: str = "CARINA", calling: str = "TESTSCU"
    ) -> None:
        self.send(associate_rq(called, calling, contexts))
        pdu_type, _ = self.read_pdu()
        assert pdu_type == A_ASSOCIATE_AC, f"association not accepted (PDU type {pdu_type})"

    def read_response(self) -> Dataset:
        """The next DIMSE response's command set (its Status and Error Comment)."""
        command = b""
        while True:
            pdu_type, body = self.read_pdu()
            assert pdu_type == P_DATA, f"expected P-DATA-TF, got PDU type {pdu_type}"
            offset = 0
            while offset < len(body):
                (length,) = struct.unpack(">L", body[offset : offset + 4])
                header = body[offset + 5]
                command += body[offset + 6 : offset + 4 + length]
                offset += 4 + length
                if header & 0x03 == 0x03:  # last fragment of a command
                    return decode(BytesIO(command), True, True)

    def release(self) -> None:
        self.send(A_RELEASE_RQ)
        self.read_pdu()
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
