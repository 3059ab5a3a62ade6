"""Ingest throughput and peak memory of Carina's one ingest pipeline, with Orthanc beside it.

Run ``.venv/bin/python benchmarks/ingest.py`` (``--quick`` for a short development run that
does not touch BENCHMARKS.md). For each database (embedded SQLite, PostgreSQL on
127.0.0.1:5432) and image size (CT 128x128, CT 512x512, Explicit VR Little Endian, written by
``carina.core.testing.write_series``) it starts a clean child process in a fresh
``CARINA_HOME``, runs ``carina migrate`` there, then times only the ingest of the files:

* ``in-process``: the child calls ``carina.archive.ingest.ingest(path, …)`` for each file;
* ``HTTP``: the child serves the same ``ingest()`` behind a minimal single-threaded
  ``http.server`` on loopback (a harness, not a Carina endpoint) and this process POSTs one
  file per request over one keep-alive ``http.client`` connection, as it does to Orthanc.

If ``Orthanc`` is installed, the same files are POSTed to a private Orthanc (own SQLite index
and storage in a temporary folder, loopback only) through its REST API ``POST /instances``.
Peak memory is the child's ``ru_maxrss`` from ``os.wait4``. The table is printed, and a full
run replaces the section ``## Ingest pipeline (benchmarks/ingest.py)`` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, BinaryIO, cast

from common import (
    BENCHMARKS_MD,
    MIB,
    Children,
    Progress,
    carina_env,
    database,
    default_hospital,
    find_orthanc,
    free_port,
    git_tree,
    machine,
    migrate,
    orthanc_get,
    orthanc_server,
    orthanc_version,
    pg_version,
    rss_kib,
    say,
    setup_django,
    snapshot_source,
    stop_on_sigterm,
    update_benchmarks_md,
    wrap,
)

SECTION_TITLE = "## Ingest pipeline (benchmarks/ingest.py)"


# --------------------------------------------------------------------------------------------
# What is measured


@dataclass(frozen=True)
class Image:
    """One synthetic series: ``count`` CT slices of ``size``x``size`` pixels."""

    size: int
    count: int

    @property
    def label(self) -> str:
        return f"CT {self.size}x{self.size}"


@dataclass
class Row:
    """One measured run."""

    database: str
    image: Image
    path: str
    instances: int
    total_bytes: int
    seconds: float
    rss_start_kib: int
    peak_rss_kib: int
    ratio: float | None = None
    #: instances/s of every repetition (the row itself is the median one).
    rates: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.instances / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.total_bytes / MIB / self.seconds


def median_row(runs: list[Row]) -> Row:
    """The run with the median time, with every run's rate and the highest peak RSS."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    row = ordered[(len(ordered) - 1) // 2]
    row.rates = sorted(r.per_second for r in runs)
    row.peak_rss_kib = max(r.peak_rss_kib for r in runs)
    return row


@dataclass
class Files:
    """The synthesized series of one image size."""

    image: Image
    folder: Path
    paths: list[Path] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.paths)


# --------------------------------------------------------------------------------------------
# Child process side (``--worker``): runs in a fresh CARINA_HOME after ``carina migrate``


def worker_in_process(folder: Path, label: str, result_file: Path) -> int:
    """Ingest every file of ``folder`` through ``ingest()``; write the timing as JSON."""
    setup_django()
    from carina.archive.ingest import IngestStatus, Origin, ingest
    from carina.archive.models import Instance, Source

    hospital = default_hospital()
    paths = sorted(folder.iterdir())
    rss_start = rss_kib()
    progress = Progress(label, len(paths))
    start = time.perf_counter()
    for path in paths:
        result = ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, path.name))
        if result.status != IngestStatus.STORED:
            raise SystemExit(f"{path}: {result.status}, expected stored")
        progress.tick()
    seconds = time.perf_counter() - start
    stored = Instance.objects.for_hospital(hospital).count()
    result_file.write_text(
        json.dumps({"seconds": seconds, "stored": stored, "rss_start_kib": rss_start})
    )
    return 0


