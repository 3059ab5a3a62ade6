"""``carina dicom``: the DICOM listener in the foreground.

The listener runs in ``CARINA_DICOM_PROCESSES`` processes (default 2) that share one
listening socket: the first process binds it, then forks the others before any thread starts.
Each waits for connections, and whichever is free first accepts the next one, so that
associations from several modalities are served on several cores at once instead of taking
turns for one Python interpreter (docs/dimse.md, "Speed"). Each process serves up to
``CARINA_DICOM_MAX_ASSOCIATIONS`` associations.

SIGTERM or Ctrl-C stops it gracefully: no new association is accepted, associations in
progress finish (up to the grace period), then the process exits; the first process passes
the signal on and waits for the others. If one of them dies, the others stop too and the
command exits with 1, so that whatever supervises it (``carina serve``, systemd) restarts it.
If the first process itself is killed (SIGKILL passes nothing on), the others notice within
a second and stop, so that the port is free for the restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from types import FrameType

from django.conf import settings
from django.db import connection

from carina.cli.setup import fail
from carina.dimse.listener import Listener, ListenerConfig, shared_socket
from carina.tenancy.models import HospitalAETitle


def run_dicom() -> int:
    config = ListenerConfig.from_settings()
    processes = int(settings.CARINA_DICOM_PROCESSES)
    listening: socket.socket | None = None
    if processes > 1:
        try:
            listening = shared_socket(config.host, config.port)
        except OSError as exc:
            return _cannot_listen(config, exc)
    titles = ", ".join(HospitalAETitle.objects.values_list("ae_title", flat=True)) or "none"
    connection.close()  # each process (and each association thread) opens its own
    sys.stdout.flush()
    sys.stderr.flush()
    others: list[int] = []
    for _ in range(processes - 1):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _serve(config, listening, banner=None, others=[], parent=os.getppid())
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        others.append(pid)
    banner = f"AE titles: {titles}" + (f", {processes} processes" if processes > 1 else "")
    return _serve(config, listening, banner=banner, others=others)


def _cannot_listen(config: ListenerConfig, exc: OSError) -> int:
    return fail(
        f"cannot listen for DICOM on {config.host}:{config.port}: {exc.strerror or exc} "
        "(set CARINA_DICOM_HOST / CARINA_DICOM_PORT)"
    )


def _serve(
    config: ListenerConfig,
    listening: socket.socket | None,
    *,
    banner: str | None,
    others: list[int],
    parent: int | None = None,
) -> int:
    """Run one listener process until a signal, or until another process dies: in the first
    process, one of ``others``; in the others, the first (``parent``), which may have been
    killed without passing a signal on. Returns the exit code."""
    listener = Listener(config, listening)
    try:
        listener.start()
    except OSError as exc:
        _stop_others(others)
        return _cannot_listen(config, exc)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if banner is not None:
        print(f"Carina DICOM listener on {config.host}:{listener.port}, {banner}", flush=True)
    code = 0
    while not stop.wait(0.5):
        dead = _dead(others)
        if dead:
            sys.stderr.write(
                f"carina: DICOM listener process {dead} exited; stopping the others.\n"
            )
            code = 1
            break
        if parent is not None and os.getppid() != parent:
            sys.stderr.write("carina: the first DICOM listener process is gone; stopping.\n")
            code = 1
            break
    _stop_others(others)
    print(
        f"Stopping DICOM listener process {os.getpid()} "
        f"({len(listener.active_associations)} association(s) in progress)…",
        flush=True,
    )
    aborted = listener.stop()
    if aborted:
        print(f"{aborted} association(s) aborted after the grace period.", flush=True)
    for pid in others:
        _reap(pid)
    return code


def _dead(pids: list[int]) -> int | None:
    """A process of ``pids`` that has exited (reaped and removed from the list), if any."""
    for pid in list(pids):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            pids.remove(pid)
            return pid
    return None


def _stop_others(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
