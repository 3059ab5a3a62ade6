"""Forwarding throughput of Carina's routing (C-STORE to a destination node), with DCMTK's
storescu sending the same files straight to the same receiver beside it (the ceiling).

Run ``.venv/bin/python benchmarks/routing.py`` (``--quick`` for a short development run that
does not touch BENCHMARKS.md; ``--no-write``; ``--no-worker``; ``--postgres``).

Data: one synthetic CT study per image size (``carina.core.testing.write_series``; 300 x
128x128 and 100 x 512x512 by default), each made of 4 series of a quarter of the slices, is
loaded into a fresh Carina (fresh ``CARINA_HOME``, fresh SQLite database, ``carina migrate``
and ``carina import``, untimed) running on a copy of ``src/carina``.

Receiver: ``/usr/bin/storescp --fork +xa`` writing to a fresh folder for every row
(``TCP_NODELAY=1``), registered in Carina as the send destination ``bench-storescp`` with
``carina nodes add … --move-destination --max-associations 1|4`` before each Carina row.

One transfer is sent over one association (docs/routing.md; ``runner.claim``), and a node's
``max_associations`` caps how many transfers to it run at once. So the 1-association rows
send the whole study as one transfer, and the 4-association rows send its 4 series as 4
transfers at once (node limit 4). Carina rows are timed from a start signal until storescp
has written every instance (polled every 10 ms). The paths measured:

- ``carina send``: the ``carina send`` command's code (``carina.cli.send.run_send``: creates
  the transfer, then sends it in-process) in child processes that have already set up Django
  and wait for a start signal (so Python and Django start-up are not timed): 1 child with
  ``--study``, or 4 children with ``--series`` each.
- ``worker``: ``carina worker --concurrency 4`` (already running, embedded queue) sends
  transfers created by ``do_send`` in a prepared child (``carina send --queue``'s path);
  timed from the start signal until storescp has written every instance.
- ``storescu``: ``storescu +sd +r`` with the same original files (``TCP_NODELAY=1``): 1
  process with all files, or 4 processes at once with one series each.

Every row is verified: storescp must have written one file per SOP Instance UID sent, and the
Carina rows' files must have the same total size as the storescu row's (same receiver, same
objects). Progress goes to stderr, the table to stdout; a full run replaces the section
``## Routing: forwarding throughput (benchmarks/routing.py)`` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    BENCHMARKS_MD,
    MIB,
    Children,
    bullet,
    carina_env,
    command,
    database,
    default_hospital,
    free_port,
    git_tree,
    machine,
    markdown_table,
    migrate,
    pg_version,
    say,
    setup_django,
    snapshot_source,
    stop_on_sigterm,
    text_table,
    update_benchmarks_md,
    wrap,
)

SECTION_TITLE = "## Routing: forwarding throughput (benchmarks/routing.py)"
STORESCU, STORESCP, ECHOSCU = "/usr/bin/storescu", "/usr/bin/storescp", "/usr/bin/echoscu"
HOST = "127.0.0.1"
STORESCP_AE, SCU_AE = "STORESCP", "BENCHSCU"
NODE = "bench-storescp"
PARTS = 4
GO = b"go\n"
#: Imported by a prepared child before the start signal (see ``child``).
WARM_MODULES = (
    "carina.config.celery",
    "carina.routing.tasks",
    "carina.routing.dimse_send",
    "carina.routing.rules",
    "pynetdicom",
)
HEADERS = [
    "path",
    "image",
    "assoc.",
    "instances",
    "seconds",
    "instances/s",
    "MB/s",
    "vs storescu",
    "exit s",
    "verified",
]


# --------------------------------------------------------------------------------------------
# What is measured


@dataclass(frozen=True)
class Study:
    """One synthetic study: its files, per series (one folder each), and its UIDs."""

    image: str
    folder: Path
    study_uid: str
    series: tuple[tuple[str, Path], ...]  # (SeriesInstanceUID, folder)
    sop_uids: frozenset[str]
    total_bytes: int

    @property
    def count(self) -> int:
        return len(self.sop_uids)


@dataclass
class Row:
    path: str  # storescu, carina send, worker
    image: str
    associations: int
    sent: int
    total_bytes: int
    seconds: float | None = None
    #: Carina rows: seconds from the start until the last child process had exited.
    exited: float | None = None
    received: int | None = None
    received_bytes: int | None = None
    error: str = ""
    vs_storescu: float | None = None
    same_bytes: bool | None = None
    #: SOP Instance UID → SHA-256 of the data set storescp wrote (file meta excluded).
    digests: dict[str, str] = field(default_factory=dict)
    #: One received file (the lowest SOP Instance UID), to say what differs from storescu's.
    sample: bytes = b""

    @property
    def ok(self) -> bool:
        return not self.error and self.seconds is not None and self.received == self.sent

    @property
    def per_second(self) -> float | None:
        return self.sent / self.seconds if self.ok and self.seconds else None


def cells(row: Row) -> list[str]:
    if not row.ok:
        failed = f"FAILED: {row.error}"[:120]
        return [row.path, row.image, str(row.associations), str(row.sent), *"———", "", "", failed]
    assert row.seconds is not None and row.per_second is not None
    verified = f"{row.received}/{row.sent}"
    if row.same_bytes is True:
        verified += ", same bytes"
    elif row.same_bytes is False:
        verified += ", DATA SETS DIFFER"
    return [
        row.path,
        row.image,
        str(row.associations),
        str(row.sent),
        f"{row.seconds:.2f}",
        f"{row.per_second:.1f}",
        f"{row.total_bytes / MIB / row.seconds:.1f}",
        f"{row.vs_storescu:.2f}" if row.vs_storescu is not None else "",
        f"{row.exited:.2f}" if row.exited is not None else "",
        verified,
    ]


# --------------------------------------------------------------------------------------------
# Child process side (``--child send|queue|uids``): Django set up, then wait for ``go``


def child(mode: str, uids: list[str]) -> int:
    """Set up Django, say ``ready``, wait for ``go`` on stdin, then send or queue ``uids``.

    ``send``: ``carina send --study|--series UID --to NODE`` (``run_send``: create the
    transfer and send it in this process). ``queue``: create the transfers only, for the
    worker (``carina send --queue``). The first UID is a study if ``--study`` was given.
    """
    setup_django()
    from carina.cli.send import run_send
    from carina.dimse.nodes import node_by_name
    from carina.routing.actions import Requester, do_send
    from carina.routing.models import Origin

    # What a long-running process (web server, worker) has imported already; the command
    # imports it lazily, which would otherwise be timed (about a second on this machine).
    for name in WARM_MODULES:
        importlib.import_module(name)

    hospital = default_hospital()
    node = node_by_name(hospital, NODE)
    if node is None:
        raise SystemExit(f"no node {NODE}")
    level, *values = uids
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.buffer.readline() != GO:
        return 2
    if mode == "send":
        (uid,) = values
        return run_send(
            study=uid if level == "study" else None,
            series=uid if level == "series" else None,
            instances=None,
            to=[NODE],
            slug="default",
            queue_only=False,
        )
    requester = Requester(origin=Origin.CLI, name="benchmark", correlation_id="bench-routing")
    for uid in values:
        do_send(
            hospital,
            [node],
            requester=requester,
            study_uid=uid if level == "study" else None,
            series_uid=uid if level == "series" else None,
        )
    return 0


# --------------------------------------------------------------------------------------------
# Data


def synthesize(image: str, size: int, count: int, folder: Path) -> Study:
    """A study of ``count`` slices in 4 series (one folder each), written before any timing."""
    import pydicom
    from pydicom.uid import generate_uid

    from carina.core.testing import write_series

    say(f"  writing {count} x CT {size}x{size} (4 series) into {folder} …")
    study_uid = generate_uid()
    series = []
    files: list[Path] = []
    for k in range(PARTS):
        n = count // PARTS + (1 if k < count % PARTS else 0)
        series_uid = generate_uid()
        sub = folder / f"series{k}"
        files += write_series(sub, n, study_uid=study_uid, series_uid=series_uid, size=size)
        series.append((series_uid, sub))
    sops = frozenset(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files)
    return Study(
        image, folder, study_uid, tuple(series), sops, sum(p.stat().st_size for p in files)
    )


# --------------------------------------------------------------------------------------------
# Processes


def dcmtk_env() -> dict[str, str]:
    """DCMTK is told to disable Nagle's algorithm by ``TCP_NODELAY=1`` in its environment."""
    return {**os.environ, "TCP_NODELAY": "1"}