class _Body:
    """The request body as a stream of exactly Content-Length bytes (``ingest`` reads to EOF)."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream, self._left = stream, length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._stream.read(self._left if size < 0 else min(size, self._left))
        if not data:
            raise ConnectionError("the client closed the connection mid-body")
        self._left -= len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def worker_http(result_file: Path) -> int:
    """Serve ``POST /instances`` → ``ingest()`` on a loopback port for one client connection.

    Single-threaded on purpose: the client sends one request at a time, and Django keeps one
    database connection per thread. The port and the RSS after set-up go to stdout.
    """
    setup_django()
    from carina.archive.ingest import IngestError, Origin, ingest
    from carina.archive.models import Instance, Source

    hospital = default_hospital()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer (Orthanc sets TcpNoDelay too).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            if self.path != "/instances":
                self._reply(404, {"error": "POST /instances only"})
                return
            body = _Body(cast(BinaryIO, self.rfile), int(self.headers["Content-Length"]))
            try:
                result = ingest(
                    cast(BinaryIO, body),
                    hospital=hospital,
                    origin=Origin(Source.API, "benchmark"),
                    name="benchmark upload",
                )
            except IngestError as exc:
                body.drain()
                self._reply(exc.http_status, {"error": exc.message})
                return
            self._reply(200, {"Status": result.status.value, "ID": result.sop_instance_uid})

        def _reply(self, status: int, payload: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.timeout = 300
    try:
        port = server.server_address[1]
        print(json.dumps({"port": port, "rss_start_kib": rss_kib()}), flush=True)
        server.handle_request()  # the one keep-alive connection, until the client closes it
    finally:
        server.server_close()
    stored = Instance.objects.for_hospital(hospital).count()
    result_file.write_text(json.dumps({"stored": stored}))
    return 0


# --------------------------------------------------------------------------------------------
# Parent side: processes, databases, Orthanc


def upload(port: int, files: Files, label: str, ok_status: str) -> float:
    """POST every file to ``/instances`` over one keep-alive connection; return the seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    progress = Progress(label, len(files.paths))
    try:
        start = time.perf_counter()
        for path in files.paths:
            conn.request(
                "POST",
                "/instances",
                body=path.read_bytes(),
                headers={"Content-Type": "application/dicom"},
            )
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200 or json.loads(payload).get("Status") != ok_status:
                raise RuntimeError(f"{label}: {path.name}: HTTP {response.status} {payload!r}")
            progress.tick()
        return time.perf_counter() - start
    finally:
        conn.close()


def run_carina(
    children: Children, kind: str, files: Files, path_kind: str, scratch: Path, code_dir: Path
) -> Row:
    """One clean child: fresh CARINA_HOME and database, migrate, then the timed ingest."""
    label = f"{kind} {files.image.label} {path_kind}"
    home = Path(tempfile.mkdtemp(prefix="home-", dir=scratch))
    try:
        with database(kind, home) as url:
            env = carina_env(home, url, code_dir)
            migrate(env)
            result_file = home / "result.json"
            script = str(Path(__file__).resolve())
            if path_kind == "in-process":
                argv = [
                    sys.executable,
                    script,
                    "--worker",
                    "in-process",
                    "--folder",
                    str(files.folder),
                    "--label",
                    label,
                    "--result",
                    str(result_file),
                ]
                proc = children.start(argv, env=env)
                code, maxrss = children.reap(proc, timeout=900)
                if code != 0:
                    raise RuntimeError(f"{label}: the worker exited with {code}")
                result = json.loads(result_file.read_text())
                seconds, rss_start = float(result["seconds"]), int(result["rss_start_kib"])
            else:
                argv = [sys.executable, script, "--worker", "http", "--result", str(result_file)]
                proc = children.start(argv, env=env, stdout=subprocess.PIPE)
                assert proc.stdout is not None
                ready = json.loads(proc.stdout.readline() or b"{}")
                if "port" not in ready:
                    children.reap(proc, timeout=5)
                    raise RuntimeError(f"{label}: the HTTP worker did not start")
                rss_start = int(ready["rss_start_kib"])
                seconds = upload(int(ready["port"]), files, label, ok_status="stored")
                code, maxrss = children.reap(proc, timeout=120)
                if code != 0:
                    raise RuntimeError(f"{label}: the HTTP worker exited with {code}")
                result = json.loads(result_file.read_text())
            if int(result["stored"]) != len(files.paths):
                raise RuntimeError(f"{label}: {result['stored']} rows, {len(files.paths)} sent")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return Row(
        kind,
        files.image,
        path_kind,
        len(files.paths),
        files.total_bytes,
        seconds,
        rss_start,
        maxrss,
    )


