"""DICOMweb latency and throughput of Carina (``carina web``) beside Debian's Orthanc with its
DICOMweb plugin, on the same synthetic data in the same run.

Run ``.venv/bin/python benchmarks/dicomweb.py`` (10,000 then 100,000 studies, SQLite), or
``--quick`` for a smoke run (200 studies, few repetitions; BENCHMARKS.md is left alone).
Options: ``--studies 10000,100000`` (archive sizes, loaded one after the other into the same
servers), ``--databases SQLite,PostgreSQL``, ``--reps``, ``--series-instances``, ``--loaders``,
``--no-orthanc``, ``--no-write``.

Data: one-instance studies (CT Image Storage, 8x8 pixels, varied patients, names, dates and
modalities) plus one benchmark study holding a 200-instance CT 512x512 16-bit series and
small 512x512 series for cold thumbnails. A child process synthesizes them into pack files
(Part 10 objects, one after the other); each Carina (fresh ``CARINA_HOME`` and database,
``carina migrate``) is filled by child processes calling the ingest pipeline ``ingest()`` for
each object (then ``carina migrate`` again: it refreshes the planner statistics, as the hourly
beat job of a running Carina does), and the private Orthanc (own SQLite index, DICOMweb
plugin) by this process through ``POST /instances``: the same bytes for both, loaded at the
same time, not timed.

Measured over HTTP on loopback, one keep-alive connection per server, Carina served by
``python -m carina web`` (gunicorn, default settings) with a Bearer JWT, requests to the
servers interleaved:

1. QIDO-RS (PS3.18 10.6) study searches as OHIF 3 sends them (``limit=101``, its
   ``includefield`` list): all studies, ``PatientName=*smi*``, a one-month ``StudyDate``
   range, ``00100020=<id>``, ``ModalitiesInStudy=MR``; p50/p95 at each archive size; the
   match counts are checked.
2. WADO-RS (PS3.18 10.4) ``GET …/series/{se}/metadata`` of the 200-instance series, p50/p95.
3. Every frame of that series (``…/frames/1``, ``multipart/related;
   type=application/octet-stream; transfer-syntax=*``) over 1 and over 4 connections, MB/s.
4. Rendered images (PS3.18 10.4, ``viewport``: 8.3.5.1.3): ``…/instances/{sop}/rendered``
   and the series thumbnail (Orthanc's plugin 1.x has no ``/thumbnail``: its series
   ``/rendered`` stands in), first request and repeated.

Progress goes to stderr, the tables to stdout; a full run replaces the section
``## DICOMweb: Carina and Orthanc (benchmarks/dicomweb.py)`` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import itertools
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import (
    BENCHMARKS_MD,
    MIB,
    Children,
    Progress,
    bullet,
    carina_env,
    database,
    default_hospital,
    find_orthanc,
    free_port,
    git_tree,
    machine,
    markdown_table,
    migrate,
    orthanc_get,
    orthanc_server,
    orthanc_version,
    pg_version,
    quantile,
    say,
    setup_django,
    snapshot_source,
    stop_on_sigterm,
    text_table,
    update_benchmarks_md,
    wrap,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

SECTION_TITLE = "## DICOMweb: Carina and Orthanc (benchmarks/dicomweb.py)"
HOST = "127.0.0.1"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
CARINA_ROOT, ORTHANC_ROOT = "/dicomweb", "/dicom-web"
USERNAME = "bench"
#: What OHIF 3.13 adds to every study search (see /work/shared/notes/ohif-viewer.md §3.1).
LIMIT = 101
OHIF_PAGE = (
    f"limit={LIMIT}&offset=0&fuzzymatching=false&includefield=00081030,00080060,00080090,00100030"
)
DICOM_JSON = "application/dicom+json"
FRAMES_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"
JPEG = "image/jpeg"
VIEWPORT = "viewport=256,256"
POPULATION_PIXELS = 8
SERIES_PIXELS = 512
THUMB_SERIES_INSTANCES = 2
#: Objects per pack file: loaders start on the first pack while later ones are written.
CHUNK = 2500
SEED = 2026
MONTH = ("20200301", "20200331")
#: Reconnect (untimed) before a request when the connection was idle this long: Orthanc closes
#: idle keep-alive connections after 1 s, gunicorn after 2 s.
IDLE_SECONDS = 0.5
TOKEN_SECONDS = 600  # access tokens live 15 minutes; fetch a new one after 10
HERE = Path(__file__).resolve()
#: The fixed cost of a request to each server stack: no DICOM, no authentication.
BASELINE = "HTTP baseline (no DICOM)"


# --------------------------------------------------------------------------------------------
# The synthetic archive: deterministic, so that every process derives the same objects


FAMILY_HEADS = (
    *("AND", "BERG", "CARL", "DAHL", "EK", "FOR", "GAR", "HALL", "IVAR", "JOHAN"),
    *("KARL", "LIND", "MARK", "NOR", "OL", "PERS", "RO", "SAND", "TOR", "WEST"),
)
FAMILY_TAILS = (
    *("SSON", "BERG", "STROM", "LUND", "MAN", "GREN", "HOLM", "QVIST"),
    *("DAHL", "FELT", "WALL", "BY", "NER", "STAD", "VIK"),
)
#: The family names that ``PatientName=*smi*`` finds, given to 1 patient in SMI_EVERY.
SMI_FAMILIES = ("SMITH", "GOLDSMITH", "SMIRNOVA", "SMITHSON", "NESMITH", "SMILEY")
SMI_EVERY, SMI_OFFSET = 1500, 7
GIVEN = (
    *("ANNA", "BRUNO", "CARLA", "DAVID", "ELENA", "FELIX", "GRETA", "HUGO", "IRIS", "JONAS"),
    *("KARIN", "LEO", "MARTA", "NILS", "OLGA", "PAUL", "RUTH", "SVEN", "TINA", "VIKTOR"),
)
MODALITY_WEIGHTS = {
    "CT": 26,
    "CR": 20,
    "MR": 18,
    "DX": 10,
    "US": 10,
    "MG": 7,
    "XA": 4,
    "PT": 3,
    "NM": 2,
}
BODY_PARTS = {
    "CT": ("CHEST", "ABDOMEN", "HEAD", "PELVIS", "SPINE"),
    "CR": ("CHEST", "HAND", "KNEE", "FOOT", "PELVIS"),
    "MR": ("BRAIN", "KNEE", "SPINE", "SHOULDER", "PROSTATE"),
    "DX": ("CHEST", "WRIST", "ANKLE", "HIP"),
    "US": ("ABDOMEN", "THYROID", "OBSTETRIC", "CAROTID"),
    "MG": ("SCREENING", "DIAGNOSTIC"),
    "XA": ("CORONARY", "CEREBRAL"),
    "PT": ("WHOLE BODY", "BRAIN"),
    "NM": ("BONE SCAN", "THYROID"),
}
REFERRING = ("NILSSON^EVA", "OKAFOR^JAMES", "ROSSI^MARCO", "TANAKA^YUKI", "")
STUDIES_PER_PATIENT = (1, 2, 3, 4, 5, 6, 7, 8)
STUDIES_PER_PATIENT_WEIGHTS = (30, 22, 15, 10, 8, 6, 5, 4)
FIRST_DAY, DAYS = dt.date(2010, 1, 1), (dt.date(2025, 12, 31) - dt.date(2010, 1, 1)).days + 1
BENCH_PATIENT_ID, BENCH_PATIENT_NAME, BENCH_DATE = "BENCH0001", "BENCHMARK^SERIES", "20250615"


@dataclass(frozen=True, slots=True)
class Study:
    """The attributes of one synthetic one-instance study."""

    index: int
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    date: str
    time: str
    accession: str
    modality: str
    description: str
    referring: str


def population() -> Iterator[Study]:
    """Studies 0, 1, 2, … (endless): patients with 1 to 8 studies each, in order."""
    rng = random.Random(SEED)
    modalities, weights = list(MODALITY_WEIGHTS), list(MODALITY_WEIGHTS.values())
    index = patient = 0
    while True:
        if patient % SMI_EVERY == SMI_OFFSET:
            family = SMI_FAMILIES[(patient // SMI_EVERY) % len(SMI_FAMILIES)]
        else:
            family = rng.choice(FAMILY_HEADS) + rng.choice(FAMILY_TAILS)
        name = f"{family}^{rng.choice(GIVEN)}"
        born = FIRST_DAY - dt.timedelta(days=rng.randrange(365 * 90))
        patient_id = f"MRN{(patient * 7919 + 104729) % 10**7:07d}"
        sex = rng.choice("FM")
        count = rng.choices(STUDIES_PER_PATIENT, STUDIES_PER_PATIENT_WEIGHTS)[0]
        for _ in range(count):
            modality = rng.choices(modalities, weights)[0]
            day = FIRST_DAY + dt.timedelta(days=rng.randrange(DAYS))
            yield Study(
                index=index,
                patient_id=patient_id,
                patient_name=name,
                birth_date=born.strftime("%Y%m%d"),
                sex=sex,
                date=day.strftime("%Y%m%d"),
                time=f"{rng.randrange(7, 20):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
                # 7919 is prime to 10**8: unique for index < 10**8.
                accession=f"A{(index * 7919 + 1234) % 10**8:08d}",
                modality=modality,
                description=f"{modality} {rng.choice(BODY_PARTS[modality])}",
                referring=rng.choice(REFERRING),
            )
            index += 1
        patient += 1


@dataclass(frozen=True)
class Uids:
    """UIDs of the run: ``2.25.<base><kind><number>`` (``base``: 20 random digits)."""

    base: int

    def _uid(self, kind: int, number: int) -> str:
        return f"2.25.{self.base}{kind}{number:07d}"

    def study(self, i: int) -> str:
        return self._uid(1, i)

    def series(self, i: int) -> str:
        return self._uid(2, i)

    def sop(self, i: int) -> str:
        return self._uid(3, i)

    @property
    def bench_study(self) -> str:
        return self._uid(4, 0)

    def bench_series(self, number: int) -> str:
        """Series 1 is the big series; 2, 3, … the small thumbnail series."""
        return self._uid(5, number)

    def bench_sop(self, number: int, k: int) -> str:
        return self._uid(6, number * 10_000 + k)


@dataclass(frozen=True)
class Bench:
    """The benchmark study: the big series (number 1) and the small ones (2 …)."""

    instances: int  # in the big series
    thumb_series: int  # small series timed for cold thumbnails; one more probes Orthanc

    @property
    def small_series(self) -> range:
        return range(2, self.thumb_series + 3)

    @property
    def total_instances(self) -> int:
        return self.instances + len(self.small_series) * THUMB_SERIES_INSTANCES

    @property
    def frame_bytes(self) -> int:
        return SERIES_PIXELS * SERIES_PIXELS * 2


@dataclass
class Expected:
    """What the queries must find, kept up to date while studies are generated."""

    exact_patient_id: str
    studies: int = 0
    smi: int = 0
    month: int = 0
    mr: int = 0
    exact: int = 0

    def add(self, study: Study) -> None:
        self.studies += 1
        self.smi += "SMI" in study.patient_name.upper()
        self.month += MONTH[0] <= study.date <= MONTH[1]
        self.mr += study.modality == "MR"
        self.exact += study.patient_id == self.exact_patient_id


def check_population() -> None:
    """The non-SMI names must not contain "smi", or the wildcard query would be wrong."""
    for head, tail, given in itertools.product(FAMILY_HEADS, FAMILY_TAILS, GIVEN):
        if "SMI" in f"{head}{tail}^{given}":
            raise AssertionError(f"{head}{tail}^{given} contains SMI")


# --------------------------------------------------------------------------------------------
# Pack files: Part 10 objects, each preceded by its length (4 bytes, little endian)


def pack_name(folder: Path, n: int) -> Path:
    return folder / f"pack{n:05d}.bin"


def pack_sizes(job: dict[str, Any]) -> list[int]:
    """How many objects each pack file of a synthesis job holds, in order."""
    studies = int(job["stop"]) - int(job["start"])
    sizes = [min(CHUNK, studies - k) for k in range(0, studies, CHUNK)]
    if job["bench"]:
        sizes.insert(0, Bench(job["bench"], job["thumb_series"]).total_instances)
    return sizes


def object_count(job: dict[str, Any]) -> int:
    return sum(pack_sizes(job))


def write_pack(folder: Path, n: int, objects: Iterable[bytes], progress: Progress) -> None:
    """Write pack ``n`` under a temporary name, then rename it: readers see it whole."""
    temporary = folder / f".pack{n:05d}.tmp"
    with temporary.open("wb") as out:
        for data in objects:
            out.write(struct.pack("<I", len(data)))
            out.write(data)
            progress.tick()
    temporary.rename(pack_name(folder, n))


def read_packs(
    folder: Path, numbers: Iterable[int], alive: Callable[[], bool] | None = None
) -> Iterator[bytes]:
    """The objects of the packs ``numbers``, waiting for each pack to be written."""
    timeout = 900
    for n in numbers:
        path = pack_name(folder, n)
        deadline = time.monotonic() + timeout
        while not path.exists():
            if alive is not None and not alive():
                raise RuntimeError(f"{path.name} will not come: the synthesis stopped")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path.name} did not appear in {timeout:.0f} s")
            time.sleep(0.02)
        with path.open("rb") as pack:
            while header := pack.read(4):
                (length,) = struct.unpack("<I", header)
                yield pack.read(length)


def encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def population_dataset(uids: Uids, study: Study) -> Dataset:
    from carina.core.testing import make_ct_slice

    i = study.index
    return make_ct_slice(
        study_uid=uids.study(i),
        series_uid=uids.series(i),
        sop_uid=uids.sop(i),
        index=i,
        size=POPULATION_PIXELS,
        patient_id=study.patient_id,
        patient_name=study.patient_name,
        modality=study.modality,
        extra={
            "PatientBirthDate": study.birth_date,
            "PatientSex": study.sex,
            "StudyDate": study.date,
            "StudyTime": study.time,
            "SeriesDate": study.date,
            "AccessionNumber": study.accession,
            "StudyDescription": study.description,
            "SeriesDescription": study.description,
            "ReferringPhysicianName": study.referring,
            "InstitutionName": "CARINA BENCHMARK HOSPITAL",
            "InstanceNumber": 1,
        },
    )


def bench_slice(uids: Uids, number: int, k: int) -> Dataset:
    """Slice ``k`` of series ``number`` of the benchmark study (CT 512x512, 16-bit)."""
    from carina.core.testing import make_ct_slice

    return make_ct_slice(
        study_uid=uids.bench_study,
        series_uid=uids.bench_series(number),
        sop_uid=uids.bench_sop(number, k),
        # The big series' pixels are those of make_ct_slice(index=k): checked on retrieval.
        index=k if number == 1 else number * 1000 + k,
        size=SERIES_PIXELS,
        patient_id=BENCH_PATIENT_ID,
        patient_name=BENCH_PATIENT_NAME,
        extra={
            "StudyDate": BENCH_DATE,
            "SeriesDate": BENCH_DATE,
            "AccessionNumber": "BENCH0001",
            "StudyDescription": "CT CHEST BENCHMARK",
            "SeriesDescription": "AXIAL 1.25 MM" if number == 1 else f"SCOUT {number}",
            "SeriesNumber": number,
            "InstanceNumber": k + 1,
        },
    )


def bench_objects(uids: Uids, bench: Bench) -> Iterator[bytes]:
    for k in range(bench.instances):
        yield encode(bench_slice(uids, 1, k))
    for number in bench.small_series:
        for k in range(THUMB_SERIES_INSTANCES):
            yield encode(bench_slice(uids, number, k))


# --------------------------------------------------------------------------------------------
# Child process side (``--worker synth|load|count``)


def worker_synth(job: dict[str, Any]) -> int:
    """Write the objects of studies [start, stop) (and the benchmark study) into packs."""
    folder, uids = Path(job["folder"]), Uids(job["base"])
    progress = Progress("synthesized", object_count(job), every=10)
    start = time.perf_counter()
    n = 0
    if job["bench"]:
        write_pack(
            folder, n, bench_objects(uids, Bench(job["bench"], job["thumb_series"])), progress
        )
        n += 1
    studies = itertools.islice(population(), job["start"], job["stop"])
    while batch := list(itertools.islice(studies, CHUNK)):
        write_pack(folder, n, (encode(population_dataset(uids, s)) for s in batch), progress)
        n += 1
    print(json.dumps({"seconds": time.perf_counter() - start}))
    return 0


def worker_load(job: dict[str, Any]) -> int:
    """Ingest every object of the packs through Carina's ``ingest()``; print a JSON summary."""
    setup_django()
    from carina.archive.ingest import IngestError, IngestStatus, Origin, ingest
    from carina.archive.models import Source

    hospital = default_hospital()
    origin = Origin(Source.IMPORT, "benchmarks/dicomweb.py")
    # This process takes every ``parts``-th pack, starting at pack ``part``.
    numbers = range(job["part"], len(pack_sizes(job)), job["parts"])
    total = sum(pack_sizes(job)[n] for n in numbers)
    label = job["label"] + (f" #{job['part'] + 1}" if job["parts"] > 1 else "")
    progress = Progress(f"{label} ingested", total, every=10)
    stored = failed = 0
    error = ""
    start = time.perf_counter()
    for n, data in enumerate(read_packs(Path(job["folder"]), numbers)):
        try:
            result = ingest(io.BytesIO(data), hospital=hospital, origin=origin, name=f"#{n}")
        except IngestError as exc:
            failed += 1
            error = error or str(exc)
        else:
            if result.status == IngestStatus.STORED:
                stored += 1
            else:
                failed += 1
                error = error or f"object #{n}: {result.status}"
        progress.tick()
    seconds = time.perf_counter() - start
    print(json.dumps({"stored": stored, "failed": failed, "error": error, "seconds": seconds}))
    return 1 if failed else 0