def dcmtk_version() -> str:
    out = subprocess.run([STORESCU, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"v(\d+\.\d+\.\d+)", out.stdout + out.stderr)
    return found.group(1) if found else "?"


def tail(path: Path, chars: int = 300) -> str:
    try:
        return " ".join(path.read_text(errors="replace")[-chars:].split())
    except OSError:
        return ""


def run_carina(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "carina", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"carina {' '.join(args[:2])} failed: {done.stderr[-800:]}")
    return done.stdout


@dataclass
class Receiver:
    port: int
    out_dir: Path
    proc: subprocess.Popen[bytes]

    def received(self) -> dict[str, tuple[int, str, Path]]:
        """SOP Instance UID → (file size, SHA-256 of the data set after the file meta, path)
        of what storescp wrote (its files are named ``CT.<UID>``)."""
        found = {}
        for p in self.out_dir.iterdir():
            if p.is_file():
                data = p.read_bytes()
                # Preamble (128), "DICM" (4), then (0002,0000) UL: its value at 140..144.
                meta_end = 144 + int.from_bytes(data[140:144], "little")
                digest = hashlib.sha256(data[meta_end:]).hexdigest()
                found[p.name.split(".", 1)[1]] = (len(data), digest, p)
        return found

    def count(self) -> int:
        return sum(1 for _ in self.out_dir.iterdir())


@contextmanager
def storescp(children: Children, scratch: Path) -> Iterator[Receiver]:
    """A fresh ``storescp --fork +xa -od DIR`` (one process per association), answering."""
    folder = Path(tempfile.mkdtemp(prefix="storescp-", dir=scratch))
    try:
        out_dir = folder / "out"
        out_dir.mkdir()
        port = free_port()
        argv = [STORESCP, "--fork", "+xa", "-aet", STORESCP_AE, "-od", str(out_dir), str(port)]
        with (folder / "storescp.log").open("wb") as log:
            proc = children.start(
                argv, group=True, env=dcmtk_env(), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 60
            while True:  # C-ECHO until it answers (and one untimed association)
                if proc.poll() is not None:
                    raise RuntimeError(f"storescp exited: {tail(folder / 'storescp.log')}")
                done = subprocess.run(
                    [ECHOSCU, "-aet", SCU_AE, "-aec", STORESCP_AE, "-to", "5", HOST, str(port)],
                    capture_output=True,
                    env=dcmtk_env(),
                    timeout=30,
                    check=False,
                )
                if done.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("storescp did not answer C-ECHO in 60 s")
                time.sleep(0.2)
            yield Receiver(port, out_dir, proc)
        finally:
            children.reap(proc, timeout=0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wait_received(receiver: Receiver, count: int, timeout: float) -> float:
    """Poll until storescp has written ``count`` files; the time (perf_counter) it had."""
    deadline = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        if receiver.count() >= count:
            return now
        if now > deadline:
            raise RuntimeError(f"storescp has {receiver.count()} of {count} after {timeout} s")
        time.sleep(0.01)


def timeout_for(study: Study) -> float:
    return 120 + study.count  # far above any plausible rate


def run_storescu(children: Children, study: Study, associations: int, port: int) -> float:
    folders = [study.folder] if associations == 1 else [f for _, f in study.series]
    argv = [STORESCU, "-aet", SCU_AE, "-aec", STORESCP_AE, "+sd", "+r", HOST, str(port)]
    log = study.folder.parent / "storescu.log"
    with log.open("wb") as out:
        start = time.perf_counter()
        procs = [
            children.start([*argv, str(f)], env=dcmtk_env(), stdout=out, stderr=subprocess.STDOUT)
            for f in folders
        ]
        try:
            codes = [p.wait(timeout=timeout_for(study)) for p in procs]
            seconds = time.perf_counter() - start
        finally:
            for p in procs:
                children.reap(p, timeout=0)
    if any(codes):
        raise RuntimeError(f"storescu exited with {codes}: {tail(log)}")
    return seconds


def prepared(
    children: Children, env: dict[str, str], mode: str, uids: list[str], log: Path
) -> subprocess.Popen[bytes]:
    """A child (``--child MODE``) that has set up Django and waits for ``go``."""
    with log.open("ab") as err:
        proc = children.start(
            [sys.executable, str(Path(__file__).resolve()), "--child", mode, *uids],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        raise RuntimeError(f"child {mode} did not start: {line!r} {tail(log)}")
    return proc


def run_children(
    children: Children,
    env: dict[str, str],
    mode: str,
    jobs: list[list[str]],
    receiver: Receiver,
    study: Study,
    log: Path,
) -> tuple[float, float]:
    """Start the prepared children together; seconds until every instance was received,
    and until every child exited."""
    procs = [prepared(children, env, mode, uids, log) for uids in jobs]
    try:
        start = time.perf_counter()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(GO)
            p.stdin.close()
        received = wait_received(receiver, study.count, timeout_for(study))
        codes = [p.wait(timeout=timeout_for(study)) for p in procs]
        exited = time.perf_counter()
        output = b"".join(p.stdout.read() for p in procs if p.stdout is not None)
    finally:
        for p in procs:
            children.reap(p, timeout=5)
    if any(codes):
        raise RuntimeError(f"child {mode} exited with {codes}: {output!r} {tail(log)}")
    for line in output.decode(errors="replace").splitlines():
        say(f"    {line}")
    if log.exists() and log.stat().st_size:
        say(f"    children's stderr: {tail(log)}")
        log.unlink()
    return received - start, exited - start


@contextmanager
def worker(children: Children, env: dict[str, str], home: Path) -> Iterator[None]:
    """``carina worker --concurrency 4``, ready (Celery said so in its log)."""
    log = home / "worker.log"
    with log.open("wb") as out:
        proc = children.start(
            [sys.executable, "-m", "carina", "worker", "--concurrency", str(PARTS)],
            env={**env, "CARINA_LOG_LEVEL": "INFO"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while " ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None:
                raise RuntimeError(f"carina worker exited: {tail(log, 1500)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"carina worker not ready in 90 s: {tail(log)}")
            time.sleep(0.2)
        yield
    finally:
        code, _ = children.reap(proc, timeout=0)
        if code not in (0, -signal.SIGTERM):
            say(f"    note: carina worker exited with {code}: {tail(log)}")


# --------------------------------------------------------------------------------------------
# Rows


def verify(row: Row, study: Study, receiver: Receiver) -> None:
    got = receiver.received()
    row.received = len(got.keys() & study.sop_uids)
    row.received_bytes = sum(size for size, _, _ in got.values())
    row.digests = {uid: digest for uid, (_, digest, _) in got.items()}
    if got:
        row.sample = got[min(got)][2].read_bytes()
    if set(got) != study.sop_uids:
        extra = len(set(got) - study.sop_uids)
        row.error = f"received {row.received} of {row.sent}" + (
            f" and {extra} unknown" if extra else ""
        )


def measure(
    children: Children,
    row: Row,
    study: Study,
    scratch: Path,
    env: dict[str, str],
    home: Path,
    use_worker: bool,
) -> None:
    log = home / f"child-{row.path.replace(' ', '-')}.log"
    try:
        with storescp(children, scratch) as receiver:
            if row.path == "storescu":
                row.seconds = run_storescu(children, study, row.associations, receiver.port)
            else:
                run_carina(
                    env,
                    *("nodes", "add", NODE, "--ae", STORESCP_AE, "--host", HOST),
                    *("--port", str(receiver.port), "--move-destination"),
                    *("--max-associations", str(row.associations)),
                )
                if row.associations == 1:
                    jobs = [["study", study.study_uid]]
                else:
                    jobs = [["series", uid] for uid, _ in study.series]
                if row.path == "carina send":
                    row.seconds, row.exited = run_children(
                        children, env, "send", jobs, receiver, study, log
                    )
                else:
                    assert use_worker
                    # One child creates every transfer (as many ``carina send --queue``).
                    queue_jobs = [[jobs[0][0], *(j[1] for j in jobs)]]
                    row.seconds, _ = run_children(
                        children, env, "queue", queue_jobs, receiver, study, log
                    )
            time.sleep(0.2)  # storescp's forked children finish writing
            verify(row, study, receiver)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        row.error = " ".join(str(exc).split())[:300]


def run_rows(
    children: Children,
    studies: list[Study],
    scratch: Path,
    env: dict[str, str],
    home: Path,
    use_worker: bool,
) -> list[Row]:
    paths = ["storescu", "carina send"] + (["worker"] if use_worker else [])
    plan = [(s, p, a) for s in studies for a in (1, PARTS) for p in paths]
    rows: list[Row] = []
    with worker(children, env, home) if use_worker else nullcontext():
        for step, (study, path, associations) in enumerate(plan, 1):
            say(
                f"[{step}/{len(plan)}] {study.count} x {study.image}, {path}, "
                f"{associations} association(s) → storescp …"
            )
            row = Row(path, study.image, associations, study.count, study.total_bytes)
            measure(children, row, study, scratch, env, home, use_worker)
            if row.ok:
                say(f"    {row.per_second:.1f} instances/s ({row.seconds:.2f} s, verified)")
            else:
                say(f"    FAILED: {row.error}")
            rows.append(row)
    ceiling = {(r.image, r.associations): r for r in rows if r.path == "storescu"}
    for row in rows:
        ref = ceiling.get((row.image, row.associations))
        if row.path == "storescu" or ref is None:
            continue
        if row.per_second is not None and ref.per_second:
            row.vs_storescu = row.per_second / ref.per_second
        if row.ok and ref.ok:
            row.same_bytes = row.digests == ref.digests
            if not row.same_bytes:
                say(f"    {row.path}, {row.image}: {differences(ref.sample, row.sample)}")
    return rows


def differences(theirs: bytes, ours: bytes) -> str:
    """What differs between storescu's and Carina's copy of one instance (top-level
    elements of the file meta and the data set), for the notes."""
    from io import BytesIO

    import pydicom

    a = pydicom.dcmread(BytesIO(theirs))
    b = pydicom.dcmread(BytesIO(ours))
    found = []
    for one, other, where in ((a.file_meta, b.file_meta, "meta"), (a, b, "data set")):
        for tag in sorted(set(one.keys()) | set(other.keys())):
            x, y = one.get(tag), other.get(tag)
            if x is None or y is None or x.value != y.value:
                name = (x or y).keyword or str(tag)
                state = "added" if x is None else "missing" if y is None else "changed"
                found.append(f"{name} {state} ({where})")
    return "Carina's copy differs from storescu's: " + (", ".join(found) or "same elements")


# --------------------------------------------------------------------------------------------
# Report


def summary(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        if row.path != "storescu" and row.vs_storescu is not None:
            lines.append(
                f"{row.path}, {row.image}, {row.associations} association(s): "
                f"{row.per_second:.0f} instances/s, {row.vs_storescu:.2f}x storescu's."
            )
    failed = [r for r in rows if not r.ok]
    if failed:
        lines.append(f"{len(failed)} row(s) failed.")
    differ = [r for r in rows if r.same_bytes is False]
    if differ:
        lines.append(
            f"{len(differ)} Carina row(s) delivered data sets that differ from what storescu "
            "delivered of the same files (see the progress output for the elements)."
        )
    return lines


def uncommitted() -> str:
    status = command(["git", "-C", str(Path(__file__).resolve().parents[1]), "status",
                      "--porcelain", "--", "src/carina"])  # fmt: skip
    changed = [line for line in status.splitlines() if line.strip()]
    if not changed:
        return "src/carina had no uncommitted changes"
    return f"{len(changed)} files or folders of src/carina were changed or new (`git status`)"


def section(
    rows: list[Row],
    settings: dict[str, Any],
    machine_line: str,
    digest: str,
    elapsed: float,
) -> str:
    table = markdown_table(HEADERS, [cells(r) for r in rows], 2)
    worker_text = (
        "`worker`: `carina worker --concurrency 4` (Celery, threads, the embedded "
        "filesystem queue polled twice a second), started and ready before the row; a "
        "prepared child creates the transfer(s) with `do_send` (what `carina send --queue` "
        "does) on the start signal. Timed from the signal until storescp has written every "
        "instance, so the queue's polling delay is included."
        if settings["worker"]
        else "`worker`: not measured in this run (`--no-worker`)."
    )
    worker_line = textwrap.fill(
        worker_text, 96, initial_indent="  - ", subsequent_indent="    ", break_on_hyphens=False
    )
    return f"""{SECTION_TITLE}

Measured on {dt.date.today().isoformat()} with `.venv/bin/python benchmarks/routing.py`
({elapsed / 60:.0f} minutes), on a copy of the working tree's `src/carina` taken when the
run started ({git_tree()}; {settings["uncommitted"]}; SHA-256 of its `.py` files
`{digest}`). Carina's database: {settings["database"]}.

Machine: {machine_line}. Everything ran on loopback on this one machine, on 2 cores shared
by sender and receiver. Each row was measured once: read the ratios, not the last digit.

Input: one synthetic CT study per image size (`carina.core.testing.write_series`, 16-bit,
Explicit VR Little Endian), {settings["small"]} x 128x128 and {settings["large"]} x 512x512,
each in 4 series of a quarter of the slices, loaded into one fresh Carina with `carina
import` (not timed). Each row sends the whole study to a fresh DCMTK `storescp --fork +xa
-od DIR` (`TCP_NODELAY=1`), registered in Carina as a send destination with `carina nodes
add … --move-destination --max-associations N` (N = the row's associations).

{table}

{chr(10).join(bullet(line) for line in summary(rows))}

What the columns measure:

- **path**:
  - `storescu`: DCMTK's `storescu +sd +r` with the original files (`TCP_NODELAY=1`), the
    ceiling: 1 process with every file, or 4 processes started together, one series each.
  - `carina send`: the code of the `carina send` command (`carina.cli.send.run_send`:
    creates the transfer record with its items, then sends it in the same process over one
    association and records each instance's outcome), run in child processes that had
    already started Python, set up Django and imported what a long-running process has
    loaded (the Celery app, the routing tasks, pynetdicom), so start-up is not timed, and
    waited for a start signal. 1 association: one child, `--study`. 4 associations: one
    transfer uses one association (docs/routing.md), so 4 children started together send
    the 4 series as 4 transfers.
{worker_line}
- **assoc.**: associations open at once (the node's `max_associations` is set to this).
- **seconds**: wall time from the start (storescu: first process; Carina: the start
  signal) until every instance was received (storescu: until the last process exited;
  Carina: until storescp had written every file, polled every 10 ms).
- **exit s**: `carina send` only: from the start signal until the last child process
  returned (the command records the outcome, writes the audit event and exits after the
  last instance was received; this column shows what that costs).
- **instances/s**, **MB/s**: instances and MB (2^20 bytes, original file sizes) / seconds.
- **vs storescu**: instances/s divided by the storescu row with the same image and
  associations (1.00 = as fast as DCMTK sending the files itself).
- **verified**: files storescp wrote whose SOP Instance UID was sent / instances sent;
  `same bytes`: every data set storescp wrote (the bytes after the file meta, which holds
  the sender's AE title and so differs) has the same SHA-256 as in the storescu row.
"""


# --------------------------------------------------------------------------------------------
# Main


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    for tool in (STORESCU, STORESCP, ECHOSCU):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool} is missing: apt-get install dcmtk")
    settings: dict[str, Any] = {
        "small": args.small or (24 if args.quick else 300),
        "large": args.large or (8 if args.quick else 100),
        "worker": not args.no_worker,
    }
    versions = {"SQLite": sqlite3.sqlite_version}
    kind = "SQLite"
    if args.postgres and (version := pg_version()):
        kind = "PostgreSQL"
        versions = {"PostgreSQL": version}
    settings["database"] = kind
    versions["DCMTK"] = dcmtk_version()
    import pynetdicom

    versions["pynetdicom"] = pynetdicom.__version__
    children = Children()
    scratch = Path(tempfile.mkdtemp(prefix="carina-routing-bench-"))
    started = time.perf_counter()
    rows: list[Row] = []
    try:
        say(f"Synthesizing the studies in {scratch} (not timed) …")
        studies = [
            synthesize("CT 128x128", 128, settings["small"], scratch / "ct128"),
            synthesize("CT 512x512", 512, settings["large"], scratch / "ct512"),
        ]
        code_dir, digest = snapshot_source(scratch)
        settings["uncommitted"] = uncommitted()
        say(f"Measuring a copy of src/carina (sha256 of its .py files: {digest}).")
        home = scratch / "home"
        home.mkdir()
        with database(kind, home, f"carina_routing_bench_{os.getpid()}") as url:
            env = carina_env(home, url, code_dir)
            say("Migrating and importing (not timed) …")
            migrate(env)
            run_carina(env, "import", "--quiet", *(str(s.folder) for s in studies))
            rows = run_rows(children, studies, scratch, env, home, settings["worker"])
    finally:
        children.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - started
    say(f"Done in {elapsed:.0f} s.")
    print("Forwarding to storescp (instances/s until every instance was received)")
    print(text_table(HEADERS, [cells(r) for r in rows], 2))
    print()
    print("\n".join(summary(rows)))
    if args.quick or args.no_write:
        say("BENCHMARKS.md left unchanged (--quick / --no-write).")
    else:
        text = section(rows, settings, machine(versions), digest, elapsed)
        update_benchmarks_md(SECTION_TITLE, wrap(text))
        say(f"Updated {BENCHMARKS_MD}.")
    return 1 if any(not r.ok for r in rows) else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="few instances; BENCHMARKS.md is not updated"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--no-worker", action="store_true", help="no `carina worker` rows")
    parser.add_argument("--postgres", action="store_true", help="Carina on PostgreSQL")
    parser.add_argument("--small", type=int, help="128x128 instances (default 300)")
    parser.add_argument("--large", type=int, help="512x512 instances (default 100)")
    # Internal: a prepared child (see ``child``).
    parser.add_argument("--child", choices=["send", "queue"], help=argparse.SUPPRESS)
    parser.add_argument("uids", nargs="*", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args.child, args.uids)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
