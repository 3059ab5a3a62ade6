"""``carina serve`` starts on a fresh CARINA_HOME, answers health checks, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from carina.core.testing import free_port, wait_http


@pytest.mark.slow
def test_serve_migrates_starts_and_stops(tmp_path: Path) -> None:
    port, dicom_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARINA_")}
    env.update(
        CARINA_HOME=str(tmp_path / "home"),
        CARINA_HTTP_PORT=str(port),
        CARINA_DICOM_PORT=str(dicom_port),
        CARINA_DICOM_HOST="127.0.0.1",
    )
    stale = tmp_path / "home" / "staging" / "dead.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half an object")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = stale.with_name("receiving.part")
    fresh.write_bytes(b"being received now")
    proc = subprocess.Popen(
        [sys.executable, "-m", "carina", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_http(f"http://127.0.0.1:{port}/api/health/live/", timeout=90) == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/ready/") as response:
            body = json.load(response)
        assert body["status"] == "ok"
        assert body["checks"]["database"] == {"ok": True, "detail": "sqlite"}
        assert body["checks"]["storage"]["ok"] is True
        assert (tmp_path / "home" / "carina.sqlite3").exists()
        # The DICOM listener is one of the parts: DCMTK's echoscu gets an answer.
        deadline = time.monotonic() + 30
        while True:
            echo = subprocess.run(
                ["/usr/bin/echoscu", "-aec", "CARINA", "127.0.0.1", str(dicom_port)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if echo.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert echo.returncode == 0, echo.stderr
        # The admin signs in through Carina's own page (lock-out, second factor).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/") as response:
            assert "/accounts/login/" in response.url
            assert b"Sign in" in response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/admin/css/base.css") as css:
            assert css.headers["Content-Type"].startswith("text/css")
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "Removed 1 stale staging file(s)" in output
    assert not stale.exists()
    assert fresh.exists()
    assert f"Carina is ready: http://127.0.0.1:{port}/" in output
