"""Negotiation choices, Error Comments and socket options, checked where they are decided."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
)
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_ECHO
from pynetdicom.presentation import PresentationContext, build_context, negotiate_as_acceptor

from carina.dimse import scu
from carina.dimse.conformance import (
    RETRIEVE_SOP_CLASSES,
    STORAGE_SOP_CLASSES,
    contexts_for_request,
    supported_contexts,
    supported_sop_classes,
)
from carina.dimse.handlers import error_comment
from carina.dimse.listener import Listener
from carina.dimse.tests.conftest import HOST, SCU_AE
from carina.dimse.tests.rawpeer import RawPeer
from carina.dimse.transport import TCP_QUICKACK, TunedAssociationSocket

SC = "1.2.840.10008.5.1.4.1.1.7"
CT = "1.2.840.10008.5.1.4.1.1.2"
UNCOMPRESSED = [ExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian]


def _negotiate(requested: list[tuple[str, list[str]]]) -> list[str | None]:
    contexts = []
    for index, (sop, syntaxes) in enumerate(requested):
        context = build_context(sop, syntaxes)
        context.context_id = 2 * index + 1
        contexts.append(context)
    result, _ = negotiate_as_acceptor(contexts, contexts_for_request(contexts))
    by_id = {cx.context_id: cx for cx in result}
    return [
        str(by_id[cx.context_id].transfer_syntax[0]) if by_id[cx.context_id].result == 0 else None
        for cx in contexts
    ]


def test_each_context_gets_the_syntax_its_requestor_prefers() -> None:
    # dcmsend's proposal for a folder of Secondary Captures in four syntaxes.
    accepted = _negotiate(
        [
            (SC, [DeflatedExplicitVRLittleEndian, *UNCOMPRESSED]),
            (SC, [JPEGLosslessSV1, *UNCOMPRESSED]),
            (SC, [JPEGBaseline8Bit]),
            (CT, [ImplicitVRLittleEndian, ExplicitVRLittleEndian]),
            (CT, [HTJ2KLossless]),
            ("1.2.3.4.5.6", [ExplicitVRLittleEndian]),  # not a storage class Carina knows
        ]
    )
    assert accepted == [
        DeflatedExplicitVRLittleEndian,
        JPEGLosslessSV1,
        JPEGBaseline8Bit,
        ImplicitVRLittleEndian,
        HTJ2KLossless,
        None,
    ]


def test_the_listener_supports_verification_and_every_storage_class() -> None:
    assert supported_sop_classes()[0] == "1.2.840.10008.1.1"
    assert len(STORAGE_SOP_CLASSES) > 150
    assert CT in STORAGE_SOP_CLASSES
    contexts: list[PresentationContext] = supported_contexts()
    assert len(contexts) == len(supported_sop_classes())  # one context per SOP class
    assert set(STORAGE_SOP_CLASSES) | set(RETRIEVE_SOP_CLASSES) <= set(supported_sop_classes())


@pytest.mark.parametrize(
    ("text", "comment"),
    [
        ("StudyInstanceUID (0020,000D) is missing", "StudyInstanceUID (0020,000D) is missing"),
        ("a\\b\r\nc", "a/b c"),
        ("x" * 80, "x" * 61 + "..."),
        ("naïve", "na?ve"),
    ],
)
def test_error_comments_are_valid_lo_values(text: str, comment: str) -> None:
    assert error_comment(text) == comment
    assert len(error_comment(text)) <= 64


class _RecordingSocket:
    """Stands in for a TCP socket: hands out data in chunks, records socket options."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.options: list[tuple[int, int, int]] = []

    def recv(self, size: int) -> bytes:
        return self.chunks.pop(0)[:size] if self.chunks else b""

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.options.append((level, option, value))


def test_quickack_is_rearmed_after_every_recv() -> None:
    assert TCP_QUICKACK is not None, "Carina runs on Linux, which has TCP_QUICKACK"
    sock = TunedAssociationSocket.__new__(TunedAssociationSocket)
    fake = _RecordingSocket([b"\x04\x00", b"\x00\x00", b"\x00\x02", b"ab"])
    sock.socket = fake  # type: ignore[assignment]
    assert sock.recv(8) == b"\x04\x00\x00\x00\x00\x02ab"
    assert fake.options == [(socket.IPPROTO_TCP, TCP_QUICKACK, 1)] * 4
    fake.chunks = [b"xy"]
    assert sock.recv(4) == b"xy"  # the peer closed: what arrived is returned


@pytest.mark.django_db(transaction=True)
def test_both_ends_of_an_association_disable_nagle(
    make_listener: Callable[..., Listener],
) -> None:
    listener = make_listener()
    target = scu.Target(HOST, listener.port, "CARINA")
    with scu.associate(target, [build_context("1.2.840.10008.1.1")], SCU_AE) as assoc:
        [server_side] = listener.active_associations
        for side in (assoc, server_side):
            assert isinstance(side, Association)
            sock = side.dul.socket.socket  # type: ignore[union-attr]
            assert sock is not None
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@pytest.mark.django_db(transaction=True)
def test_an_answer_is_taken_only_by_the_request_that_waits_for_it(
    make_listener: Callable[..., Listener],
) -> None:
    """pynetdicom's reactor may pass its pause just as a request is sent (carina.dimse.reactor):
    while a request waits (checkpoint cleared), the reactor's non-blocking look at the queue
    finds nothing, and the waiting request gets its answer. Without the guard the reactor took
    the answer and the request stalled until the network timeout."""
    listener = make_listener()
    target = scu.Target(HOST, listener.port, "CARINA")
    with scu.associate(target, [build_context("1.2.840.10008.1.1")], SCU_AE) as assoc:
        assert assoc.send_c_echo().Status == 0x0000
        answer = (1, C_ECHO())  # any DIMSE message: it is only passed along
        assoc._reactor_checkpoint.clear()  # a request is on its way …
        try:
            assoc.dimse.msg_queue.put(answer)  # … and its answer has arrived
            assert assoc.dimse.get_msg(block=False) == (None, None)  # the reactor's look
            assert assoc.dimse.get_msg(block=True) == answer  # the waiting request's
        finally:
            assoc._reactor_checkpoint.set()
        assert assoc.send_c_echo().Status == 0x0000  # and the association goes on


@pytest.mark.django_db(transaction=True)
def test_idle_associations_leave_the_listener_asleep(listener: Listener) -> None:
    """Associations that send nothing cost the listener (practically) no CPU: its loops wait
    for the socket and their queues instead of polling every millisecond, as pynetdicom's do
    (carina.dimse.wakeups). Eight idle associations polled away about a fifth of a core."""
    peers = [RawPeer(listener.port) for _ in range(8)]
    try:
        for peer in peers:
            peer.associate([(CT, ExplicitVRLittleEndian)])
        time.sleep(0.3)  # the associations are set up and idle
        before = time.process_time()
        time.sleep(1.0)
        used = time.process_time() - before
        # Still served: a C-ECHO on a fresh association is answered.
        assert scu.echo(HOST, listener.port, "CARINA", SCU_AE).status == 0x0000
    finally:
        for peer in peers:
            peer.release()
    assert used < 0.05, f"{used:.3f} s of CPU in 1 s with 8 idle associations"