def worker_count() -> int:
    """Print the default hospital's study and instance counts as JSON."""
    setup_django()
    from carina.archive.models import Instance, Study

    hospital = default_hospital()
    counts = {
        "studies": Study.objects.for_hospital(hospital).count(),
        "instances": Instance.objects.for_hospital(hospital).count(),
    }
    print(json.dumps(counts))
    return 0


def worker_command(worker: str, job: dict[str, Any] | None = None) -> list[str]:
    argv = [sys.executable, str(HERE), "--worker", worker]
    return [*argv, "--job", json.dumps(job)] if job is not None else argv


# --------------------------------------------------------------------------------------------
# HTTP: one keep-alive connection per client; the timing covers request to last body byte


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes
    seconds: float


class Tokens:
    """Carina access tokens (``POST /api/auth/token/``), fetched again after 10 minutes."""

    def __init__(self, port: int, password: str) -> None:
        self.port, self.password = port, password
        self.lock = threading.Lock()
        self.access = ""
        self.fetched = -math.inf

    def header(self) -> str:
        with self.lock:
            if time.monotonic() - self.fetched > TOKEN_SECONDS:
                self.access = self._fetch()
                self.fetched = time.monotonic()
            return f"Bearer {self.access}"

    def _fetch(self) -> str:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            body = json.dumps({"username": USERNAME, "password": self.password})
            conn.request(
                "POST", "/api/auth/token/", body=body, headers={"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"POST /api/auth/token/: HTTP {response.status} {data[:300]!r}")
        return str(json.loads(data)["access"])


class Client:
    """One keep-alive connection to a server. Reconnecting is never timed: before a request
    after an idle pause, or once more when the server had closed the connection."""

    def __init__(self, port: int, tokens: Tokens | None = None) -> None:
        self.port, self.tokens = port, tokens
        self.conn: http.client.HTTPConnection | None = None
        self.last = -math.inf

    def connect(self) -> http.client.HTTPConnection:
        self.close()
        conn = http.client.HTTPConnection(HOST, self.port, timeout=600)
        conn.connect()
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn, self.last = conn, time.monotonic()
        return conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Reply:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if self.tokens is not None:
            sent["Authorization"] = self.tokens.header()
        for attempt in (1, 2):
            conn = self.conn
            if conn is None or time.monotonic() - self.last > IDLE_SECONDS:
                conn = self.connect()
            try:
                start = time.perf_counter()
                conn.request(method, path, body=body, headers=sent)
                response = conn.getresponse()
                data = response.read()
                seconds = time.perf_counter() - start
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
                continue
            self.last = time.monotonic()
            if response.will_close:
                self.close()
            return Reply(response.status, response.getheader("Content-Type", ""), data, seconds)
        raise AssertionError("unreachable")

    def get(self, path: str, accept: str) -> Reply:
        return self.request("GET", path, Accept=accept)


# --------------------------------------------------------------------------------------------
# Servers


@dataclass
class Server:
    name: str  # "Carina (SQLite)", "Orthanc"
    kind: str  # "Carina" or "Orthanc"
    database: str
    port: int
    root: str
    tokens: Tokens | None = None
    #: Carina only: the environment of its commands (CARINA_HOME, database, code copy).
    env: dict[str, str] | None = None
    client: Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.new_client()

    def new_client(self) -> Client:
        return Client(self.port, self.tokens)

    def counts(self) -> tuple[int, int]:
        """(studies, instances) the server holds."""
        if self.env is None:
            reply = self.client.get("/statistics", "application/json")
            if reply.status != 200:
                raise RuntimeError(f"{self.name}: GET /statistics: {http_error(reply)}")
            stats = json.loads(reply.body)
            return int(stats["CountStudies"]), int(stats["CountInstances"])
        done = subprocess.run(
            worker_command("count"),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: counting failed: {done.stderr[-500:]}")
        counts = json.loads(done.stdout.strip().splitlines()[-1])
        return int(counts["studies"]), int(counts["instances"])


class Ids:
    """Names of this run's PostgreSQL databases (carina_dicomweb_bench_PID_N)."""

    def __init__(self) -> None:
        self.n = 0

    def next_name(self) -> str:
        self.n += 1
        return f"carina_dicomweb_bench_{os.getpid()}_{self.n}"


def tail(path: Path, chars: int = 1500) -> str:
    try:
        return " ".join(path.read_text(errors="replace")[-chars:].split())
    except OSError:
        return ""


def carina_command(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "carina", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"carina {args[0]} failed ({done.returncode}): {done.stderr[-800:]}")


@contextmanager
def carina_web(
    children: Children, kind: str, scratch: Path, code_dir: Path, ids: Ids
) -> Iterator[Server]:
    """``carina web`` in a fresh CARINA_HOME and database, with a radiologist to sign in."""
    home = Path(tempfile.mkdtemp(prefix="carina-", dir=scratch))
    try:
        with database(kind, home, ids.next_name()) as url:
            env = carina_env(home, url, code_dir)
            port = free_port()
            env.update(CARINA_HTTP_HOST=HOST, CARINA_HTTP_PORT=str(port))
            migrate(env)
            password = secrets.token_urlsafe(18)
            carina_command(
                env,
                *("createadmin", "--username", USERNAME, "--password", password),
                *("--hospital", "default", "--role", "radiologist"),
            )
            log = home / "web.log"
            with log.open("wb") as out:
                proc = children.start(
                    [sys.executable, "-m", "carina", "web"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                deadline = time.monotonic() + 90
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"carina web exited at start-up: {tail(log)}")
                    probe = Client(port)
                    try:
                        reply = probe.get("/api/health/live/", "application/json")
                    except OSError:
                        pass
                    else:
                        if reply.status == 200:
                            break
                        raise RuntimeError(
                            f"carina web answers /api/health/live/ with HTTP {reply.status}: "
                            f"{tail(log)}"
                        )
                    finally:
                        probe.close()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"carina web did not answer in 90 s: {tail(log)}")
                    time.sleep(0.2)
                tokens = Tokens(port, password)
                tokens.header()
                yield Server(f"Carina ({kind})", "Carina", kind, port, CARINA_ROOT, tokens, env)
            finally:
                code, _ = children.reap(proc, timeout=0)
                if code not in (0, -signal.SIGTERM):
                    say(f"    note: carina web exited with {code}: {tail(log, 300)}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def orthanc_dicomweb(children: Children, binary: str, scratch: Path) -> Iterator[Server]:
    """A private Orthanc with the DICOMweb plugin: own SQLite index and storage, loopback."""
    folder = Path(tempfile.mkdtemp(prefix="orthanc-", dir=scratch))
    try:
        port = free_port()
        config: dict[str, Any] = {
            "Name": "CARINA_BENCH",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "index"),
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "HttpServerEnabled": True,
            "HttpPort": port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "RegisteredUsers": {},
            "DicomServerEnabled": False,
            "SaveJobs": False,
            "DicomWeb": {"Enable": True, "Root": f"{ORTHANC_ROOT}/"},
        }
        with orthanc_server(children, binary, folder, config):
            yield Server("Orthanc", "Orthanc", "own SQLite", port, ORTHANC_ROOT)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def dicomweb_plugin_version(port: int) -> str:
    try:
        return str(orthanc_get(port, "/plugins/dicom-web").get("Version", "?"))
    except (OSError, RuntimeError):
        return "?"


# --------------------------------------------------------------------------------------------
# Loading (not timed for the tables)


def last_json(children: Children, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Wait for a worker; the JSON object on the last line of its output ({} if none)."""
    out, _ = proc.communicate(timeout=7200)
    children.reap(proc, timeout=0)
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else {}
    except ValueError:
        found = {}
    return found if isinstance(found, dict) else {}


@dataclass
class Load:
    """How long one archive size took to synthesize and load (for the notes)."""

    studies: int
    seconds: dict[str, float] = field(default_factory=dict)


def load(
    children: Children,
    servers: list[Server],
    scratch: Path,
    code_dir: Path,
    job: dict[str, Any],
    parts: int,
) -> Load:
    """Synthesize studies [start, stop) into packs and load every server from them at once:
    ``parts`` children ingest into each Carina (each its share of the packs), this process
    POSTs to Orthanc."""
    folder = scratch / f"packs-{job['start']}-{job['stop']}"
    folder.mkdir()
    job = {**job, "folder": str(folder)}
    count = object_count(job)
    result = Load(job["stop"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARINA_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code_dir), env.get("PYTHONPATH")) if p)
    started = time.perf_counter()
    synth = children.start(worker_command("synth", job), env=env, stdout=subprocess.PIPE)
    loaders = []
    for server in servers:
        for part in range(parts if server.env is not None else 0):
            proc = children.start(
                worker_command("load", {**job, "label": server.name, "part": part, "parts": parts}),
                env=server.env,
                stdout=subprocess.PIPE,
            )
            loaders.append((server, proc))
    try:
        orthanc = [s for s in servers if s.env is None]
        for server in orthanc:
            progress = Progress(f"{server.name} stored", count, every=10)
            alive: Callable[[], bool] = lambda: synth.poll() in (None, 0)  # noqa: E731
            for data in read_packs(folder, range(len(pack_sizes(job))), alive):
                reply = server.client.request(
                    "POST", "/instances", data, Content_Type="application/dicom"
                )
                if reply.status != 200:
                    raise RuntimeError(f"Orthanc POST /instances: HTTP {reply.status}")
                progress.tick()
            result.seconds[server.name] = time.perf_counter() - started
        summary = last_json(children, synth)
        if synth.returncode != 0:
            raise RuntimeError(f"the synthesis exited with {synth.returncode}")
        result.seconds["synthesis"] = float(summary["seconds"])
        for server, proc in loaders:
            summary = last_json(children, proc)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"{server.name}: loading failed ({proc.returncode}): "
                    f"{summary.get('failed', '?')} objects refused, first: {summary.get('error')}"
                )
            seconds = float(summary["seconds"])
            result.seconds[server.name] = max(seconds, result.seconds.get(server.name, 0.0))
        # What a running Carina does every hour (beat) and `carina import` after a bulk load:
        # refresh the planner statistics (carina.archive.planner; `carina migrate` does it
        # too). Not timed.
        for server in servers:
            if server.env is not None:
                migrate(server.env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result


# --------------------------------------------------------------------------------------------
# Timing


@dataclass
class Timing:
    """Latencies of one measure on one server, and what it answered."""

    seconds: list[float] = field(default_factory=list)
    results: set[str] = field(default_factory=set)
    error: str = ""
    spent: float = 0.0

    def q(self, q: float) -> float | None:
        return None if self.error else quantile(self.seconds, q)


class AnswerError(ValueError):
    pass


Check = Callable[[Reply], str]


@dataclass(frozen=True)
class Probe:
    """One measure: a GET per server kind, what it must answer, and how to read the answer."""

    measure: str
    studies: int
    paths: dict[str, str]  # "Carina"/"Orthanc" → path below the DICOMweb root
    accept: str
    check: Check
    expected: str
    #: The paths start at the server's root, not at its DICOMweb root.
    absolute: bool = False

    def url(self, server: Server) -> str:
        return ("" if self.absolute else server.root) + self.paths[server.kind]


def http_error(reply: Reply) -> str:
    text = reply.body[:300].decode(errors="replace")
    try:
        message = json.loads(text).get("error", text)
    except (ValueError, AttributeError):
        message = text
    return f"HTTP {reply.status}: {' '.join(str(message).split())}"


def fetch(server: Server, client: Client, probe: Probe, timing: Timing, timed: bool) -> None:
    """One request; a refusal or a transport error ends the measure (``timing.error``)."""
    if timing.error:
        return
    try:
        reply = client.get(probe.url(server), probe.accept)
    except (OSError, http.client.HTTPException) as exc:
        timing.error = f"{type(exc).__name__}: {exc}"
        return
    if reply.status not in (200, 204):
        timing.error = http_error(reply)
        return
    try:
        timing.results.add(probe.check(reply))
    except AnswerError as exc:
        timing.error = f"unexpected answer: {exc}"
        return
    if timed:
        timing.seconds.append(reply.seconds)
        timing.spent += reply.seconds


@dataclass(frozen=True)
class Repeat:
    """How often a repeated measure runs: ``reps`` timed runs after ``warmup``, fewer (at
    least ``min_runs``) once ``budget`` seconds were spent on one measure and server."""

    reps: int
    warmup: int
    budget: float
    min_runs: int = 10


def time_repeated(
    servers: list[Server], probes: list[Probe], repeat: Repeat
) -> dict[tuple[str, str], Timing]:
    """Each probe ``repeat.reps`` times per server, requests interleaved over the servers."""
    timings = {(p.measure, s.name): Timing() for p in probes for s in servers}
    for rep in range(repeat.warmup + repeat.reps):
        timed = rep >= repeat.warmup
        for probe in probes:
            for server in servers:
                timing = timings[(probe.measure, server.name)]
                enough = len(timing.seconds) >= repeat.min_runs
                if timed and enough and timing.spent >= repeat.budget:
                    continue
                fetch(server, server.client, probe, timing, timed)
    return timings


def time_first(
    servers: list[Server], probes: list[Probe], measure: str
) -> dict[tuple[str, str], Timing]:
    """The first request of each probe (a different resource each) on every server."""
    timings = {(measure, s.name): Timing() for s in servers}
    for probe in probes:
        for server in servers:
            fetch(server, server.client, probe, timings[(measure, server.name)], True)
    return timings


# Checks: what an answer must be (AnswerError otherwise); the string goes in "result"


def json_of(reply: Reply) -> Any:
    try:
        return json.loads(reply.body)
    except ValueError as exc:
        raise AnswerError(f"not JSON: {exc}") from None


def count_studies(reply: Reply) -> str:
    items = json_of(reply) if reply.status == 200 and reply.body.strip() else []
    if not isinstance(items, list):
        raise AnswerError("not a JSON array")
    if any("0020000D" not in item for item in items):
        raise AnswerError("a match without StudyInstanceUID")
    return str(len(items))


def instances_metadata(expected: int) -> Check:
    def check(reply: Reply) -> str:
        items = json_of(reply)
        if not isinstance(items, list) or any("00080018" not in item for item in items):
            raise AnswerError("not a JSON array of instances")
        return f"{len(items)} instances"

    return check


def json_answer(reply: Reply) -> str:
    json_of(reply)
    return "JSON"


def jpeg(reply: Reply) -> str:
    if not reply.body.startswith(b"\xff\xd8") or not reply.content_type.startswith(JPEG):
        raise AnswerError(f"not a JPEG ({reply.content_type})")
    return "JPEG"


def frame_part(reply: Reply) -> bytes:
    """The payload of the first part of a multipart/related answer."""
    found = re.search(r'boundary="?([^";]+)"?', reply.content_type)
    if not reply.content_type.startswith("multipart/related") or not found:
        raise AnswerError(f"not multipart/related ({reply.content_type})")
    delimiter = b"--" + found.group(1).encode()
    parts = reply.body.split(delimiter)
    if len(parts) < 3:
        raise AnswerError("no complete part")
    part = parts[1]
    _head, separator, payload = part.partition(b"\r\n\r\n")
    if not separator:
        raise AnswerError("a part without headers")
    return payload[:-2] if payload.endswith(b"\r\n") else payload


# --------------------------------------------------------------------------------------------
# What is measured


@dataclass
class LatencyRow:
    measure: str
    studies: int
    database: str  # Carina's
    expected: str
    carina: Timing
    orthanc: Timing | None

    def ratio(self, q: float) -> float | None:
        mine = self.carina.q(q)
        theirs = self.orthanc.q(q) if self.orthanc else None
        if mine and theirs and self.ok(self.carina) and self.ok(self.orthanc):
            return theirs / mine
        return None

    def ok(self, timing: Timing | None) -> bool:
        return timing is not None and not timing.error and timing.results <= {self.expected}


@dataclass
class FrameTiming:
    seconds: list[float] = field(default_factory=list)
    error: str = ""
    exact: str = ""  # the first frame compared with the pixel data written

    def median(self) -> float | None:
        return None if self.error else quantile(self.seconds, 0.5)


@dataclass
class FrameRow:
    connections: int
    database: str
    frames: int
    frame_bytes: int
    carina: FrameTiming
    orthanc: FrameTiming | None

    @property
    def total_bytes(self) -> int:
        return self.frames * self.frame_bytes

    def rate(self, timing: FrameTiming | None) -> float | None:
        median = timing.median() if timing else None
        return self.total_bytes / MIB / median if median else None

    @property
    def ratio(self) -> float | None:
        mine, theirs = self.rate(self.carina), self.rate(self.orthanc)
        return mine / theirs if mine and theirs else None


def qido_probes(expected: Expected) -> list[Probe]:
    """The study searches, OHIF's paging and include fields added to each."""

    def probe(measure: str, query: str, matches: int) -> Probe:
        path = f"/studies?{query}&{OHIF_PAGE}" if query else f"/studies?{OHIF_PAGE}"
        return Probe(
            measure,
            expected.studies,
            {"Carina": path, "Orthanc": path},
            DICOM_JSON,
            count_studies,
            str(min(matches, LIMIT)),
        )

    pid = expected.exact_patient_id
    return [
        Probe(
            BASELINE,
            expected.studies,
            {"Carina": "/api/health/live/", "Orthanc": "/system"},
            "application/json",
            json_answer,
            "JSON",
            absolute=True,
        ),
        probe("QIDO all studies", "", expected.studies),
        probe("QIDO PatientName=*smi*", "PatientName=*smi*", expected.smi),
        probe(
            f"QIDO StudyDate={MONTH[0]}-{MONTH[1]}",
            f"StudyDate={MONTH[0]}-{MONTH[1]}",
            expected.month,
        ),
        probe("QIDO 00100020=<one patient>", f"00100020={pid}", expected.exact),
        probe("QIDO ModalitiesInStudy=MR", "ModalitiesInStudy=MR", expected.mr),
    ]


def latency_rows(
    servers: list[Server],
    probes: Sequence[Probe],
    timings: dict[tuple[str, str], Timing],
) -> list[LatencyRow]:
    orthanc = next((s for s in servers if s.kind == "Orthanc"), None)
    rows = []
    for probe in probes:
        for server in servers:
            if server.kind != "Carina":
                continue
            rows.append(
                LatencyRow(
                    probe.measure,
                    probe.studies,
                    server.database,
                    probe.expected,
                    timings[(probe.measure, server.name)],
                    timings[(probe.measure, orthanc.name)] if orthanc else None,
                )
            )
    return rows


def time_frames(
    servers: list[Server], paths: list[str], bench: Bench, passes: int, expected_first: bytes
) -> list[FrameRow]:
    """Every frame of the big series, per pass, over 1 connection and over 4 at once."""
    timings = {(c, s.name): FrameTiming() for c in (1, 4) for s in servers}
    for server in servers:  # the first frame, byte for byte (untimed)
        reply = server.client.get(server.root + paths[0], FRAMES_ACCEPT)
        for connections in (1, 4):
            timing = timings[(connections, server.name)]
            if reply.status != 200:
                timing.error = http_error(reply)
                continue
            try:
                same = frame_part(reply) == expected_first
            except AnswerError as exc:
                timing.error = f"unexpected answer: {exc}"
                continue
            timing.exact = "same bytes" if same else "DIFFERENT bytes"
    for n in range(1 + passes):  # pass 0 is an untimed warm-up
        for connections in (1, 4):
            for server in servers:
                timing = timings[(connections, server.name)]
                if timing.error:
                    continue
                try:
                    seconds = frame_pass(server, paths, connections, bench.frame_bytes)
                except (OSError, http.client.HTTPException, AnswerError) as exc:
                    timing.error = " ".join(str(exc).split())[:300]
                    continue
                if n:
                    timing.seconds.append(seconds)
    orthanc = next((s for s in servers if s.kind == "Orthanc"), None)
    return [
        FrameRow(
            connections,
            server.database,
            len(paths),
            bench.frame_bytes,
            timings[(connections, server.name)],
            timings[(connections, orthanc.name)] if orthanc else None,
        )
        for connections in (1, 4)
        for server in servers
        if server.kind == "Carina"
    ]


def frame_pass(server: Server, paths: list[str], connections: int, frame_bytes: int) -> float:
    """Seconds to fetch every frame once, the paths dealt round-robin over the connections."""
    if connections == 1:
        clients = [server.client]
    else:
        clients = [server.new_client() for _ in range(connections)]
    for client in clients:
        client.connect()  # untimed
    errors: list[str] = []

    def fetch_all(client: Client, mine: list[str]) -> None:
        try:
            for path in mine:
                reply = client.get(server.root + path, FRAMES_ACCEPT)
                if reply.status != 200:
                    raise AnswerError(http_error(reply))
                if len(reply.body) < frame_bytes:
                    raise AnswerError(f"{len(reply.body)} bytes for a {frame_bytes}-byte frame")
        except Exception as exc:  # reported by the caller, not lost in the thread
            errors.append(f"{type(exc).__name__}: {exc}")

    shares = [paths[k::connections] for k in range(connections)]
    start = time.perf_counter()
    if connections == 1:
        fetch_all(clients[0], shares[0])
    else:
        threads = [
            threading.Thread(target=fetch_all, args=(client, share))
            for client, share in zip(clients, shares, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    seconds = time.perf_counter() - start
    if connections > 1:
        for client in clients:
            client.close()
    if errors:
        raise AnswerError(errors[0])
    return seconds


@dataclass
class SeriesResults:
    latency: list[LatencyRow]
    frames: list[FrameRow]
    notes: list[str]


def measure_series(
    servers: list[Server], uids: Uids, bench: Bench, studies: int, repeat: Repeat, passes: int
) -> SeriesResults:
    """Series metadata, frames, rendered instances and series thumbnails of the benchmark
    study, with ``studies`` studies in the archive."""
    from carina.core.testing import make_ct_slice

    notes: list[str] = []
    study = f"/studies/{uids.bench_study}"
    big = f"{study}/series/{uids.bench_series(1)}"
    sops = [uids.bench_sop(1, k) for k in range(bench.instances)]
    n = bench.instances

    def same(path: str) -> dict[str, str]:
        return {"Carina": path, "Orthanc": path}

    say(f"  series metadata ({n} instances) …")
    metadata = Probe(
        f"series metadata ({n} instances)",
        studies,
        same(f"{big}/metadata"),
        DICOM_JSON,
        instances_metadata(n),
        f"{n} instances",
    )
    latency = latency_rows(servers, [metadata], time_repeated(servers, [metadata], repeat))

    say(f"  frames ({n} x {SERIES_PIXELS}x{SERIES_PIXELS}, {passes} passes) …")
    first = make_ct_slice(
        study_uid=uids.bench_study, series_uid=uids.bench_series(1), index=0, size=SERIES_PIXELS
    ).PixelData
    frame_paths = [f"{big}/instances/{sop}/frames/1" for sop in sops]
    frames = time_frames(servers, frame_paths, bench, passes, first)

    say("  series thumbnails, first request and repeated …")
    orthanc_thumbnail = "rendered"
    orthanc = next((s for s in servers if s.kind == "Orthanc"), None)
    if orthanc is not None:
        probe_series = f"{study}/series/{uids.bench_series(bench.small_series[-1])}"
        reply = orthanc.client.get(f"{orthanc.root}{probe_series}/thumbnail?{VIEWPORT}", JPEG)
        if reply.status == 200:
            orthanc_thumbnail = "thumbnail"
        else:
            notes.append(
                f"Orthanc's DICOMweb plugin answers `/thumbnail` with HTTP {reply.status}: "
                "its series `/rendered?viewport=256,256` (one JPEG of the series) stands in "
                "for it in the thumbnail rows."
            )

    def thumbnail(series_uid: str, measure: str) -> Probe:
        base = f"{study}/series/{series_uid}"
        return Probe(
            measure,
            studies,
            {
                "Carina": f"{base}/thumbnail?{VIEWPORT}",
                "Orthanc": f"{base}/{orthanc_thumbnail}?{VIEWPORT}",
            },
            JPEG,
            jpeg,
            "JPEG",
        )

    cold_name = "series thumbnail, first request"
    series_uids = [uids.bench_series(1)] + [
        uids.bench_series(number) for number in bench.small_series[:-1]
    ]
    cold = [thumbnail(uid, cold_name) for uid in series_uids]
    latency += latency_rows(servers, cold[:1], time_first(servers, cold, cold_name))
    again = thumbnail(uids.bench_series(1), "series thumbnail, repeated")
    latency += latency_rows(servers, [again], time_repeated(servers, [again], repeat))
    say("  rendered instances, first request and repeated …")
    # Instances spread over the series, but not those a series thumbnail may have used.
    avoid = {0, (n - 1) // 2, n // 2, n - 1}
    spread = [k for k in range(n) if k not in avoid][:: max(1, n // bench.thumb_series)]
    spread = spread[: bench.thumb_series]

    def rendered(k: int, measure: str) -> Probe:
        path = f"{big}/instances/{sops[k]}/rendered?{VIEWPORT}"
        return Probe(measure, studies, same(path), JPEG, jpeg, "JPEG")

    cold_name = "rendered instance, first request"
    cold = [rendered(k, cold_name) for k in spread]
    latency += latency_rows(servers, cold[:1], time_first(servers, cold, cold_name))
    again = rendered(n // 2, "rendered instance, repeated")
    latency += latency_rows(servers, [again], time_repeated(servers, [again], repeat))

    return SeriesResults(latency, frames, notes)


# --------------------------------------------------------------------------------------------
# Reporting

LATENCY_HEADERS = [
    "measure",
    "studies",
    "Carina DB",
    "result",
    "runs",
    "Carina p50 ms",
    "Carina p95 ms",
    "Orthanc p50 ms",
    "Orthanc p95 ms",
    "Orthanc/Carina p50",
    "Orthanc/Carina p95",
]
FRAME_HEADERS = [
    "frames",
    "conn.",
    "Carina DB",
    "MB",
    "passes",
    "Carina MB/s",
    "Carina frames/s",
    "Orthanc MB/s",
    "Orthanc frames/s",
    "Carina/Orthanc",
    "pixel data",
]


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _ms(value: float | None) -> str:
    return _num(value * 1000 if value is not None else None, ".1f")


def result_cell(row: LatencyRow) -> str:
    problems = []
    for name, timing in (("Carina", row.carina), ("Orthanc", row.orthanc)):
        if timing is None:
            continue
        if timing.error:
            problems.append(f"{name} FAILED")
        elif timing.results - {row.expected}:
            problems.append(f"{name} {'/'.join(sorted(timing.results))} WRONG")
    return row.expected + (f" ({', '.join(problems)})" if problems else "")


def latency_cells(row: LatencyRow) -> list[str]:
    mine = len(row.carina.seconds)
    theirs = len(row.orthanc.seconds) if row.orthanc else None
    runs = str(mine) if theirs is None or theirs == mine else f"{mine}/{theirs}"
    orthanc = row.orthanc or Timing(error="not run")
    return [
        row.measure,
        f"{row.studies:,}",
        row.database,
        result_cell(row),
        runs,
        _ms(row.carina.q(0.5)),
        _ms(row.carina.q(0.95)),
        _ms(orthanc.q(0.5)),
        _ms(orthanc.q(0.95)),
        _num(row.ratio(0.5), ".2f"),
        _num(row.ratio(0.95), ".2f"),
    ]


def frame_cells(row: FrameRow) -> list[str]:
    def per_second(timing: FrameTiming | None) -> str:
        median = timing.median() if timing else None
        return _num(row.frames / median if median else None, ".0f")

    exact = [
        f"{name} {t.exact}"
        for name, t in (("Carina", row.carina), ("Orthanc", row.orthanc))
        if t is not None and t.exact
    ]
    passes = len(row.carina.seconds)
    return [
        str(row.frames),
        str(row.connections),
        row.database,
        f"{row.total_bytes / MIB:.0f}",
        str(passes),
        _num(row.rate(row.carina), ".1f"),
        per_second(row.carina),
        _num(row.rate(row.orthanc), ".1f"),
        per_second(row.orthanc),
        _num(row.ratio, ".2f"),
        ", ".join(exact) or "—",
    ]


def error_notes(latency: list[LatencyRow], frames: list[FrameRow]) -> list[str]:
    """One line per (server, error), naming the measures it ended."""
    failures: dict[tuple[str, str], list[str]] = {}
    for lrow in latency:
        for name, t in ((f"Carina ({lrow.database})", lrow.carina), ("Orthanc", lrow.orthanc)):
            if t is not None and t.error:
                what = f"{lrow.measure} ({lrow.studies:,} studies)"
                failures.setdefault((name, t.error), []).append(what)
    for frow in frames:
        for name, f in ((f"Carina ({frow.database})", frow.carina), ("Orthanc", frow.orthanc)):
            if f is not None and f.error:
                failures.setdefault((name, f.error), []).append(
                    f"frames over {frow.connections} connection(s)"
                )
    notes = []
    for (name, error), measures in failures.items():
        unique = list(dict.fromkeys(measures))
        notes.append(f"{name} failed on {', '.join(unique)}: {error}")
    return notes


def summary(latency: list[LatencyRow], frames: list[FrameRow]) -> list[str]:
    lines = []
    for studies in sorted({r.studies for r in latency if r.measure.startswith("QIDO")}):
        qido = [r for r in latency if r.measure.startswith("QIDO") and r.studies == studies]
        ratios = [x for x in (r.ratio(0.5) for r in qido) if x is not None]
        if ratios:
            lines.append(
                f"QIDO-RS study searches on {studies:,} studies: Orthanc p50 / Carina p50 "
                f"from {min(ratios):.2f} to {max(ratios):.2f} ({len(ratios)} of {len(qido)} "
                "rows measured on both; above 1: Carina answers sooner)."
            )
    for row in latency:
        if row.measure.startswith("QIDO") or row.measure == BASELINE:
            continue
        if row.ratio(0.5) is not None:
            lines.append(
                f"{row.measure} ({row.database}): Orthanc p50 / Carina p50 = {row.ratio(0.5):.2f}."
            )
    for frow in frames:
        if frow.ratio is not None:
            lines.append(
                f"Frames over {frow.connections} connection(s) ({frow.database}): Carina "
                f"{frow.rate(frow.carina):.1f} MB/s, {frow.ratio:.2f} times Orthanc's."
            )
    return lines


def items(entries: Sequence[tuple[int, str]], width: int = 96) -> str:
    """A Markdown list, nested by depth (0, 1, …), each item wrapped after interpolation."""
    lines = []
    for depth, text in entries:
        indent = "  " * depth
        lines.append(
            textwrap.fill(
                " ".join(text.split()),
                width,
                initial_indent=f"{indent}- ",
                subsequent_indent=f"{indent}  ",
                break_on_hyphens=False,
                break_long_words=False,
            )
        )
    return "\n".join(lines)


def method(settings: dict[str, Any]) -> str:
    """How the figures were obtained, for BENCHMARKS.md."""
    sizes = " then ".join(f"{n:,}" for n in settings["studies"])
    n = settings["series_instances"]
    modalities = ", ".join(f"{m} {w} %" for m, w in MODALITY_WEIGHTS.items())
    return items(
        [
            (0, "**Servers**, started fresh for the run and kept for all of it:"),
            (
                1,
                """`Carina (DB)`: `python -m carina web` (gunicorn; `CARINA_WEB_WORKERS` and
                every other setting at its default, except `CARINA_LOG_LEVEL=WARNING`) in a
                fresh `CARINA_HOME` with a fresh, empty database (SQLite file, or a PostgreSQL
                database created for the run and dropped after it), `carina migrate` first.
                Requests carry `Authorization: Bearer` with an access token of a radiologist
                of the default hospital (`POST /api/auth/token/`, fetched again every 10
                minutes, outside the timing): each request is authenticated, scoped to the
                hospital and audited where the endpoint records an audit event.""",
            ),
            (
                1,
                f"""`Orthanc`: Debian's Orthanc {settings["orthanc"]} with its DICOMweb
                plugin {settings["plugin"]} (`"DicomWeb": {{"Enable": true, "Root":
                "/dicom-web/"}}`), its own SQLite index and storage folder, no
                authentication (`AuthenticationEnabled` false, loopback only), DICOM
                listener off, Orthanc's and the plugin's defaults otherwise (keep-alive on
                with a 1 s idle timeout; the plugin's default `SeriesMetadata`, which reads
                the instances' files for `/metadata`). With several Carina databases, the
                same Orthanc figures face each of them.""",
            ),
            (
                0,
                f"""**Data**, the same bytes for every server: {sizes} one-instance studies
                (CT Image Storage, {POPULATION_PIXELS}x{POPULATION_PIXELS} pixels, Explicit VR
                Little Endian; 1 to 8 studies per patient; {
                    len(FAMILY_HEADS) * len(FAMILY_TAILS)
                } synthetic family names and, for 1 patient in
                {SMI_EVERY:,}, one of {", ".join(SMI_FAMILIES)}; study dates drawn uniformly
                from 2010–2025; modalities {modalities}), plus one benchmark study: a
                {n}-instance CT {SERIES_PIXELS}x{SERIES_PIXELS} 16-bit series (random pixel
                values, {n * SERIES_PIXELS * SERIES_PIXELS * 2 / MIB:.0f} MB of pixel data)
                and {settings["thumb_series"] + 1} small series of {THUMB_SERIES_INSTANCES}
                such slices. The archive sizes are loaded one after the other into the same
                servers (a larger size adds studies to the smaller one). Each Carina is
                filled by {settings["loaders"]} child processes calling
                `carina.archive.ingest.ingest()` for each object (each its share of the
                objects), Orthanc by `POST /instances` over one keep-alive connection, all at
                the same time and not timed; every server's study and instance counts are
                checked before the queries.""",
            ),
            (
                0,
                f"""**Client**: this script, `http.client`, one keep-alive connection per
                server (reopened, untimed, after {IDLE_SECONDS} s idle: Orthanc closes idle
                connections after 1 s). A request's time runs from sending it to the last
                byte of the answer; answers are parsed and checked after the timing. The
                servers are asked in turn, request by request, so that a busy moment of the
                machine falls on all of them.""",
            ),
            (
                0,
                """**measure**: the baseline and QIDO rows are measured at each archive size,
                the series rows once, at the largest.""",
            ),
            (
                1,
                """`HTTP baseline (no DICOM)`: Carina `GET /api/health/live/`, Orthanc `GET
                /system`, no authentication: the fixed cost of a request through each
                server's HTTP stack.""",
            ),
            (
                1,
                f"""`QIDO …`: `GET <root>/studies?<query>&{OHIF_PAGE}`, `Accept:
                application/dicom+json`, as OHIF 3.13 asks for its study list and filters.
                `all studies`: no filter; `PatientName=*smi*`: a substring wildcard
                (case-insensitive on both servers); `StudyDate`: one month; `00100020`: one
                patient, exact, by tag number as OHIF sends it; `ModalitiesInStudy=MR`.
                {settings["reps"]} timed runs after {settings["warmup"]} untimed ones,
                stopping earlier (after at least 10) once {settings["budget"]:.0f} s were
                spent on one row and server.""",
            ),
            (
                1,
                f"""`series metadata`: `GET …/series/<se>/metadata` of the {n}-instance
                series, repeated as above.""",
            ),
            (
                1,
                """`series thumbnail, first request`: Carina `GET
                …/series/<se>/thumbnail?viewport=256,256`, `Accept: image/jpeg` (what OHIF
                asks with `thumbnailRendering: 'thumbnail'`), once for the big series and
                once for each small series, so that no rendition was cached; `repeated`: the
                big series' thumbnail again and again, as above. Orthanc: see the notes for
                what stands in for `/thumbnail`.""",
            ),
            (
                1,
                f"""`rendered instance, first request`: `GET
                …/instances/<sop>/rendered?{VIEWPORT}`, `Accept: image/jpeg`, once for each of
                several instances of the big series (**runs** says how many), never rendered
                before; `repeated`: one instance again and again (from a rendition cache
                where the server keeps one for this request). The files are probably in the
                OS page cache in both cases.""",
            ),
            (
                0,
                f"""**result**: what every answer held: studies matched (at most {LIMIT}, the
                page size; the expected count is derived from the synthetic data), instances
                in the metadata, or a JPEG. `WRONG` or `FAILED` rows have no ratio; the
                failures are listed above.""",
            ),
            (0, "**runs**: timed requests per server (`Carina/Orthanc` when they differ)."),
            (
                0,
                """**p50**, **p95**: median and 95th percentile (nearest rank) of the timed
                requests.""",
            ),
            (
                0,
                f"""**Frames**: `GET …/instances/<sop>/frames/1` with `Accept: {FRAMES_ACCEPT}`
                for every instance of the big series, one after the other over one
                connection, or dealt round-robin over 4 connections used at once (4
                threads), as a viewer does. A pass is the wall time of all {n} frames;
                {settings["passes"]} timed passes after an untimed one, the table shows the
                median pass. **MB/s** counts pixel data only ({n} x
                {SERIES_PIXELS}x{SERIES_PIXELS}x2 bytes, MB = 2^20 bytes); every answer must
                be at least one frame long, and **pixel data** says whether the first frame's
                part held exactly the bytes written.""",
            ),
        ]
    )


def section(
    latency: list[LatencyRow],
    frames: list[FrameRow],
    notes: list[str],
    settings: dict[str, Any],
    machine_line: str,
    today: str,
    digest: str,
    elapsed: float,
) -> str:
    latency_table = markdown_table(LATENCY_HEADERS, [latency_cells(r) for r in latency], 4)
    frame_table = markdown_table(FRAME_HEADERS, [frame_cells(r) for r in frames], 3)
    read_off = "\n".join(bullet(line) for line in summary(latency, frames)) or "- (no ratios)"
    noted = "\n".join(bullet(note) for note in notes) or "- none"
    return f"""{SECTION_TITLE}

Measured on {today} with `{settings["command"]}`
({elapsed / 60:.0f} minutes), on a copy of the working tree's `src/carina` taken when the run
started ({git_tree()}; SHA-256 of its `.py` files `{digest}`), so that every row measures the
same code.

Machine: {machine_line}. Everything ran on loopback on this one machine (client, servers and
PostgreSQL when used) on 2 cores. Differences of up to about 20 % between runs are noise
here: read the ratios, not the last digit.

### Latency

Orthanc/Carina is Orthanc's time divided by Carina's: **above 1, Carina answers sooner**.

{latency_table}

### Frames (WADO-RS, throughput)

Carina/Orthanc is Carina's MB/s divided by Orthanc's: **above 1, Carina is faster**.

{frame_table}

Read off this run:

{read_off}

Notes and failures:

{noted}

### Method

{method(settings)}
"""


# --------------------------------------------------------------------------------------------
# Main


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or sizes != sorted(set(sizes)) or sizes[0] < 1:
        raise SystemExit(f"--studies {text!r}: give increasing sizes, e.g. 10000,100000")
    return sizes


def run(args: argparse.Namespace) -> int:
    # SIGTERM unwinds like Ctrl-C: the finally blocks stop the children, drop the PostgreSQL
    # databases and remove the temporary folders.
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    check_population()
    settings: dict[str, Any] = {
        "studies": parse_sizes(args.studies or ("200" if args.quick else "10000,100000")),
        "reps": args.reps or (10 if args.quick else 50),
        "warmup": 2 if args.quick else 3,
        "budget": 30.0,
        "loaders": args.loaders,
        "series_instances": args.series_instances,
        "thumb_series": 3 if args.quick else 20,
        "passes": 1 if args.quick else 3,
        "command": " ".join([".venv/bin/python benchmarks/dicomweb.py", *sys.argv[1:]]),
    }
    if args.loaders < 1 or settings["reps"] < 1 or args.series_instances < 10:
        raise SystemExit("--loaders and --reps must be at least 1, --series-instances 10")
    repeat = Repeat(settings["reps"], settings["warmup"], settings["budget"])
    bench = Bench(settings["series_instances"], settings["thumb_series"])
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not databases or set(databases) - {"SQLite", "PostgreSQL"}:
        raise SystemExit("--databases: SQLite, PostgreSQL or both (comma-separated)")
    versions = {"SQLite": sqlite3.sqlite_version}
    if "PostgreSQL" in databases:
        version = pg_version()
        if version is None:
            raise SystemExit("PostgreSQL is not reachable at 127.0.0.1:5432")
        versions["PostgreSQL"] = version
    orthanc = None if args.no_orthanc else find_orthanc()
    if orthanc and not DICOMWEB_PLUGIN.exists():
        say(f"{DICOMWEB_PLUGIN} is missing (apt-get install orthanc-dicomweb): no Orthanc.")
        orthanc = None
    if orthanc:
        versions["Orthanc"] = settings["orthanc"] = orthanc_version(orthanc)
    else:
        say("Orthanc is not used (not installed, or --no-orthanc): no comparison.")
        settings["orthanc"] = settings["plugin"] = "—"
    children = Children()
    ids = Ids()
    scratch = Path(tempfile.mkdtemp(prefix="carina-dicomweb-bench-"))
    started = time.perf_counter()
    latency: list[LatencyRow] = []
    frames: list[FrameRow] = []
    notes: list[str] = []
    digest = "?"
    try:
        code_dir, digest = snapshot_source(scratch)
        say(f"Measuring a copy of src/carina (sha256 of its .py files: {digest}).")
        uids = Uids(10**19 + secrets.randbelow(9 * 10**19))
        first = settings["studies"][0]
        pick = next(itertools.islice(population(), first // 2, None))
        expected = Expected(exact_patient_id=pick.patient_id)
        people = population()
        with ExitStack() as stack:
            servers: list[Server] = []
            for kind in databases:
                say(f"Starting Carina ({kind}) …")
                servers.append(
                    stack.enter_context(carina_web(children, kind, scratch, code_dir, ids))
                )
            if orthanc:
                say("Starting Orthanc with its DICOMweb plugin …")
                server = stack.enter_context(orthanc_dicomweb(children, orthanc, scratch))
                servers.append(server)
                settings["plugin"] = versions["Orthanc DICOMweb"] = dicomweb_plugin_version(
                    server.port
                )
            loaded = 0
            for size in settings["studies"]:
                job = {
                    "base": uids.base,
                    "start": loaded,
                    "stop": size,
                    "bench": bench.instances if loaded == 0 else 0,
                    "thumb_series": bench.thumb_series,
                }
                say(f"Loading studies {loaded:,} to {size:,} into every server (untimed) …")
                took = load(children, servers, scratch, code_dir, job, args.loaders)
                for study in itertools.islice(people, size - loaded):
                    expected.add(study)
                loaded = size
                notes.append(
                    f"Loading {size:,} studies: "
                    + ", ".join(f"{name} {s:.0f} s" for name, s in took.seconds.items())
                    + " (all at the same time; not a measure)."
                )
                say(f"  {notes[-1]}")
                want = (size + 1, size + bench.total_instances)
                for server in servers:
                    got = server.counts()
                    if got != want:
                        raise RuntimeError(
                            f"{server.name} holds {got[0]} studies and {got[1]} instances, "
                            f"not {want[0]} and {want[1]}"
                        )
                with_bench = Expected(**{**expected.__dict__, "studies": size + 1})
                probes = qido_probes(with_bench)
                say(f"  QIDO-RS, {len(probes)} searches x {repeat.reps} runs per server …")
                latency += latency_rows(servers, probes, time_repeated(servers, probes, repeat))
            say(f"Series measures, {loaded + 1:,} studies in the archive …")
            series = measure_series(servers, uids, bench, loaded + 1, repeat, settings["passes"])
            latency += series.latency
            frames += series.frames
            notes += series.notes
    finally:
        children.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - started
    notes = error_notes(latency, frames) + notes
    say(f"Done in {elapsed:.0f} s.")
    print("Latency (Orthanc/Carina above 1: Carina answers sooner)")
    print(text_table(LATENCY_HEADERS, [latency_cells(r) for r in latency], 4))
    print()
    print("Frames (Carina/Orthanc above 1: Carina is faster)")
    print(text_table(FRAME_HEADERS, [frame_cells(r) for r in frames], 3))
    print()
    for line in summary(latency, frames) + notes:
        print(bullet(line))
    if args.quick or args.no_write:
        say("BENCHMARKS.md left unchanged (--quick / --no-write).")
    else:
        text = section(
            latency,
            frames,
            notes,
            settings,
            machine(versions),
            dt.date.today().isoformat(),
            digest,
            elapsed,
        )
        update_benchmarks_md(SECTION_TITLE, wrap(text))
        say(f"Updated {BENCHMARKS_MD}.")
    wrong = [r for r in latency if not (r.ok(r.carina) and (r.orthanc is None or r.ok(r.orthanc)))]
    failed = [r for r in frames if r.carina.error or (r.orthanc and r.orthanc.error)]
    return 1 if wrong or failed else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 studies, few repetitions, for development; BENCHMARKS.md is not updated",
    )
    parser.add_argument(
        "--studies",
        help="archive sizes, comma-separated and increasing (default 10000,100000)",
    )
    parser.add_argument(
        "--databases", default="SQLite", help="Carina's databases: SQLite, PostgreSQL or both"
    )
    parser.add_argument("--reps", type=int, help="timed runs per latency row (default 50)")
    parser.add_argument(
        "--series-instances",
        type=int,
        default=200,
        help="instances of the big CT 512x512 series (default 200)",
    )
    parser.add_argument(
        "--loaders",
        type=int,
        default=2,
        help="processes filling each Carina at once (default 2; loading is not measured)",
    )
    parser.add_argument("--no-orthanc", action="store_true", help="no Orthanc comparison")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    # Internal: the child processes.
    parser.add_argument("--worker", choices=["synth", "load", "count"], help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "synth":
        return worker_synth(json.loads(args.job))
    if args.worker == "load":
        return worker_load(json.loads(args.job))
    if args.worker == "count":
        return worker_count()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
