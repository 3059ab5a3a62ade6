"""State changes of the archive other than ingest: deleting studies, series and instances.

Each ``do_delete_*`` runs in one transaction: it locks the study row (as ingest does, so counts
stay exact while objects arrive in the same study), deletes the index rows, updates the study's
counts, size and ModalitiesInStudy, removes a series, study or patient left empty, and returns
what it removed. The blobs are deleted only after the commit (``transaction.on_commit``): if
the transaction rolls back, every object is still there, rows and bytes.

The caller records the audit event in the same transaction (the archive does not know the
audit trail): ``with transaction.atomic(): removed = do_delete_study(…); do_record(…)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet, Sum

from carina.archive.ingest.index import remove_instance, remove_series, select_locked_study
from carina.archive.models import Instance, Patient, Series, Study
from carina.archive.storage import BlobStorageError, get_storage
from carina.tenancy.models import Hospital

logger = logging.getLogger(__name__)


class ArchiveNotFoundError(LookupError):
    """The study, series or instance is not in this hospital's archive (another hospital's
    objects are answered the same way)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Removed:
    """What a delete took out of the archive."""

    study_instance_uid: str
    #: PatientID (0010,0020) of the study's patient.
    patient_id: str
    series: int
    instances: int
    size_bytes: int
    #: Whether the study itself is gone (deleted, or left empty).
    study_removed: bool
    #: Whether the patient row went with it (no study left).
    patient_removed: bool
    #: Blob keys deleted after the commit.
    blob_keys: tuple[str, ...]


def _locked_study(hospital: Hospital, study_uid: str) -> Study:
    study = select_locked_study(hospital, study_uid)
    if study is None:
        raise ArchiveNotFoundError(f"No study {study_uid} in this archive.")
    return study


def _total_size(rows: QuerySet[Instance]) -> int:
    return int(rows.aggregate(size=Sum("size_bytes"))["size"] or 0)


def _delete_blobs_after_commit(keys: tuple[str, ...]) -> None:
    """Delete the blobs once the transaction has committed; a failure is logged, and the
    bytes stay behind unreferenced (a waste of space, never a dangling row)."""

    def delete() -> None:
        storage = get_storage()
        for key in keys:
            try:
                storage.delete(key)
            except (BlobStorageError, OSError):
                logger.exception("could not delete the blob %s of a deleted instance", key)

    if keys:
        transaction.on_commit(delete, robust=True)


def _remove_study_row(study: Study) -> bool:
    """Delete an emptied study; then its patient when it has no study left. Returns whether
    the patient went."""
    patient = Patient.unscoped.select_for_update().get(pk=study.patient_id)
    Series.unscoped.filter(study=study).delete()  # none left, but never leave a stray row
    study.delete()
    if patient.studies.exists():
        return False
    patient.delete()  # with its demographics mismatch records
    return True


def do_delete_study(hospital: Hospital, study_uid: str) -> Removed:
    """Delete the study ``study_uid`` of ``hospital``: its series, instances and blobs, and
    its patient when no other study remains. Raises :class:`ArchiveNotFoundError`."""
    with transaction.atomic():
        study = _locked_study(hospital, study_uid)
        patient_id = study.patient.patient_id
        instances = Instance.objects.for_hospital(hospital).filter(series__study=study)
        keys = tuple(instances.values_list("blob_key", flat=True))
        series_count = Series.objects.for_hospital(hospital).filter(study=study).count()
        size = _total_size(instances)
        instances.delete()
        patient_removed = _remove_study_row(study)
        _delete_blobs_after_commit(keys)
    return Removed(
        study_instance_uid=study_uid,
        patient_id=patient_id,
        series=series_count,
        instances=len(keys),
        size_bytes=size,
        study_removed=True,
        patient_removed=patient_removed,
        blob_keys=keys,
    )


def do_delete_series(hospital: Hospital, study_uid: str, series_uid: str) -> Removed:
    """Delete one series of a study with its instances and blobs; the study's counts, size
    and ModalitiesInStudy follow, and a study left empty goes (with its patient when it has
    no other study). Raises :class:`ArchiveNotFoundError`."""
    with transaction.atomic():
        study = _locked_study(hospital, study_uid)
        patient_id = study.patient.patient_id
        series = (
            Series.objects.for_hospital(hospital)
            .filter(study=study, series_instance_uid=series_uid)
            .first()
        )
        if series is None:
            raise ArchiveNotFoundError(
                f"No series {series_uid} in study {study_uid} in this archive."
            )
        rows = Instance.objects.for_hospital(hospital).filter(series=series)
        keys = tuple(rows.values_list("blob_key", flat=True))
        size = _total_size(rows)
        remove_series(series)
        study.refresh_from_db()
        emptied = study.number_of_series <= 0
        patient_removed = _remove_study_row(study) if emptied else False
        _delete_blobs_after_commit(keys)
    return Removed(
        study_instance_uid=study_uid,
        patient_id=patient_id,
        series=1,
        instances=len(keys),
        size_bytes=size,
        study_removed=emptied,
        patient_removed=patient_removed,
        blob_keys=keys,
    )


def do_delete_instances(
    hospital: Hospital, study_uid: str, series_uid: str, sop_uids: Iterable[str]
) -> Removed:
    """Delete instances of one series (all of them or none: an unknown SOP Instance UID
    raises :class:`ArchiveNotFoundError` and nothing changes). A series left empty goes, and
    so does a study left empty (with its patient when it has no other study)."""
    wanted = list(dict.fromkeys(sop_uids))
    with transaction.atomic():
        study = _locked_study(hospital, study_uid)
        patient_id = study.patient.patient_id
        rows = list(
            Instance.objects.for_hospital(hospital).filter(
                series__study=study,
                series__series_instance_uid=series_uid,
                sop_instance_uid__in=wanted,
            )
        )
        missing = set(wanted) - {row.sop_instance_uid for row in rows}
        if missing or not wanted:
            what = ", ".join(sorted(missing)) or "(none given)"
            raise ArchiveNotFoundError(
                f"No instance {what} in series {series_uid} of study {study_uid} in this archive."
            )
        series_before = study.number_of_series
        for row in rows:
            remove_instance(row)
        study.refresh_from_db()
        emptied = study.number_of_instances <= 0
        series_removed = series_before - study.number_of_series
        patient_removed = _remove_study_row(study) if emptied else False
        keys = tuple(row.blob_key for row in rows)
        _delete_blobs_after_commit(keys)
    return Removed(
        study_instance_uid=study_uid,
        patient_id=patient_id,
        series=series_removed,
        instances=len(rows),
        size_bytes=sum(row.size_bytes for row in rows),
        study_removed=emptied,
        patient_removed=patient_removed,
        blob_keys=keys,
    )


__all__ = [
    "ArchiveNotFoundError",
    "Removed",
    "do_delete_instances",
    "do_delete_series",
    "do_delete_study",
]