def run_orthanc(children: Children, binary: str, files: Files, scratch: Path) -> Row:
    """A private Orthanc in a temporary folder; time POST /instances of every file."""
    label = f"Orthanc {files.image.label} HTTP"
    folder = Path(tempfile.mkdtemp(prefix="orthanc-", dir=scratch))
    port = free_port()
    config = {
        "Name": "CARINA_BENCH",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "Plugins": [],
        "HttpServerEnabled": True,
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "RegisteredUsers": {},
        "KeepAlive": True,
        "TcpNoDelay": True,
        "DicomServerEnabled": False,
        "StorageCompression": False,
        "SyncStorageArea": True,
        "SaveJobs": False,
        "OverwriteInstances": False,
    }
    try:
        with orthanc_server(children, binary, folder, config) as server:
            rss_start = rss_kib(server.proc.pid)
            seconds = upload(port, files, label, ok_status="Success")
            stored = int(orthanc_get(port, "/statistics")["CountInstances"])
        code, maxrss = server.code, server.maxrss_kib
        if stored != len(files.paths):
            raise RuntimeError(f"{label}: Orthanc holds {stored}, {len(files.paths)} sent")
        if code not in (0, -signal.SIGTERM):
            say(f"note: Orthanc exited with {code} when stopped")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Row(
        "Orthanc (own SQLite)",
        files.image,
        "HTTP",
        len(files.paths),
        files.total_bytes,
        seconds,
        rss_start,
        maxrss,
    )


def synthesize(image: Image, scratch: Path) -> Files:
    from carina.core.testing import write_series

    folder = scratch / f"ct{image.size}"
    say(f"  writing {image.count} x {image.label} into {folder} …")
    return Files(image, folder, write_series(folder, image.count, size=image.size))


# --------------------------------------------------------------------------------------------
# Reporting


HEADERS = [
    "database",
    "image",
    "path",
    "instances",
    "MB",
    "seconds",
    "instances/s",
    "range",
    "MB/s",
    "RSS start MB",
    "peak RSS MB",
    "Carina/Orthanc",
]


def cells(row: Row) -> list[str]:
    return [
        row.database,
        row.image.label,
        row.path,
        str(row.instances),
        f"{row.total_bytes / MIB:.1f}",
        f"{row.seconds:.2f}",
        f"{row.per_second:.1f}",
        f"{row.rates[0]:.0f}–{row.rates[-1]:.0f}" if len(row.rates) > 1 else "—",
        f"{row.mb_per_second:.2f}",
        f"{row.rss_start_kib / 1024:.0f}",
        f"{row.peak_rss_kib / 1024:.0f}",
        "—" if row.ratio is None else f"{row.ratio:.2f}",
    ]


def text_table(rows: list[Row]) -> str:
    grid = [HEADERS, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(HEADERS))]
    lines = []
    for n, line in enumerate(grid):
        lines.append(
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" if i < 3 else "---:" for i in range(len(HEADERS))) + "|",
    ]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    """Facts read off the table: memory across image sizes, HTTP ratio to Orthanc."""
    lines = []
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.database, row.path), []).append(row)
    for (kind, path), group in groups.items():
        if len(group) > 1:
            low = min(r.peak_rss_kib for r in group) / 1024
            high = max(r.peak_rss_kib for r in group) / 1024
            sizes = " and ".join(r.image.label for r in group)
            who = kind if kind.startswith("Orthanc") else f"Carina on {kind}, {path}"
            lines.append(
                f"- Peak RSS, {who}: {low:.1f} MB to {high:.1f} MB over {sizes} "
                f"(+{high - low:.1f} MB)."
            )
    ratios = [r.ratio for r in rows if r.path == "HTTP" and r.ratio is not None]
    if ratios:
        lines.append(
            f"- Carina over HTTP reached {min(ratios):.2f}–{max(ratios):.2f} times Orthanc's "
            "instances/s (below 1: Orthanc is faster)."
        )
    return "Read off this run:\n\n" + "\n".join(lines) if lines else ""


