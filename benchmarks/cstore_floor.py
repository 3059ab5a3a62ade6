"""The floor of a durable C-STORE on this machine: how many objects per second one association
can deliver to any receiver that acknowledges an object only once it is on disk and indexed,
before that receiver does any work of its own.

Run ``.venv/bin/python benchmarks/cstore_floor.py`` (about 2 minutes; ``--quick`` for a
smaller run that leaves BENCHMARKS.md alone, ``--no-orthanc``, ``--no-postgres``).

A C-STORE SCU waits for each response before it sends the next object (storescu, and modalities,
keep one operation outstanding), so on one association the receiver's steps add up per object:

1. **transfer**: DCMTK's ``storescu`` (tuned, ``TCP_NODELAY=1``) into DCMTK's ``storescp``
   writing each object to a file, without fsync and without an index: the time per object of
   the network, the DIMSE protocol and the sender, plus storescp's write into the page cache.
   Beside it, the same into Carina's listener with every C-STORE answered at once and nothing
   stored (``noop_listener.py``): the DIMSE layer of a receiver written in Python.
2. **blob fsync**: what makes a written object durable: ``fsync`` of the file, ``rename`` into
   place and ``fsync`` of its folder (the write itself is in step 1), one object after the
   other, the objects' own bytes in a fresh folder.
3. **index commit**: one transaction per object, as small as an index can be: insert one row
   holding the object's UIDs and its DICOM JSON without bulk data (``pydicom``'s
   ``to_json_dict``, computed before the timing) and add 1 to a series and a study counter,
   then commit: SQLite with Carina's settings (WAL, ``synchronous=FULL``), and PostgreSQL
   (127.0.0.1, default ``synchronous_commit``), over one connection.

The floor is transfer + max(blob fsync, index commit): a receiver could make the blob and the
index row durable at the same time, but not before the object has arrived nor acknowledge it
before both are done. It is compared with Orthanc (Debian's package, own SQLite index, Orthanc's
defaults: ``SyncStorageArea`` true) receiving the same files from the same sender, and with the
throughput issue 3 asks of Carina on this row (1.5 times Orthanc's).

Each step runs 3 times (alternating with the others) on the same files; the median is shown.
Progress goes to stderr, the table to stdout; a full run replaces the section
``## The floor of a durable C-STORE (benchmarks/cstore_floor.py)`` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path

from common import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    Children,
    bullet,
    carina_env,
    find_orthanc,
    free_port,
    git_tree,
    machine,
    markdown_table,
    migrate,
    orthanc_version,
    pg_admin,
    pg_version,
    say,
    text_table,
    update_benchmarks_md,
    wrap,
)
from dimse_ingest import (
    CARINA_AE,
    Batch,
    Receiver,
    dcmtk_version,
    make_batch,
    orthanc_receiver,
    send,
    storescp_receiver,
    synthesize_series,
    wait_echo,
)

#: Carina's source folder, for the no-op listener's PYTHONPATH.
SRC = Path(__file__).resolve().parents[1] / "src"
SECTION_TITLE = "## The floor of a durable C-STORE (benchmarks/cstore_floor.py)"
#: The target of issue 3 for a tuned sender: this many times Orthanc's instances/s.
TARGET = 1.5
REPEATS = 3


def median_ms(runs: list[float], count: int) -> float:
    """Milliseconds per object of the median run (``runs`` in seconds for ``count`` objects)."""
    return statistics.median(runs) / count * 1000


def per_object_over_association(
    children: Children,
    batch: Batch,
    receiver_cm: Callable[[], AbstractContextManager[Receiver]],
    scratch: Path,
) -> float:
    """Seconds for ``batch`` over 1 tuned association into a fresh receiver, checked."""
    log = scratch / "storescu.log"
    with receiver_cm() as receiver:
        seconds = send(children, batch, 1, receiver.port, receiver.ae, True, log)
        stored = receiver.count()
    log.unlink(missing_ok=True)
    if stored != batch.count:
        raise RuntimeError(f"the receiver holds {stored} of {batch.count} objects")
    return float(seconds)


@contextmanager
def noop_receiver(children: Children, scratch: Path) -> Iterator[Receiver]:
    """Carina's listener answering every C-STORE at once, storing nothing (noop_listener.py)."""
    home = Path(tempfile.mkdtemp(prefix="noop-", dir=scratch))
    env = carina_env(home, f"sqlite:///{home / 'carina.sqlite3'}", SRC)
    migrate(env)
    port = free_port()
    count_file, log = home / "answered", home / "listener.log"
    with log.open("wb") as out:
        proc = children.start(
            [
                sys.executable,
                str(Path(__file__).with_name("noop_listener.py")),
                str(port),
                str(count_file),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def count() -> int:
        deadline = time.monotonic() + 10
        while not count_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return int(count_file.read_text()) if count_file.exists() else 0

    try:
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"noop_listener.py did not start: {log.read_text()[-800:]}")
            time.sleep(0.1)
        wait_echo(port, CARINA_AE, proc)
        yield Receiver(port, CARINA_AE, proc, count)
    finally:
        children.reap(proc, timeout=0)
        shutil.rmtree(home, ignore_errors=True)


def blob_fsync_seconds(files: Sequence[Path], scratch: Path) -> float:
    """fsync + rename + fsync of the folder for each object, written (untimed) just before."""
    folder = Path(tempfile.mkdtemp(prefix="blobs-", dir=scratch))
    try:
        total = 0.0
        for n, path in enumerate(files):
            part = folder / f"{n}.part"
            data = path.read_bytes()
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                start = time.perf_counter()
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(part, folder / f"{n}.dcm")
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            total += time.perf_counter() - start
        return total
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def index_rows(files: Sequence[Path]) -> list[tuple[str, str, str]]:
    """(SOPInstanceUID, SeriesInstanceUID, DICOM JSON without bulk data) of each file."""
    import pydicom

    rows = []
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        rows.append(
            (
                str(ds.SOPInstanceUID),
                str(ds.SeriesInstanceUID),
                json.dumps(
                    ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=str)
                ),
            )
        )
    return rows


