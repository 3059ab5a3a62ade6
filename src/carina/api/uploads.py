"""Uploads of DICOM files and ZIP archives through the REST API (``POST /api/uploads/``),
into the one ingest pipeline (:func:`carina.archive.ingest.ingest`).

Small uploads are ingested during the request and answered with the result of every object.
Large ones (more than :func:`sync_max_bytes` bytes or :func:`sync_max_objects` objects, or
``?background=true``) are answered at once, 202 with the URL of their status, and ingested in
the background; the status reports the progress (``done`` of ``total``) and each object's
result as it goes.

**Background work runs in a thread of the web process for now.** Celery arrives with a later
issue; until then :func:`start_background` starts a thread that calls :func:`run_upload`.
:func:`run_upload` is what a Celery task will call (``run_upload(upload_id)``): it takes only
the upload's id, finds its files in the upload's folder (``CARINA_HOME/uploads/<id>/``, with a
``manifest.json``), claims the row under a lock, resumes after the objects already done, and
does nothing for an upload that is finished — so it is safe to run twice. The thread's
limitation: an upload running when the web process stops is not resumed; its status turns to
``failed`` ("interrupted") once it has been silent for :data:`STALE_AFTER`, and its files are
kept until then.

Each upload leaves ``api.store`` audit events when it ends: one per study (with the
instances stored) and one summarising the rejected objects (docs/audit.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connections, transaction
from django.utils import timezone

from carina.api.models import Upload, UploadStatus
from carina.archive.ingest import IngestError, Origin, ingest
from carina.archive.models import Source
from carina.audit.actions import build, do_record_many
from carina.audit.models import Action, ActorKind, ObjectType, Outcome
from carina.tenancy.models import Hospital

logger = logging.getLogger(__name__)

#: A DICOMDIR indexes a medium (PS3.10 8.6); it is not an object to archive.
SKIPPED_NAMES = frozenset({"DICOMDIR"})
#: Progress is written to the database at most this often (seconds), and after this many
#: objects.
FLUSH_SECONDS = 1.0
FLUSH_OBJECTS = 100
#: A running upload silent for this long, with no runner in this process, was interrupted.
STALE_AFTER = dt.timedelta(minutes=15)
MANIFEST = "manifest.json"
CHUNK = 1 << 20

#: Background runs in this process (upload ids), for :func:`mark_if_interrupted`.
_running: set[uuid.UUID] = set()
_running_lock = threading.Lock()


class UploadError(ValueError):
    """The upload as a whole cannot be accepted (the message says why)."""


def sync_max_bytes() -> int:
    """Uploads larger than this run in the background (``CARINA_UPLOAD_SYNC_MAX_BYTES``)."""
    return int(getattr(settings, "CARINA_UPLOAD_SYNC_MAX_BYTES", 64 * 1024 * 1024))


def sync_max_objects() -> int:
    """Uploads with more objects run in the background (``CARINA_UPLOAD_SYNC_MAX_OBJECTS``)."""
    return int(getattr(settings, "CARINA_UPLOAD_SYNC_MAX_OBJECTS", 200))


def upload_root() -> Path:
    """Where uploaded files wait: ``CARINA_HOME/uploads`` (beside the staging folder, whose
    sweep at start-up must not take them)."""
    configured = getattr(settings, "CARINA_UPLOAD_DIR", None)
    return Path(configured) if configured else Path(settings.CARINA_STAGING_DIR).parent / "uploads"


@dataclass(frozen=True)
class Item:
    """One object of an upload: a file, or a member of a ZIP archive; ``outcome`` is set for
    an item decided without ingesting it (skipped DICOMDIR, unsafe member name)."""

    name: str
    path: Path
    member: str | None = None
    outcome: str = ""
    reason: str = ""


def display_name(name: str) -> str:
    """The file name a client sent, without any folder part."""
    return (PurePosixPath(name.replace("\\", "/")).name or "file")[:200]


def safe_member(name: str) -> bool:
    """A ZIP member name that stays inside the archive: not absolute, no ``..``, no drive."""
    pure = PurePosixPath(name.replace("\\", "/"))
    return (
        bool(pure.parts)
        and not pure.is_absolute()
        and ".." not in pure.parts
        and ":" not in pure.parts[0]
    )


def expand(saved: Iterable[tuple[str, Path]]) -> list[Item]:
    """The objects of the saved files: a file is one object, a ZIP archive one per member."""
    items: list[Item] = []
    for name, path in saved:
        if display_name(name).upper() in SKIPPED_NAMES:
            items.append(Item(name, path, outcome="skipped", reason="a DICOMDIR is not archived"))
            continue
        if not zipfile.is_zipfile(path):
            items.append(Item(name, path))
            continue
        try:
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
        except (zipfile.BadZipFile, OSError) as exc:
            items.append(
                Item(name, path, outcome="rejected", reason=f"unreadable ZIP archive: {exc}")
            )
            continue
        for member in members:
            label = f"{name}!{member.filename}"
            if not safe_member(member.filename):
                items.append(
                    Item(
                        label,
                        path,
                        member.filename,
                        outcome="rejected",
                        reason="unsafe name in the ZIP archive (absolute path or '..'); "
                        "not imported",
                    )
                )
            elif PurePosixPath(member.filename).name.upper() in SKIPPED_NAMES:
                items.append(
                    Item(
                        label,
                        path,
                        member.filename,
                        outcome="skipped",
                        reason="a DICOMDIR is not archived",
                    )
                )
            else:
                items.append(Item(label, path, member.filename))
    return items


def _manifest(folder: Path) -> list[tuple[str, Path]]:
    entries = json.loads((folder / MANIFEST).read_text())
    return [(str(e["name"]), folder / str(e["file"])) for e in entries]


def save_files(files: list[UploadedFile], folder: Path) -> list[tuple[str, Path]]:
    """Copy the request's files into ``folder`` (they outlive the request) with a manifest
    of their names."""
    folder.mkdir(parents=True, exist_ok=False)
    entries = []
    for index, uploaded in enumerate(files):
        stored = f"{index:05d}.part"
        with (folder / stored).open("wb") as out:
            for chunk in uploaded.chunks(CHUNK):
                out.write(chunk)
        entries.append({"name": display_name(uploaded.name or "file"), "file": stored})
    (folder / MANIFEST).write_text(json.dumps(entries))
    return [(e["name"], folder / e["file"]) for e in entries]


def create_upload(
    hospital: Hospital,
    user: Any,
    files: list[UploadedFile],
    *,
    background: bool | None = None,
    source_ip: str = "",
) -> Upload:
    """Accept ``files`` for ``hospital``: save them, count their objects, and either ingest
    them now (the returned upload is finished) or queue a background run (it is queued; it
    starts once the caller's transaction commits)."""
    if not files:
        raise UploadError(
            "Send one or more files (DICOM files or ZIP archives) in the form field 'files'."
        )
    upload = Upload(hospital=hospital, user=user, username=user.get_username(), source_ip=source_ip)
    folder = upload_root() / str(upload.id)
    try:
        saved = save_files(files, folder)
        items = expand(saved)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(f"The upload could not be saved on the server: {exc}") from exc
    size = sum(path.stat().st_size for _, path in saved)
    if background is None:
        background = size > sync_max_bytes() or len(items) > sync_max_objects()
    upload.total = len(items)
    upload.folder = str(folder)
    upload.background = background
    upload.save()
    upload_id = upload.id
    if background:
        transaction.on_commit(lambda: start_background(upload_id))
        return upload
    try:
        return run_upload(upload_id)
    except Exception:
        _fail(upload_id, "the upload failed on the server; see the server log")
        raise


def start_background(upload_id: uuid.UUID) -> threading.Thread:
    """Run :func:`run_upload` in a thread of this process (until Celery takes it over)."""
    with _running_lock:
        _running.add(upload_id)

    def main() -> None:
        try:
            run_upload(upload_id)
        except Exception:
            logger.exception("upload %s failed", upload_id)
            _fail(upload_id, "the upload failed on the server; see the server log")
        finally:
            with _running_lock:
                _running.discard(upload_id)
            connections.close_all()

    thread = threading.Thread(target=main, name=f"carina-upload-{upload_id}", daemon=True)
    thread.start()
    return thread


def _fail(upload_id: uuid.UUID, reason: str) -> None:
    """Mark the upload failed with ``reason`` and remove its files."""
    rows = Upload.objects.all_hospitals().filter(pk=upload_id).exclude(status=UploadStatus.DONE)
    folder = rows.values_list("folder", flat=True).first()
    rows.update(status=UploadStatus.FAILED, error=reason, finished_at=timezone.now())
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def mark_if_interrupted(upload: Upload) -> Upload:
    """An upload still ``running`` long after its last progress, with no runner in this
    process, was interrupted (the server stopped): say so."""
    with _running_lock:
        alive = upload.id in _running
    silent = timezone.now() - upload.updated_at
    if (
        upload.status in (UploadStatus.RUNNING, UploadStatus.QUEUED)
        and not alive
        and silent > STALE_AFTER
    ):
        _fail(
            upload.id,
            "interrupted: the server stopped while the upload ran; upload the files that are "
            "not in the results again",
        )
        upload.refresh_from_db()
    return upload


def _claim(upload_id: uuid.UUID) -> Upload | None:
    """Lock the row and mark it running; ``None`` when it is finished already."""
    with transaction.atomic():
        upload = Upload.objects.all_hospitals().select_for_update().filter(pk=upload_id).first()
        if upload is None or upload.status in (UploadStatus.DONE, UploadStatus.FAILED):
            return None
        upload.status = UploadStatus.RUNNING
        upload.save(update_fields=["status", "updated_at"])
        return upload


def _open(item: Item) -> tuple[BinaryIO | Path, zipfile.ZipFile | None]:
    if item.member is None:
        return item.path, None
    archive = zipfile.ZipFile(item.path)
    return cast(BinaryIO, archive.open(item.member)), archive


def ingest_item(item: Item, hospital: Hospital, username: str) -> dict[str, Any]:
    """Ingest one object; its result entry."""
    if item.outcome:
        return {"name": item.name, "status": item.outcome, "reason": item.reason}
    try:
        source, archive = _open(item)
    except (zipfile.BadZipFile, OSError, KeyError) as exc:
        return {"name": item.name, "status": "rejected", "reason": f"cannot be read: {exc}"}
    try:
        result = ingest(
            source,
            hospital=hospital,
            origin=Origin(Source.API, f"{username}: {item.name}"[-255:]),
            name=item.name,
        )
    except IngestError as exc:
        return {
            "name": item.name,
            "status": "rejected",
            "reason": exc.reason,
            "http_status": exc.http_status,
        }
    except (zipfile.BadZipFile, OSError) as exc:
        return {"name": item.name, "status": "rejected", "reason": f"corrupt ZIP member: {exc}"}
    finally:
        if archive is not None:
            archive.close()
    return {
        "name": item.name,
        "status": result.status.value,
        "sop_instance_uid": result.sop_instance_uid,
        "series_instance_uid": result.series_instance_uid,
        "study_instance_uid": result.study_instance_uid,
        "patient_id": result.patient_id,
    }


def _save_progress(upload: Upload, results: list[dict[str, Any]], counts: Counter[str]) -> None:
    upload.results = results
    upload.done = len(results)
    upload.counts = dict(counts)
    upload.save(update_fields=["results", "done", "counts", "updated_at"])


def run_upload(upload_id: uuid.UUID) -> Upload:
    """Ingest the objects of upload ``upload_id``: safe to run twice (what is finished is
    left alone; a run resumes after the objects already done). Returns the upload."""
    upload = _claim(upload_id)
    if upload is None:
        return Upload.objects.all_hospitals().get(pk=upload_id)
    hospital = upload.hospital
    folder = Path(upload.folder)
    try:
        items = expand(_manifest(folder))
    except (OSError, ValueError) as exc:
        _fail(upload.id, f"the uploaded files are gone from the server: {exc}")
        return Upload.objects.all_hospitals().get(pk=upload_id)
    results: list[dict[str, Any]] = list(upload.results)
    counts: Counter[str] = Counter(upload.counts)
    upload.total = len(items)
    flushed = time.monotonic()
    for item in items[len(results) :]:
        entry = ingest_item(item, hospital, upload.username)
        results.append(entry)
        counts[entry["status"]] += 1
        if len(results) % FLUSH_OBJECTS == 0 or time.monotonic() - flushed > FLUSH_SECONDS:
            _save_progress(upload, results, counts)
            flushed = time.monotonic()
    upload.status = UploadStatus.DONE
    upload.finished_at = timezone.now()
    upload.results = results
    upload.done = len(results)
    upload.counts = dict(counts)
    upload.save()
    shutil.rmtree(folder, ignore_errors=True)
    _record(upload, results)
    return upload


def _record(upload: Upload, results: list[dict[str, Any]]) -> None:
    """The upload's audit events: one per study, one summarising the rejections."""
    base = {
        "hospital": upload.hospital,
        "actor": upload.username,
        "actor_kind": ActorKind.USER,
        "action": Action.API_STORE,
        "source_ip": upload.source_ip,
        "correlation_id": str(upload.id),
    }
    studies: dict[tuple[str, str], Counter[str]] = {}
    for entry in results:
        if entry.get("study_instance_uid"):
            key = (entry["study_instance_uid"], entry.get("patient_id", ""))
            studies.setdefault(key, Counter())[entry["status"]] += 1
    events = [
        build(
            **base,
            object_type=ObjectType.STUDY,
            object_uid=study_uid,
            patient_id=patient_id,
            count=sum(counted.values()),
            detail=f"REST API upload {upload.id}: "
            + ", ".join(f"{n} {status}" for status, n in sorted(counted.items())),
        )
        for (study_uid, patient_id), counted in studies.items()
    ]
    rejected = [e for e in results if e["status"] == "rejected"]
    if rejected:
        shown = "; ".join(f"{e['name']}: {e['reason']}" for e in rejected[:5])
        more = len(rejected) - 5
        events.append(
            build(
                **base,
                outcome=Outcome.FAILURE,
                count=len(rejected),
                detail=f"REST API upload {upload.id}: {len(rejected)} rejected: {shown}"
                + (f" (+{more} more)" if more > 0 else ""),
            )
        )
    try:
        do_record_many(events)
    except Exception:
        logger.exception("the audit events of upload %s could not be recorded", upload.id)


__all__ = [
    "Item",
    "UploadError",
    "create_upload",
    "expand",
    "mark_if_interrupted",
    "run_upload",
    "safe_member",
    "start_background",
]