def section(
    rows: list[Row],
    machine_line: str,
    images: list[Image],
    repeat: int,
    today: str,
    digest: str,
) -> str:
    sizes = ", ".join(f"{i.count} x {i.label}" for i in images)
    runs = "once" if repeat == 1 else f"{repeat} times"
    tree = git_tree()
    return f"""{SECTION_TITLE}

Measured on {today} with `.venv/bin/python benchmarks/ingest.py`, on a copy of the working
tree's `src/carina` taken when the run started ({tree}; SHA-256 of its `.py` files
`{digest}`), so that every row measures the same code.

Machine: {machine_line}. PostgreSQL ran on the same machine (127.0.0.1:5432); no other job
was started during the run, but a 2-core machine is noisy: read the ranges.

Input: one synthetic series per image size ({sizes}; 16-bit MONOCHROME2, random pixel
values, Explicit VR Little Endian, written by `carina.core.testing.write_series` before any
timing). Every run is a fresh child process with a fresh `CARINA_HOME` (temporary folder
on the local disk) and a fresh, empty database (`carina migrate` first, not timed); Orthanc
gets a fresh storage folder each time. Each row was run {runs}, the repetitions going round
all rows in turn; the table shows the run with the median time.

{markdown_table(rows)}

{summary(rows)}

What the columns measure:

- **path**: how the objects reached the archive. These are *not* the same code paths, so
  compare rows of the same path first.
  - `in-process`: the child process calls `carina.archive.ingest.ingest(Path)` once per file,
    one after the other. No network, no HTTP parsing: Carina's pipeline alone (staging copy
    with SHA-256, header parse with pixel data deferred, validation, dedupe look-up, durable
    blob write with fsync and rename, one indexing transaction).
  - `HTTP` (Carina rows): the same `ingest()` behind a minimal single-threaded `http.server`
    inside the child, fed with the request body as a stream. This front end is part of the
    benchmark, **not a Carina endpoint** (Carina has no HTTP ingest yet; STOW-RS through
    Django and gunicorn will cost more per request). It exists to put Carina on the same
    transport as Orthanc.
  - `HTTP` (Orthanc row): Orthanc's REST API `POST /instances`, Orthanc's defaults for its
    own SQLite index and file storage (`SyncStorageArea` true, no compression, no plugins, DICOM
    listener off) in a temporary folder. Orthanc has no PostgreSQL index here (the plugin is
    not installed), so the same Orthanc figure serves as reference for both databases.
  - For both `HTTP` paths the client is this script: one keep-alive `http.client`
    connection to 127.0.0.1, one file per request, the next request sent after the answer;
    reading the file is inside the timing.
- **instances**, **MB**: objects sent and their total file size (MB = 2^20 bytes).
- **seconds**: wall time of the ingest phase only, from the first object to the last answer
  (no process start, migration or file synthesis). In-process rows are timed by the child,
  HTTP rows by the client.
- **instances/s**, **MB/s**: instances and MB divided by seconds (of the median run).
- **range**: lowest and highest instances/s over the repetitions; a wide range means the
  machine was busy (other processes) during some of them.
- **RSS start MB**: resident memory of the archive process just before the first object
  (Django set up, database connected, or Orthanc ready).
- **peak RSS MB**: `ru_maxrss` of the archive process (Carina child or Orthanc) from
  `os.wait4` once it has exited, highest over the repetitions: the most memory it ever held,
  start-up included. It stays flat across image sizes when the pipeline streams objects
  instead of loading their pixel data.
- **Carina/Orthanc**: this row's instances/s divided by Orthanc's instances/s for the same
  image size (above 1: Carina is faster). The `HTTP` rows are the closest comparison (same
  client, same transport, one object per request, the answer sent after the object is
  stored), though not the same server stack nor the same durability settings: Carina fsyncs
  the blob and its folder and commits the index (SQLite `synchronous=FULL`, or a PostgreSQL
  commit) before answering; Orthanc fsyncs its storage file (`SyncStorageArea`) and uses its
  own SQLite settings. The `in-process` rows leave out the transport that Orthanc pays for,
  so their ratio flatters Carina; Carina `in-process` against Carina `HTTP` shows what the
  harness's HTTP front end costs.
"""


