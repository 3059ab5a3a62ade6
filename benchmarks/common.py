"""Helpers shared by the benchmarks (``ingest.py``, ``dimse_ingest.py``, ``dicomweb.py``).

Child processes that are stopped whatever happens, a copy of ``src/carina`` so that every row
measures the same code, fresh databases, a private Orthanc, the machine description and the
in-place update of one section of BENCHMARKS.md. Progress goes to stderr.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, LiteralString, cast

if TYPE_CHECKING:
    from carina.tenancy.models import Hospital

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
SETTINGS_MODULE = "carina.config.settings"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
ORTHANC = "Orthanc"
MIB = 1 << 20


# --------------------------------------------------------------------------------------------
# Progress


def say(message: str) -> None:
    """Progress goes to stderr, so that stdout keeps only the table."""
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


class Progress:
    """Prints ``label: done/total`` on stderr at most every few seconds, and at the end."""

    def __init__(self, label: str, total: int, every: float = 5.0) -> None:
        self.label, self.total, self.every = label, total, every
        self.done = 0
        self.start = self.last = time.perf_counter()

    def tick(self) -> None:
        self.done += 1
        now = time.perf_counter()
        if self.done == self.total or now - self.last >= self.every:
            self.last = now
            say(f"    {self.label}: {self.done}/{self.total} ({now - self.start:.1f} s)")


def rss_kib(pid: int | str = "self") -> int:
    """Current resident set size of a process, in KiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stop_on_sigterm(signum: int, frame: object) -> None:
    """Signal handler: SIGTERM unwinds like Ctrl-C, so that ``finally`` blocks clean up."""
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------------------------
# Child process side: Django in a fresh CARINA_HOME after ``carina migrate``


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django

    django.setup()


def default_hospital() -> Hospital:
    """The hospital created by the first migration (slug ``default``)."""
    from carina.tenancy.lookups import hospital_by_slug

    hospital = hospital_by_slug("default")
    if hospital is None:
        raise SystemExit("no 'default' hospital: did carina migrate run?")
    return hospital


# --------------------------------------------------------------------------------------------
# Parent side: processes, code snapshot, databases


