"""The one ingest pipeline. Every way in (C-STORE, STOW-RS, upload, REST, sync, import,
generated objects) calls :func:`ingest`.

Order: accept (stream to a staging file, hashing) → parse the header → validate → dedupe →
write the blob durably → index in one short transaction → queue side effects after commit.
Success is returned only after the commit. On any failure the staging file is removed, a blob
written for this call is deleted unless a committed row uses it, and the database is unchanged.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import DatabaseError, transaction

from carina.archive import signals
from carina.archive.ingest.errors import (
    IngestError,
    NotDicomError,
    SOPClassMismatchError,
    StorageUnavailableError,
)
from carina.archive.ingest.hot_path import stored_copy
from carina.archive.ingest.index import IndexOutcome, index_object
from carina.archive.ingest.parse import ParsedObject, extract, read_header
from carina.archive.ingest.validate import validate
from carina.archive.models import Instance, Source
from carina.archive.storage import BlobStorageError, get_storage
from carina.archive.storage.keys import blob_key
from carina.tenancy.models import Hospital

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


class IngestStatus(enum.StrEnum):
    """How an accepted object ended up."""

    STORED = "stored"
    ALREADY_PRESENT = "already_present"
    REPLACED = "replaced"


@dataclass(frozen=True)
class Origin:
    """How and from whom an object arrived (kept on the instance row)."""

    source: Source
    #: Calling AE title, user name, or file path.
    detail: str = ""


@dataclass(frozen=True)
class IngestResult:
    """A successful ingest: the object is durable and indexed."""

    status: IngestStatus
    instance_id: int
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    size_bytes: int
    blob_key: str
    #: Patient ID (0010,0020) of the object, "" when it has none.
    patient_id: str = ""


@dataclass(frozen=True)
class StagedFile:
    """An accepted object in the staging folder, with its size and SHA-256."""

    path: Path
    size: int
    sha256: str


@contextmanager
def staged(source: BinaryIO | Path, name: str) -> Iterator[StagedFile]:
    """Copy ``source`` into a staging file while hashing it; remove the file afterwards.

    The blob store makes it durable (fsync and rename, or upload) in :func:`store_blob`.
    """
    staging_dir = Path(settings.CARINA_STAGING_DIR)
    staging_dir.mkdir(parents=True, exist_ok=True)
    path = staging_dir / f"{uuid.uuid4().hex}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        try:
            stream = source.open("rb") if isinstance(source, Path) else source
        except OSError as exc:
            raise NotDicomError(name, f"cannot be read: {exc.strerror or exc}") from None
        try:
            with path.open("wb") as out:
                while chunk := _read(stream, name):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageUnavailableError(name, "no space left to receive the object") from exc
            raise StorageUnavailableError(name, f"cannot receive the object: {exc}") from exc
        finally:
            if isinstance(source, Path):
                stream.close()
        yield StagedFile(path, size, digest.hexdigest())
    finally:
        path.unlink(missing_ok=True)


def sweep_staging(older_than_seconds: float = 3600) -> int:
    """Delete staging files older than the limit: left by a process killed while receiving.

    Called by ``carina serve`` before it starts the parts. Returns how many were removed.
    """
    staging_dir = Path(settings.CARINA_STAGING_DIR)
    if not staging_dir.exists():
        return 0
    limit = time.time() - older_than_seconds
    removed = 0
    for path in staging_dir.rglob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _read(stream: BinaryIO, name: str) -> bytes:
    """The next chunk of the incoming object; a failing source is the sender's problem."""
    try:
        return stream.read(CHUNK)
    except OSError as exc:
        raise NotDicomError(name, f"the object could not be read completely: {exc}") from exc


def parse_staged(staged_file: StagedFile, name: str) -> ParsedObject:
    """Parse and validate a staged object (raises IngestError)."""
    threshold = int(settings.CARINA_BULKDATA_THRESHOLD)
    ds = read_header(staged_file.path, name, threshold)
    parsed = extract(ds, threshold)
    validate(parsed, name)
    return parsed


def _result(
    outcome: IndexOutcome | Instance, status: IngestStatus, parsed: ParsedObject
) -> IngestResult:
    instance = outcome.instance if isinstance(outcome, IndexOutcome) else outcome
    return IngestResult(
        status=status,
        instance_id=instance.pk,
        sop_class_uid=parsed.sop_class_uid,
        sop_instance_uid=parsed.sop_instance_uid,
        study_instance_uid=parsed.study_instance_uid,
        series_instance_uid=parsed.series_instance_uid,
        size_bytes=instance.size_bytes,
        blob_key=instance.blob_key,
        patient_id=str(parsed.patient.get("patient_id") or ""),
    )


