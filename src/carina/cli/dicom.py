"""``carina dicom``: the DICOM listener in the foreground.

SIGTERM or Ctrl-C stops it gracefully: no new association is accepted, associations in
progress finish (up to the grace period), then the process exits.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from django.db import connection

from carina.cli.setup import fail
from carina.dimse.listener import Listener, ListenerConfig
from carina.tenancy.models import HospitalAETitle


def run_dicom() -> int:
    config = ListenerConfig.from_settings()
    listener = Listener(config)
    try:
        listener.start()
    except OSError as exc:
        return fail(
            f"cannot listen for DICOM on {config.host}:{config.port}: {exc.strerror or exc} "
            "(set CARINA_DICOM_HOST / CARINA_DICOM_PORT)"
        )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    titles = ", ".join(HospitalAETitle.objects.values_list("ae_title", flat=True)) or "none"
    print(
        f"Carina DICOM listener on {config.host}:{listener.port}, AE titles: {titles}",
        flush=True,
    )
    connection.close()  # the association threads open their own
    while not stop.wait(0.5):
        pass
    in_progress = len(listener.active_associations)
    print(f"Stopping the DICOM listener ({in_progress} association(s) in progress)…", flush=True)
    aborted = listener.stop()
    if aborted:
        print(f"{aborted} association(s) aborted after the grace period.", flush=True)
    return 0