# --------------------------------------------------------------------------------------------
# Main


def run(args: argparse.Namespace) -> int:
    # SIGTERM unwinds like Ctrl-C, so that the finally blocks stop the children, drop the
    # PostgreSQL database and remove the temporary folders.
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    images = [Image(128, 40 if args.quick else 300), Image(512, 15 if args.quick else 100)]
    databases = ["SQLite"]
    versions = {"SQLite": sqlite3.sqlite_version}
    if not args.no_postgres and (version := pg_version()):
        databases.append("PostgreSQL")
        versions["PostgreSQL"] = version
    orthanc = None if args.no_orthanc else find_orthanc()
    if orthanc:
        versions["Orthanc"] = orthanc_version(orthanc)
    else:
        say("Orthanc is not installed (or --no-orthanc): no comparison rows.")
    paths = ["in-process", "HTTP"]
    repeat = max(1, args.repeat or (1 if args.quick else 3))
    children = Children()
    runs: dict[tuple[str, Image, str], list[Row]] = {}
    scratch = Path(tempfile.mkdtemp(prefix="carina-bench-"))
    digest = ""
    started = time.perf_counter()
    try:
        say(f"Synthesizing the series in {scratch} (not timed) …")
        series = [synthesize(image, scratch) for image in images]
        code_dir, digest = snapshot_source(scratch)
        say(f"Measuring a copy of src/carina (sha256 of its .py files: {digest}).")
        plan: list[tuple[str, Files, str]] = [
            (kind, files, path_kind)
            for kind in databases
            for files in series
            for path_kind in paths
        ]
        if orthanc:
            plan += [("Orthanc", files, "HTTP") for files in series]
        step, total = 0, len(plan) * repeat
        # Repetitions go round the whole plan, so that a burst of load from other jobs on the
        # machine hits several rows a little rather than one row a lot.
        for _ in range(repeat):
            for kind, files, path_kind in plan:
                step += 1
                say(f"[{step}/{total}] {kind} {files.image.label} {path_kind} …")
                if kind == "Orthanc":
                    assert orthanc is not None
                    row = run_orthanc(children, orthanc, files, scratch)
                else:
                    row = run_carina(children, kind, files, path_kind, scratch, code_dir)
                runs.setdefault((kind, files.image, path_kind), []).append(row)
                say(f"    {row.per_second:.1f} instances/s")
    finally:
        children.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)
    rows = [median_row(measured) for measured in runs.values()]
    reference = {r.image: r.per_second for r in rows if r.database.startswith("Orthanc")}
    for row in rows:
        if not row.database.startswith("Orthanc") and row.image in reference:
            row.ratio = row.per_second / reference[row.image]
    say(f"Done in {time.perf_counter() - started:.0f} s.")
    print(text_table(rows))
    if args.quick or args.no_write:
        say("BENCHMARKS.md left unchanged (--quick / --no-write).")
    else:
        today = dt.date.today().isoformat()
        text = section(rows, machine(versions), images, repeat, today, digest)
        update_benchmarks_md(SECTION_TITLE, wrap(text))
        say(f"Updated {BENCHMARKS_MD}.")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few instances, for development; BENCHMARKS.md is not updated",
    )
    parser.add_argument(
        "--repeat", type=int, help="runs per row, median reported (default 3, --quick 1)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite rows only")
    parser.add_argument("--no-orthanc", action="store_true", help="no Orthanc comparison")
    # Internal: the child process of one measured row.
    parser.add_argument("--worker", choices=["in-process", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "in-process":
        return worker_in_process(args.folder, args.label, args.result)
    if args.worker == "http":
        return worker_http(args.result)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