def store_blob(key: str, staged_file: StagedFile, name: str) -> None:
    """Write the staged file durably under ``key`` (raises StorageUnavailableError)."""
    try:
        get_storage().put(key, staged_file.path)
    except (BlobStorageError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.ENOSPC:
            raise StorageUnavailableError(name, "no space left in the archive storage") from exc
        raise StorageUnavailableError(name, f"the archive storage failed: {exc}") from exc


def _delete_quietly(key: str) -> None:
    try:
        get_storage().delete(key)
    except (BlobStorageError, OSError):
        logger.exception("could not delete orphan blob %s", key)


def _discard_blob_unless_used(hospital: Hospital, key: str) -> None:
    """Delete a blob that no row points at (a failed attempt's, or a replaced object's)."""
    if not Instance.objects.for_hospital(hospital).filter(blob_key=key).exists():
        _delete_quietly(key)


def ingest(
    source: BinaryIO | Path,
    *,
    hospital: Hospital,
    origin: Origin,
    name: str | None = None,
    expected_sop_class_uid: str | None = None,
) -> IngestResult:
    """Store one DICOM Part 10 object for ``hospital``; return once it is durable and indexed.

    ``name`` identifies the object in error messages (a file name, "C-STORE from AE …").
    ``expected_sop_class_uid`` (C-STORE's Affected SOP Class UID) must match the data set's.
    Raises :class:`IngestError` (with DIMSE and HTTP statuses) when the object is refused.
    """
    started = time.monotonic()
    label = name or (str(source) if isinstance(source, Path) else "object")
    with staged(source, label) as staged_file:
        parsed = parse_staged(staged_file, label)
        if expected_sop_class_uid and expected_sop_class_uid != parsed.sop_class_uid:
            raise SOPClassMismatchError(
                label,
                f"the data set's SOP Class UID {parsed.sop_class_uid} differs from the "
                f"announced {expected_sop_class_uid}",
            )
        # An identical object already stored is acknowledged without writing anything.
        same = stored_copy(hospital, parsed.sop_instance_uid, staged_file.sha256)
        if same is not None:
            return _result(same, IngestStatus.ALREADY_PRESENT, parsed)
        key = blob_key(
            hospital.pk,
            parsed.study_instance_uid,
            parsed.series_instance_uid,
            parsed.sop_instance_uid,
            staged_file.sha256,
        )
        try:
            store_blob(key, staged_file, label)
            outcome = index_object(
                hospital,
                parsed,
                blob_key=key,
                size_bytes=staged_file.size,
                sha256=staged_file.sha256,
                source=origin.source,
                source_detail=origin.detail,
                name=label,
            )
        except DatabaseError as exc:
            _discard_blob_unless_used(hospital, key)
            raise StorageUnavailableError(label, f"the archive database failed: {exc}") from exc
        except BaseException:
            _discard_blob_unless_used(hospital, key)
            raise
    status = IngestStatus(outcome.status)
    if outcome.instance.blob_key != key:
        # A concurrent call stored the same bytes first: this attempt's blob is not needed.
        _discard_blob_unless_used(hospital, key)
    obsolete = outcome.obsolete_blob_key
    if obsolete:
        transaction.on_commit(lambda: _discard_blob_unless_used(hospital, obsolete), robust=True)
    if status != IngestStatus.ALREADY_PRESENT:
        _queue_side_effects(hospital, outcome, status, origin, time.monotonic() - started)
    return _result(outcome, status, parsed)


def _queue_side_effects(
    hospital: Hospital,
    outcome: IndexOutcome,
    status: IngestStatus,
    origin: Origin,
    seconds: float,
) -> None:
    instance = outcome.instance

    def send() -> None:
        signals.instance_stored.send_robust(
            sender=Instance,
            hospital_id=hospital.pk,
            instance_id=instance.pk,
            series_id=instance.series_id,
            status=status,
            origin=origin,
            size_bytes=instance.size_bytes,
            seconds=seconds,
        )

    transaction.on_commit(send, robust=True)


__all__ = ["IngestError", "IngestResult", "IngestStatus", "Origin", "ingest"]
