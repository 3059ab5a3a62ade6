"""A guard for a race in pynetdicom 3.0's association reactor, on associations Carina opens.

An association's reactor thread takes every complete DIMSE message off the queue and serves
it as a request. Before the user's thread sends a request and waits for its response
(``send_c_store``, ``send_c_echo``, …), it pauses the reactor: it clears the reactor's
checkpoint and waits until the reactor says it is paused. But the reactor says "paused" just
before it waits on the checkpoint, and stops saying so just after: when the checkpoint is
cleared in between, the user's thread sees "paused" while the reactor has already passed the
checkpoint, and the reactor then takes the response off the queue, serves it as a request
(which does nothing) and the user's thread waits for it until the DIMSE timeout.

Seen while forwarding (docs/routing.md): on a loaded machine about one send in five of 300
instances stalled for the whole network timeout, the destination having answered every
request it received (both sides idle, every byte acknowledged).

:func:`guard_reactor` closes the race without changing pynetdicom: the reactor asks for
messages with ``get_msg(block=False)``, the user's thread with ``block=True``, so the
association's ``get_msg`` answers the reactor "nothing" while the checkpoint is cleared. A
response is then only ever taken by the thread that waits for it.
"""

from __future__ import annotations

from typing import Any

from pynetdicom.association import Association


def guard_reactor(assoc: Association) -> None:
    """Keep ``assoc``'s reactor from taking messages while a request waits for its answer
    (see the module's docstring). Call it on an established association before its first
    request."""
    dimse = assoc.dimse
    take = dimse.get_msg
    checkpoint = assoc._reactor_checkpoint

    def get_msg(block: bool = False) -> Any:
        if not block and not checkpoint.is_set():
            return None, None
        return take(block)

    dimse.get_msg = get_msg  # type: ignore[method-assign]