class Children:
    """Every process started here, stopped on the way out whatever happens."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen[bytes]] = []
        #: Processes started as leaders of their own process group (``group=True``): they are
        #: stopped together with the processes they forked (e.g. ``storescp --fork``).
        self.groups: set[int] = set()

    def start(
        self, argv: Sequence[str], *, group: bool = False, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        if group:
            kwargs["start_new_session"] = True
        proc: subprocess.Popen[bytes] = subprocess.Popen(argv, **kwargs)
        self.live.append(proc)
        if group:
            self.groups.add(proc.pid)
        return proc

    def _signal(self, proc: subprocess.Popen[bytes], signum: int) -> None:
        if proc.pid in self.groups:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.pid in self.groups:
            # The group may outlive its leader (forked children still finishing): end it.
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            self.groups.discard(proc.pid)
        self.live.remove(proc)

    def reap(self, proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int]:
        """Wait for ``proc`` (SIGTERM, then SIGKILL after ``timeout``); (exit code, maxrss).

        maxrss (KiB) is 0 if ``proc`` was already waited for by ``Popen.poll``.
        """
        if proc.returncode is not None:
            self._forget(proc)
            return proc.returncode, 0
        deadline = time.monotonic() + timeout
        signalled = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                if signalled:
                    self._signal(proc, signal.SIGKILL)
                else:
                    self._signal(proc, signal.SIGTERM)
                    signalled = True
                    deadline = time.monotonic() + 20
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        self._forget(proc)
        return proc.returncode, usage.ru_maxrss

    def stop_all(self) -> None:
        for proc in list(self.live):
            if proc.poll() is None:
                self._signal(proc, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    self._signal(proc, signal.SIGKILL)
                    proc.wait()
            self._forget(proc)


def snapshot_source(scratch: Path) -> tuple[Path, str]:
    """Copy ``src/carina`` aside so that every row measures the same code; (folder, digest).

    The working tree may change while the benchmark runs (other people work in it); the
    children import the copy (``PYTHONPATH`` comes before the editable install's path).
    The digest is a SHA-256 over the copied ``.py`` files, to name the code measured.
    """
    dest = scratch / "src"
    shutil.copytree(
        ROOT / "src" / "carina", dest / "carina", ignore=shutil.ignore_patterns("__pycache__")
    )
    digest = hashlib.sha256()
    for path in sorted(dest.rglob("*.py")):
        digest.update(path.relative_to(dest).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return dest, digest.hexdigest()[:12]


def carina_env(home: Path, database_url: str, code_dir: Path) -> dict[str, str]:
    """Environment of a Carina child: no inherited CARINA_* variable, only known ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARINA_")}
    env.update(
        CARINA_HOME=str(home),
        CARINA_DATABASE_URL=database_url,
        CARINA_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        PYTHONPATH=os.pathsep.join(p for p in (str(code_dir), env.get("PYTHONPATH", "")) if p),
    )
    return env


def pg_admin(template: LiteralString, name: str) -> None:
    """Run ``template`` (with ``{}`` for the database name) in the ``postgres`` database."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    ) as conn:
        conn.execute(sql.SQL(template).format(sql.Identifier(name)))


def pg_version() -> str | None:
    """The PostgreSQL server version, or None if it cannot be reached."""
    try:
        import psycopg

        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5
        ) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except Exception as exc:
        say(f"PostgreSQL at {PG_HOST}:{PG_PORT} is not usable ({exc}); skipping its rows.")
        return None
    return str(row[0]).split()[0] if row else "?"


@contextmanager
def database(kind: str, home: Path, name: str | None = None) -> Iterator[str]:
    """A fresh, empty database; yields its CARINA_DATABASE_URL and drops it afterwards.

    ``kind`` is ``SQLite`` (a file in ``home``) or ``PostgreSQL`` (database ``name``, by
    default ``carina_bench_PID``, created here and dropped on the way out).
    """
    if kind == "SQLite":
        yield f"sqlite:///{home / 'carina.sqlite3'}"
        return
    name = name or f"carina_bench_{os.getpid()}"
    pg_admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)
    pg_admin("CREATE DATABASE {}", name)
    try:
        yield f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        pg_admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "carina", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"carina migrate failed ({done.returncode}):\n{done.stderr}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Orthanc


def find_orthanc() -> str | None:
    """The Orthanc binary (Debian installs it in /usr/sbin), or None."""
    return shutil.which(ORTHANC) or shutil.which(ORTHANC, path="/usr/sbin:/usr/local/sbin")


def orthanc_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split()[-1] if first else "?"


def orthanc_get(port: int, url: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", url)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"Orthanc GET {url}: HTTP {response.status}")
        return cast(dict[str, Any], json.loads(body))
    finally:
        conn.close()


@dataclass
class Running:
    """A server process; ``code`` and ``maxrss_kib`` are filled in once it has been stopped."""

    proc: subprocess.Popen[bytes]
    code: int | None = None
    maxrss_kib: int = 0


@contextmanager
def orthanc_server(
    children: Children,
    binary: str,
    folder: Path,
    config: dict[str, Any],
    env: dict[str, str] | None = None,
) -> Iterator[Running]:
    """A private Orthanc with ``config`` (written to ``folder/orthanc.json``), ready to serve.

    Ready means that ``GET /system`` answers on ``config["HttpPort"]``. It is stopped (SIGTERM)
    on the way out; its log is ``folder/orthanc.log``.
    """
    (folder / "orthanc.json").write_text(json.dumps(config, indent=2))
    port = int(config["HttpPort"])
    with (folder / "orthanc.log").open("wb") as log:
        proc = children.start(
            [binary, str(folder / "orthanc.json")],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        running = Running(proc)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    log.flush()
                    tail = (folder / "orthanc.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"Orthanc exited at start-up:\n{tail}")
                try:
                    orthanc_get(port, "/system")
                    break
                except (OSError, RuntimeError):
                    if time.monotonic() > deadline:
                        raise RuntimeError("Orthanc did not answer in 60 s") from None
                    time.sleep(0.2)
            yield running
        finally:
            running.code, running.maxrss_kib = children.reap(proc, timeout=0)


# --------------------------------------------------------------------------------------------
# Reporting


def command(argv: list[str]) -> str:
    """``argv``'s standard output, or an empty string if it cannot run."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def machine(versions: dict[str, str]) -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "?"
    for line in command(["free", "-g"]).splitlines():
        if line.startswith("Mem:"):
            memory = line.split()[1]
    parts = [
        f"{command(['nproc']).strip() or os.cpu_count()} CPUs ({cpu})",
        f"{memory} GiB RAM (`free -g`)",
        f"Linux {command(['uname', '-r']).strip() or platform.release()}",
        f"Python {platform.python_version()}",
        *(f"{name} {version}" for name, version in versions.items()),
    ]
    return ", ".join(parts)


def git_tree() -> str:
    """The code measured, as the BENCHMARKS.md sections name it."""
    commit = command(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).strip()
    return f"git commit {commit} plus any uncommitted changes" if commit else "no git commit yet"


def wrap(text: str, width: int = 96) -> str:
    """Re-flow plain paragraphs (not tables, lists or headings) after interpolation."""
    blocks = []
    for block in text.split("\n\n"):
        if block.startswith(("|", "-", "#", " ")):
            blocks.append(block)
        else:
            blocks.append(textwrap.fill(" ".join(block.split()), width, break_on_hyphens=False))
    return "\n\n".join(blocks)


def update_benchmarks_md(title: str, text: str) -> None:
    """Replace (or append) the section headed ``title``; keep every other section."""
    if not BENCHMARKS_MD.exists():
        BENCHMARKS_MD.write_text(f"# Benchmarks\n\n{text}")
        return
    lines = BENCHMARKS_MD.read_text().splitlines(keepends=True)
    start = end = None
    fenced = False
    for n, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        if start is None and line.rstrip() == title:
            start = n
        elif start is not None and (line.startswith("## ") or line.startswith("# ")):
            end = n
            break
    if start is None:
        head = "".join(lines).rstrip("\n")
        BENCHMARKS_MD.write_text(f"{head}\n\n{text}")
        return
    before = "".join(lines[:start])
    after = "".join(lines[end:]) if end is not None else ""
    BENCHMARKS_MD.write_text(before + text + ("\n" + after if after else ""))


# --------------------------------------------------------------------------------------------
# Tables and statistics (added for benchmarks/dicomweb.py; the older scripts keep their own)


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile (``q`` in 0..1) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    """A plain-text table; the first ``left`` columns are left-aligned, the others right."""
    grid = [list(headers), *(list(r) for r in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(headers))]
    lines = []
    for n, line in enumerate(grid):
        lines.append(
            "  ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    """A Markdown table; the first ``left`` columns are left-aligned, the others right."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i < left else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def bullet(text: str, width: int = 96) -> str:
    """A Markdown list item, wrapped (``wrap`` leaves list items as they are)."""
    return textwrap.fill(
        text,
        width,
        initial_indent="- ",
        subsequent_indent="  ",
        break_on_hyphens=False,
        break_long_words=False,
    )
