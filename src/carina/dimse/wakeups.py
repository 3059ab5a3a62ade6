"""Event-driven waits for pynetdicom's two per-association loops (docs/dimse.md, "Speed").

pynetdicom 3.0 runs each association as two polling loops. The DUL thread (PS3.8 9.2, the
state machine) sleeps 1 ms whenever a turn found nothing to do, and the association's
reactor, which serves the DIMSE messages, sleeps 1 ms on every turn. A C-STORE crosses them
three times (request in, message to the reactor, response out), and each time it could wait
for a sleep to end. What a listener that answers every C-STORE at once costs per object is
measured in BENCHMARKS.md (the "Python DIMSE" column of the floor table).

Here the loops wait for what they wait for instead:

* :class:`WakefulDUL` blocks in ``select()`` on the peer's socket and on a wake-up socket
  pair, which every ``put`` into its queues (a primitive to send, a state machine event)
  writes to. Incoming data and outgoing responses are handled at once; an idle association
  costs no CPU.
* :func:`wait_for_work` lets the association's reactor sleep on an event that the DIMSE
  message queue and the DUL's queue to the user set.

Both still wake at least every :data:`IDLE_WAIT` seconds, so that pynetdicom's timers (ARTIM,
network idle time-out) and kill flags are checked as before, only with that much less
precision (timeouts are whole seconds).
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynetdicom.dul import DULServiceProvider

if TYPE_CHECKING:
    from pynetdicom.association import Association

#: Longest wait of either loop when nothing arrives (seconds).
IDLE_WAIT = 0.05


class WakingQueue(queue.Queue[Any]):
    """A queue that calls ``wake`` after each ``put``."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake()


class WakefulDUL(DULServiceProvider):
    """pynetdicom's DUL service provider, waiting in ``select()`` instead of sleeping.

    The reactor loop of the base class is kept; its sleep is set to nothing and the wait
    happens in :meth:`_is_transport_event`, which the loop calls when it has no primitive to
    send, and which blocks only when no state machine event is pending either.
    """

    def __init__(self, assoc: Association, wake_user: Callable[[], None]) -> None:
        super().__init__(assoc)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._run_loop_delay = 0
        self._wake_user = wake_user
        self.to_provider_queue = WakingQueue(self.wake)
        self.event_queue = WakingQueue(self.wake)
        self.to_user_queue = WakingQueue(wake_user)

    def wake(self) -> None:
        """Interrupt the DUL thread's wait (from any thread; never blocks)."""
        # OSError: a wake-up is already pending (buffer full), or the DUL has ended.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _is_transport_event(self) -> bool:
        if self.event_queue.empty() and self.to_provider_queue.empty():
            self._wait()
        return bool(super()._is_transport_event())

    def _wait(self) -> None:
        """Wait until the peer sends, a queue is written to, or :data:`IDLE_WAIT` passes."""
        waiting: list[Any] = [self._wake_r]
        assoc_socket = self.socket
        sock = assoc_socket.socket if assoc_socket is not None else None
        if sock is not None and getattr(assoc_socket, "_is_connected", False):
            pending = getattr(sock, "pending", None)  # TLS: decrypted bytes already buffered
            if pending is not None and pending():
                return
            waiting.append(sock)
        try:
            ready, _, _ = select.select(waiting, [], [], IDLE_WAIT)
        except (OSError, ValueError):  # the socket was closed meanwhile: let the base see it
            return
        if self._wake_r in ready:
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass

    def kill_dul(self) -> None:
        super().kill_dul()
        self.wake()

    def stop_dul(self) -> bool:
        """Stop the thread if the state machine is idle (Sta1), waiting until it has ended."""
        if self.state_machine.current_state != "Sta1":
            return False
        self._kill_thread = True
        self.wake()
        if self.is_alive() and self is not threading.current_thread():
            self.join()
        return True

    def run_reactor(self) -> None:
        try:
            super().run_reactor()
        finally:
            self._wake_user()  # the association notices that the DUL has ended
            self._wake_r.close()
            self._wake_w.close()


def wait_for_work(assoc: Association, wake: threading.Event) -> None:
    """The association reactor's wait between turns: until a DIMSE message or an ACSE
    primitive is queued for it, or :data:`IDLE_WAIT` passes."""
    if assoc.dimse.msg_queue.empty() and assoc.dul.to_user_queue.empty():
        wake.wait(IDLE_WAIT)
    wake.clear()