SCHEMA = (
    "CREATE TABLE study (id INTEGER PRIMARY KEY, instances INTEGER NOT NULL)",
    "CREATE TABLE series (id INTEGER PRIMARY KEY, instances INTEGER NOT NULL)",
    "CREATE TABLE instance (id {serial} PRIMARY KEY, sop_instance_uid VARCHAR(64) UNIQUE,"
    " series_instance_uid VARCHAR(64), metadata TEXT)",
    "INSERT INTO study VALUES (1, 0)",
    "INSERT INTO series VALUES (1, 0)",
)


def sqlite_commit_seconds(rows: list[tuple[str, str, str]], scratch: Path) -> float:
    """One transaction per object with Carina's SQLite settings (config/settings.py)."""
    folder = Path(tempfile.mkdtemp(prefix="sqlite-", dir=scratch))
    try:
        db = sqlite3.connect(folder / "index.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        for statement in SCHEMA:
            db.execute(statement.format(serial="INTEGER"))
        start = time.perf_counter()
        for row in rows:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO instance (sop_instance_uid, series_instance_uid, metadata)"
                " VALUES (?, ?, ?)",
                row,
            )
            db.execute("UPDATE series SET instances = instances + 1 WHERE id = 1")
            db.execute("UPDATE study SET instances = instances + 1 WHERE id = 1")
            db.execute("COMMIT")
        seconds = time.perf_counter() - start
        db.close()
        return seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def postgres_commit_seconds(rows: list[tuple[str, str, str]]) -> float:
    """The same transactions on the local PostgreSQL, in a database made for this run."""
    import psycopg

    name = f"carina_floor_{os.getpid()}"
    pg_admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)
    pg_admin("CREATE DATABASE {}", name)
    try:
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=name, autocommit=True
        ) as db:
            for statement in SCHEMA:
                db.execute(statement.format(serial="SERIAL"))  # type: ignore[arg-type]
            start = time.perf_counter()
            for row in rows:
                with db.transaction():
                    db.execute(
                        "INSERT INTO instance (sop_instance_uid, series_instance_uid, metadata)"
                        " VALUES (%s, %s, %s)",
                        row,
                    )
                    db.execute("UPDATE series SET instances = instances + 1 WHERE id = 1")
                    db.execute("UPDATE study SET instances = instances + 1 WHERE id = 1")
            return time.perf_counter() - start
    finally:
        pg_admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def run(args: argparse.Namespace) -> int:
    orthanc = None if args.no_orthanc else find_orthanc()
    if orthanc is None and not args.no_orthanc:
        say("note: Orthanc is not installed (apt-get install orthanc); its rows are left out")
    sizes = [(128, 120 if args.quick else 600), (512, 30 if args.quick else 150)]
    databases = ["SQLite", *([] if args.no_postgres else ["PostgreSQL"])]
    scratch = Path(tempfile.mkdtemp(prefix="carina-floor-"))
    children = Children()
    table: list[list[str]] = []
    findings: list[str] = []
    started = dt.datetime.now(dt.UTC)
    try:
        for size, count in sizes:
            image = f"CT {size}x{size}"
            files = synthesize_series(size, count, scratch / f"ct{size}")
            batch = make_batch(image, files, scratch / f"batch{size}")
            rows = index_rows(files)
            runs: dict[str, list[float]] = {
                k: [] for k in ("transfer", "Python", "blob", "Orthanc", *databases)
            }
            for repeat in range(1, REPEATS + 1):
                say(f"{image}, {count} objects, round {repeat}/{REPEATS} …")
                runs["transfer"].append(
                    per_object_over_association(
                        children,
                        batch,
                        partial(storescp_receiver, children, scratch, True),
                        scratch,
                    )
                )
                runs["Python"].append(
                    per_object_over_association(
                        children, batch, partial(noop_receiver, children, scratch), scratch
                    )
                )
                runs["blob"].append(blob_fsync_seconds(files, scratch))
                runs["SQLite"].append(sqlite_commit_seconds(rows, scratch))
                if "PostgreSQL" in databases:
                    runs["PostgreSQL"].append(postgres_commit_seconds(rows))
                if orthanc is not None:
                    receiver = partial(orthanc_receiver, children, orthanc, scratch, True)
                    runs["Orthanc"].append(
                        per_object_over_association(children, batch, receiver, scratch)
                    )
            transfer = median_ms(runs["transfer"], count)
            python = median_ms(runs["Python"], count)
            blob = median_ms(runs["blob"], count)
            orthanc_ms = median_ms(runs["Orthanc"], count) if runs["Orthanc"] else None
            orthanc_rate = 1000 / orthanc_ms if orthanc_ms else None
            target = TARGET * orthanc_rate if orthanc_rate else None
            for kind in databases:
                commit = median_ms(runs[kind], count)
                floor = transfer + max(blob, commit)
                ceiling = 1000 / floor
                table.append(
                    [
                        image,
                        kind,
                        fmt(transfer),
                        fmt(python),
                        fmt(blob),
                        fmt(commit),
                        fmt(floor),
                        fmt(ceiling, ".0f"),
                        fmt(orthanc_ms),
                        fmt(orthanc_rate, ".0f"),
                        fmt(target, ".0f"),
                        fmt(1000 / target - floor if target else None),
                    ]
                )
                if target is not None and orthanc_rate is not None:
                    findings.append(
                        f"{image}, {kind} index: no durable receiver can exceed {ceiling:.0f}"
                        f" objects/s on one association here (floor {floor:.2f} ms per object:"
                        f" transfer {transfer:.2f} + the slower of blob fsync {blob:.2f} and"
                        f" index commit {commit:.2f}). Issue 3 asks for {target:.0f}/s (1.5 x"
                        f" Orthanc's {orthanc_rate:.0f}/s): "
                        + (
                            f"{1000 / target:.2f} ms per object, which leaves"
                            f" {1000 / target - floor:.2f} ms for all of the receiver's own work"
                            " (parsing, indexing, the DIMSE messages)."
                            if ceiling >= target
                            else "beyond that floor: no receiver can reach it here."
                        )
                        + f" A receiver in Python on pynetdicom needs {python:.2f} ms per"
                        f" object to answer without storing anything; with the slower of the"
                        f" blob fsync and the index commit, {python + max(blob, commit):.2f} ms"
                        + (
                            f": more than the {1000 / target:.2f} ms the target allows."
                            if python + max(blob, commit) > 1000 / target
                            else f", which leaves {1000 / target - python - max(blob, commit):.2f}"
                            " ms for parsing and indexing."
                        )
                    )
    finally:
        children.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)
    headers = [
        "image",
        "index",
        "transfer ms",
        "Python DIMSE ms",
        "blob fsync ms",
        "index commit ms",
        "floor ms",
        "ceiling /s",
        "Orthanc ms",
        "Orthanc /s",
        "target /s",
        "budget ms",
    ]
    print(text_table(headers, table, 2))
    for line in findings:
        print(f"- {line}")
    if args.quick:
        return 0
    versions = {"SQLite": sqlite3.sqlite_version, "DCMTK": dcmtk_version()}
    if "PostgreSQL" in databases:
        versions["PostgreSQL"] = pg_version() or "?"
    if orthanc is not None:
        versions["Orthanc"] = orthanc_version(orthanc)
    text = f"""{SECTION_TITLE}

Measured on {started:%Y-%m-%d} with `.venv/bin/python benchmarks/cstore_floor.py` ({git_tree()};
of Carina's code, only its DICOM listener runs here, in the Python DIMSE column).

Machine: {machine(versions)}. Everything on loopback and the same local disk.

What one association can carry, per object, to a receiver that acknowledges an object only
once it is durable and indexed (the rule Carina follows), before the receiver does any work of
its own: the **floor** is transfer + the slower of blob fsync and index commit (they could
overlap; see the script's docstring for each step). **ceiling** is 1000 / floor.

{markdown_table(headers, table, 2)}

{chr(10).join(bullet(line) for line in findings)}

Columns: **transfer**: storescu (tuned) into storescp writing files without fsync or index;
**Python DIMSE**: the same into Carina's listener (pynetdicom, one process) answering each
C-STORE at once and storing nothing (`benchmarks/noop_listener.py`): what the DIMSE layer of a
Python receiver costs before it stores anything;
**blob fsync**: fsync of the written file, rename, fsync of the folder; **index commit**: one
transaction inserting a row with the object's DICOM JSON and updating two counters (SQLite
in WAL mode with `synchronous=FULL`, or PostgreSQL); **Orthanc**: Debian's Orthanc receiving
the same files from the same storescu (its defaults: `SyncStorageArea` true, own SQLite index);
**target**: issue 3's 1.5 times Orthanc's instances/s for a tuned sender; **budget**: the
time per object the target leaves a receiver for its own work once the floor is paid
(negative: the target is beyond the floor). Median of {REPEATS} runs each; milliseconds per
object.
"""
    update_benchmarks_md(SECTION_TITLE, wrap(text))
    say(f"BENCHMARKS.md: section {SECTION_TITLE!r} updated")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer objects; no BENCHMARKS.md")
    parser.add_argument("--no-orthanc", action="store_true", help="leave Orthanc out")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
