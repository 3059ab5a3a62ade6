"""C-MOVE SCP: Patient Root and Study Root Query/Retrieve – MOVE (PS3.4 C.4.2, C.6.1.1.x,
C.6.2.1.x).

The calling node must be allowed to retrieve; the Move Destination must be an enabled node of
the same hospital marked as a move destination. Carina then opens a new association to that
node's host and port (calling AE title: the hospital's AE title that was called) and sends the
selected instances with C-STORE, as stored where the destination accepts it
(:mod:`carina.dimse.sending`).

Statuses specific to C-MOVE (PS3.4 C.4.2.1.5, Table C.4-2):

* 0xA801 *Refused: Move Destination unknown*: the AE title is not a node of the hospital, or
  the node is disabled or not a move destination. Nothing is sent.
* 0xA702 *Refused: Out of Resources – Unable to perform sub-operations*: every sub-operation
  failed, including when no association with the destination could be established (refused,
  rejected, unreachable). PS3.4 C.4.2.3.1 counts a sub-operation that cannot be given an
  appropriate presentation context as Failed, and Table C.4-2 reserves 0xA801 for an unknown
  destination; DCMTK's dcmqrscp answers 0xA702 in the same case.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from pynetdicom.dimse_primitives import C_MOVE
from pynetdicom.presentation import PresentationContext

from carina.dimse import scu
from carina.dimse.association import CarinaAssociation, Peer
from carina.dimse.models import RemoteNode
from carina.dimse.nodes import node_for_ae
from carina.dimse.retrieve import (
    MOVE_DESTINATION_UNKNOWN,
    Batch,
    Operation,
    Refusal,
    run_sub_operations,
)
from carina.dimse.sending import Sender, batches_with_contexts

logger = logging.getLogger(__name__)


def move_destination(peer: Peer, ae_title: str | None) -> RemoteNode:
    """The node named by the Move Destination (raises Refusal 0xA801 if it may not be one)."""
    ae = (ae_title or "").strip()
    node = node_for_ae(peer.hospital, ae) if ae else None
    if node is None:
        reason = f"Move Destination {ae!r} is not a known node"
    elif not node.enabled:
        reason = f"Move Destination {ae} (node {node.name}) is disabled"
    elif not node.is_move_destination:
        reason = f"node {node.name} ({ae}) is not a move destination"
    else:
        return node
    raise Refusal(MOVE_DESTINATION_UNKNOWN, reason)


def serve_move(assoc: CarinaAssociation, request: C_MOVE, context: PresentationContext) -> None:
    """Answer one C-MOVE request on ``assoc`` (pending responses, then the final one)."""
    operation = Operation(assoc, request, context)
    try:
        peer = operation.check_allowed()
        node = move_destination(peer, request.MoveDestination)
        instances = operation.select(peer)
    except Refusal as refusal:
        operation.refuse(refusal)
        return
    except Exception:
        operation.fail_unexpectedly()
        return
    target = scu.Target(node.host, node.port, node.ae_title)
    timeout = float(assoc.dimse_timeout or 60)
    originator = (peer.calling_ae, int(request.MessageID or 0))
    batches: list[Batch] = [
        (group, _opener(target, contexts, peer.called_ae, originator, timeout))
        for group, contexts in batches_with_contexts(instances)
    ]
    run_sub_operations(operation, instances, batches)


def _opener(
    target: scu.Target,
    contexts: list[PresentationContext],
    calling_ae: str,
    originator: tuple[str, int],
    timeout: float,
) -> Callable[[], Sender | str]:
    def open_sender() -> Sender | str:
        stack = contextlib.ExitStack()
        try:
            store_assoc = stack.enter_context(
                scu.associate(target, contexts, calling_ae=calling_ae, timeout=timeout)
            )
        except scu.DimseError as exc:
            logger.warning("C-MOVE: %s", exc)
            return str(exc)
        return Sender(store_assoc, str(target), move_originator=originator, on_close=stack.close)

    return open_sender
