"""Carina's DICOM listener with every C-STORE answered at once and nothing stored: what the
DIMSE layer (pynetdicom, with Carina's sockets and event-driven loops) costs per object, the
floor of any receiver written in Python on it. Used by ``cstore_floor.py``.

Run as ``python noop_listener.py PORT COUNT_FILE`` with Carina's environment (a migrated
CARINA_HOME); prints ``ready`` once it listens, writes the number of C-STOREs answered to
COUNT_FILE whenever an association ends, and stops on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import django

django.setup()

from pynetdicom import evt  # noqa: E402

from carina.dimse import handlers, listener  # noqa: E402
from carina.dimse.transport import configure_pynetdicom  # noqa: E402


def main() -> None:
    port, count_file = int(sys.argv[1]), Path(sys.argv[2])
    answered = 0
    lock = threading.Lock()

    def store(event: Any) -> int:
        nonlocal answered
        with lock:
            answered += 1
        return 0x0000

    def ended(event: Any) -> None:
        with lock:
            count_file.write_text(str(answered))

    configure_pynetdicom()
    listener.HANDLERS = [
        *((e, store if e is evt.EVT_C_STORE else h) for e, h in handlers.HANDLERS),
        (evt.EVT_RELEASED, ended),
    ]
    config = listener.ListenerConfig.from_settings(host="127.0.0.1", port=port)
    server = listener.Listener(config).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *args: stop.set())
    print("ready", flush=True)
    stop.wait()
    server.stop(grace_period=5)


if __name__ == "__main__":
    main()
