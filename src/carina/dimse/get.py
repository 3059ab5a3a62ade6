"""C-GET SCP: Patient Root and Study Root Query/Retrieve – GET (PS3.4 C.4.3, C.6.1.1.x,
C.6.2.1.x).

The C-STORE sub-operations go back over the requesting association, on the storage
presentation contexts the requestor proposed with SCP/SCU role selection (PS3.7 D.3.3.4), where
it is the Storage SCP and Carina the Storage SCU. The listener accepts that role for every
storage SOP class (:func:`carina.dimse.conformance.contexts_for_request`). An instance whose
SOP class has no such context, in its stored syntax or one Carina converts to
(:mod:`carina.dimse.sending`), is a failed sub-operation (PS3.4 C.4.3.3.1). Statuses as for
C-MOVE, without *Move Destination unknown* (Table C.4-3).
"""

from __future__ import annotations

from pynetdicom.dimse_primitives import C_GET
from pynetdicom.presentation import PresentationContext

from carina.dimse.association import CarinaAssociation
from carina.dimse.retrieve import Operation, Refusal, run_sub_operations
from carina.dimse.sending import Sender


def serve_get(assoc: CarinaAssociation, request: C_GET, context: PresentationContext) -> None:
    """Answer one C-GET request on ``assoc`` (C-STORE sub-operations on the same association,
    pending responses, then the final one)."""
    operation = Operation(assoc, request, context)
    try:
        peer = operation.check_allowed()
        instances = operation.select(peer)
    except Refusal as refusal:
        operation.refuse(refusal)
        return
    except Exception:
        operation.fail_unexpectedly()
        return
    sender = Sender(assoc, peer.calling_ae)
    run_sub_operations(operation, instances, [(instances, lambda: sender)])
