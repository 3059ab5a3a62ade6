"""``carina dicom`` as an operator runs it: a foreground process that stores what DCMTK sends
and, on SIGTERM, lets the association in progress finish before it exits."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom.presentation import build_context

from carina.archive.models import Instance
from carina.core.testing import child_env, free_port, write_series
from carina.dimse import scu
from carina.dimse.tests.conftest import HOST, SCU_AE, dcmtk, scu_args
from carina.tenancy.models import Hospital

CT = "1.2.840.10008.5.1.4.1.1.2"


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _start(tmp_path: Path, settings: Any, **environ: str) -> tuple[int, subprocess.Popen[str]]:
    """``carina dicom`` on a free port of 127.0.0.1, answering C-ECHO; (port, process)."""
    port = free_port()
    env = child_env(
        tmp_path / "home",
        storage_url=f"file://{settings.CARINA_STORAGE.path}",
        CARINA_DICOM_HOST=HOST,
        CARINA_DICOM_PORT=str(port),
        **environ,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "carina", "dicom"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if not _wait_until(lambda: dcmtk("echoscu", *scu_args(port)).returncode == 0, 60):
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"carina dicom did not answer C-ECHO within 60 s:\n{output}")
    return port, proc


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_carina_dicom_stores_and_stops_gracefully(
    tmp_path: Path, settings: Any, hospital: Hospital
) -> None:
    port, proc = _start(tmp_path, settings)
    try:
        first = write_series(tmp_path / "first", 3)
        stored = dcmtk("storescu", *scu_args(port), *map(str, first))
        assert stored.returncode == 0, stored.stderr
        assert Instance.objects.for_hospital(hospital).count() == 3

        later = write_series(tmp_path / "later", 2)
        target = scu.Target(HOST, port, "CARINA")
        context = build_context(CT, ExplicitVRLittleEndian)
        with scu.associate(target, [context], SCU_AE) as assoc:
            assert assoc.send_c_store(later[0]).Status == 0x0000
            proc.send_signal(signal.SIGTERM)
            # New associations are refused at once; the open one goes on.
            assert _wait_until(lambda: dcmtk("echoscu", *scu_args(port)).returncode != 0, 10)
            assert assoc.send_c_store(later[1]).Status == 0x0000
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert f"Carina DICOM listener on {HOST}:{port}, AE titles: CARINA, 2 processes" in output
    # Each of the 2 processes stops; one had the association in progress.
    stopping = re.findall(r"Stopping DICOM listener process \d+ \((\d+) association", output)
    assert sorted(stopping) == ["0", "1"], output
    assert "aborted" not in output
    assert Instance.objects.for_hospital(hospital).count() == 5


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_carina_dicom_serves_on_several_processes_and_exits_when_one_dies(
    tmp_path: Path, settings: Any, hospital: Hospital
) -> None:
    port, proc = _start(tmp_path, settings, CARINA_DICOM_PROCESSES="3")
    try:
        assert _wait_until(lambda: len(_children(proc.pid)) == 2, 10)
        # Six associations at once, each with two images: all stored, whichever process.
        folders = [write_series(tmp_path / f"s{i}", 2) for i in range(6)]
        senders = [
            subprocess.Popen(["storescu", *scu_args(port), *map(str, files)]) for files in folders
        ]
        assert [sender.wait(60) for sender in senders] == [0] * 6
        assert Instance.objects.for_hospital(hospital).count() == 12
        # One process dies (killed): the command stops the others and exits with 1.
        victim = _children(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, output
    assert f"DICOM listener process {victim} exited; stopping the others" in output
    assert dcmtk("echoscu", *scu_args(port)).returncode != 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_when_the_first_process_is_killed_the_others_stop_and_free_the_port(
    tmp_path: Path, settings: Any, hospital: Hospital
) -> None:
    port, proc = _start(tmp_path, settings)
    try:
        assert _wait_until(lambda: len(_children(proc.pid)) == 1, 10)
        (child,) = _children(proc.pid)
        proc.kill()  # SIGKILL: nothing is passed on
        proc.communicate(timeout=30)

        def gone() -> bool:
            return not Path(f"/proc/{child}").exists() or "Z" in _state(child)

        assert _wait_until(gone, 30), "the other listener process still runs"
        assert dcmtk("echoscu", *scu_args(port)).returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"
