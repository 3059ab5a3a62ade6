"""``carina serve`` and ``carina web``.

``serve`` migrates, then starts every part as a child process (the web server, the DICOM
listener, the background worker and its scheduler, beat), waits until
``/api/health/live/`` answers, and stops the children cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import FrameType

from carina.config.env import CarinaEnv, ConfigError, load_env


def run_web() -> int:
    """Run gunicorn (threaded workers) on CARINA_HTTP_HOST:CARINA_HTTP_PORT, in the foreground."""
    env = _env_or_exit()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carina.config.settings")
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "carina.config.wsgi:application",
        "--bind",
        f"{env.http_host}:{env.http_port}",
        "--workers",
        str(env.web_workers),
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--timeout",
        "300",
        "--graceful-timeout",
        "30",
        "--access-logfile",
        "-",
        "--log-level",
        env.log_level.lower(),
    ]
    os.execv(sys.executable, argv)


def _env_or_exit() -> CarinaEnv:
    try:
        return load_env()
    except ConfigError as exc:
        sys.stderr.write(f"carina: configuration error: {exc}\n")
        raise SystemExit(2) from exc


def _wait_live(url: str, children: list[subprocess.Popen[bytes]], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def _sweep_staging() -> int:
    """Remove staging files of interrupted transfers, and the metrics files of an earlier
    run's processes (their counters must not add to this run's)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carina.config.settings")
    import django

    django.setup()
    from carina.archive.ingest.pipeline import sweep_staging
    from carina.ops.metrics import reset_folder

    reset_folder()
    return sweep_staging()


def serve() -> int:
    """Migrate, start the parts, report readiness, supervise until told to stop."""
    env = _env_or_exit()
    python = sys.executable
    migrate = subprocess.run([python, "-m", "carina", "migrate"], check=False)
    if migrate.returncode != 0:
        sys.stderr.write("carina: migration failed; not starting.\n")
        return migrate.returncode
    removed = _sweep_staging()
    if removed:
        print(f"Removed {removed} stale staging file(s) left by an interrupted transfer.")
    parts = {
        "web": [python, "-m", "carina", "web"],
        "dicom": [python, "-m", "carina", "dicom"],
        # Background work (docs/routing.md): with no CARINA_BROKER_URL, the worker and beat
        # share the embedded queue under CARINA_HOME; nothing queued is lost if they die.
        "worker": [python, "-m", "carina", "worker"],
        "beat": [python, "-m", "carina", "beat"],
    }
    children = {name: subprocess.Popen(argv) for name, argv in parts.items()}
    stopping = False
    code = 0

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host = "127.0.0.1" if env.http_host in {"0.0.0.0", "::"} else env.http_host
    base = f"http://{host}:{env.http_port}"
    if _wait_live(f"{base}/api/health/live/", list(children.values())):
        print(f"Carina is ready: {base}/ (admin at {base}/admin/)", flush=True)
    else:
        sys.stderr.write("carina: the web server did not become ready; see the log above.\n")
        stopping, code = True, 1
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                sys.stderr.write(f"carina: {name} exited with code {child.returncode}.\n")
                stopping, code = True, 1
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=40)
        except subprocess.TimeoutExpired:
            child.kill()
    return code
