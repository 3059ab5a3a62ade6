"""Deleting studies, series and instances (archive.actions): rows, counts, ModalitiesInStudy
and blobs stay consistent; blobs go only once the deletion has committed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import transaction
from pydicom.uid import generate_uid

from carina.archive.actions import (
    ArchiveNotFoundError,
    do_delete_instances,
    do_delete_series,
    do_delete_study,
)
from carina.archive.ingest.pipeline import IngestResult, Origin, ingest
from carina.archive.models import DemographicsMismatch, Patient, Series, Source, Study
from carina.archive.storage import get_storage
from carina.archive.tests.conftest import Snapshot
from carina.core.testing import write_series
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)


class RollbackError(Exception):
    pass


def stored(paths: list[Path], hospital: Hospital) -> list[IngestResult]:
    return [ingest(p, hospital=hospital, origin=Origin(Source.IMPORT)) for p in paths]


@pytest.fixture
def study(tmp_path: Path, hospital: Hospital) -> list[IngestResult]:
    """One study: CT (3 slices), PT (2) and MR (1) series."""
    uid = generate_uid()
    return stored(
        [
            *write_series(tmp_path / "ct", 3, study_uid=uid, modality="CT"),
            *write_series(tmp_path / "pt", 2, study_uid=uid, modality="PT"),
            *write_series(tmp_path / "mr", 1, study_uid=uid, modality="MR"),
        ],
        hospital,
    )


def blobs() -> set[str]:
    return set(get_storage().iter_keys())


def counts(hospital: Hospital) -> tuple[int, int, int, str]:
    row = Study.objects.for_hospital(hospital).get()
    return row.number_of_series, row.number_of_instances, row.size_bytes, row.modalities_in_study


def test_delete_study_removes_rows_blobs_and_the_patient(
    study: list[IngestResult], hospital: Hospital
) -> None:
    removed = do_delete_study(hospital, study[0].study_instance_uid)
    assert (removed.series, removed.instances) == (3, 6)
    assert removed.size_bytes == sum(r.size_bytes for r in study)
    assert (removed.study_removed, removed.patient_removed) == (True, True)
    assert removed.patient_id == "PID001"
    assert set(removed.blob_keys) == {r.blob_key for r in study}
    assert not Study.objects.for_hospital(hospital).exists()
    assert not Patient.objects.for_hospital(hospital).exists()
    assert blobs() == set()


def test_the_patient_stays_while_another_study_remains(
    study: list[IngestResult], hospital: Hospital, tmp_path: Path
) -> None:
    [other] = stored(write_series(tmp_path / "other", 1, patient_name="OTHER^NAME"), hospital)
    mismatches = DemographicsMismatch.objects.for_hospital(hospital).count()
    assert mismatches == 1
    removed = do_delete_study(hospital, study[0].study_instance_uid)
    assert removed.patient_removed is False
    assert Patient.objects.for_hospital(hospital).count() == 1
    assert DemographicsMismatch.objects.for_hospital(hospital).count() == 1
    assert blobs() == {other.blob_key}
    do_delete_study(hospital, other.study_instance_uid)
    assert not Patient.objects.for_hospital(hospital).exists()
    assert not DemographicsMismatch.objects.for_hospital(hospital).exists()


def test_delete_series_recounts_the_study(study: list[IngestResult], hospital: Hospital) -> None:
    pet = study[3]
    removed = do_delete_series(hospital, pet.study_instance_uid, pet.series_instance_uid)
    assert (removed.series, removed.instances, removed.study_removed) == (1, 2, False)
    left = study[:3] + study[5:]
    assert counts(hospital) == (2, 4, sum(r.size_bytes for r in left), "CT\\MR")
    assert blobs() == {r.blob_key for r in left}
    mr = study[5]
    do_delete_series(hospital, mr.study_instance_uid, mr.series_instance_uid)
    assert counts(hospital) == (1, 3, sum(r.size_bytes for r in study[:3]), "CT")
    removed = do_delete_series(hospital, study[0].study_instance_uid, study[0].series_instance_uid)
    assert (removed.study_removed, removed.patient_removed) == (True, True)
    assert not Study.objects.for_hospital(hospital).exists()
    assert blobs() == set()


def test_delete_instances_recounts_series_and_study(
    study: list[IngestResult], hospital: Hospital
) -> None:
    ct = study[:3]
    removed = do_delete_instances(
        hospital,
        ct[0].study_instance_uid,
        ct[0].series_instance_uid,
        [ct[0].sop_instance_uid, ct[1].sop_instance_uid],
    )
    assert (removed.instances, removed.series, removed.study_removed) == (2, 0, False)
    series = Series.objects.for_hospital(hospital).get(
        series_instance_uid=ct[0].series_instance_uid
    )
    assert (series.number_of_instances, series.size_bytes) == (1, ct[2].size_bytes)
    assert counts(hospital)[:2] == (3, 4)
    # The last instance of the MR series takes the series and its modality with it.
    mr = study[5]
    removed = do_delete_instances(
        hospital, mr.study_instance_uid, mr.series_instance_uid, [mr.sop_instance_uid]
    )
    assert removed.series == 1
    assert counts(hospital) == (
        2,
        3,
        ct[2].size_bytes + study[3].size_bytes + study[4].size_bytes,
        "CT\\PT",
    )
    assert mr.blob_key not in blobs()


def test_an_unknown_uid_changes_nothing(
    study: list[IngestResult], hospital: Hospital, snapshot: Callable[[], Snapshot]
) -> None:
    before = snapshot()
    first = study[0]
    with pytest.raises(ArchiveNotFoundError, match=r"No study 1\.2\.3"):
        do_delete_study(hospital, "1.2.3")
    with pytest.raises(ArchiveNotFoundError, match=r"No series 1\.2\.3 in study"):
        do_delete_series(hospital, first.study_instance_uid, "1.2.3")
    with pytest.raises(ArchiveNotFoundError, match=r"1\.2\.3"):
        do_delete_instances(
            hospital,
            first.study_instance_uid,
            first.series_instance_uid,
            [first.sop_instance_uid, "1.2.3"],  # all or nothing
        )
    with pytest.raises(ArchiveNotFoundError):  # an instance of another series
        do_delete_instances(
            hospital,
            first.study_instance_uid,
            study[3].series_instance_uid,
            [first.sop_instance_uid],
        )
    assert snapshot() == before


def test_another_hospital_cannot_delete(
    study: list[IngestResult],
    other_hospital: Hospital,
    snapshot: Callable[[], Snapshot],
) -> None:
    before = snapshot()
    first = study[0]
    with pytest.raises(ArchiveNotFoundError):
        do_delete_study(other_hospital, first.study_instance_uid)
    with pytest.raises(ArchiveNotFoundError):
        do_delete_series(other_hospital, first.study_instance_uid, first.series_instance_uid)
    assert snapshot() == before


@pytest.mark.parametrize("action", ["study", "series", "instance"])
def test_a_rolled_back_delete_keeps_rows_and_blobs(
    action: str,
    study: list[IngestResult],
    hospital: Hospital,
    snapshot: Callable[[], Snapshot],
) -> None:
    """The caller's transaction (the adapter's audit record) fails: nothing is lost."""
    before = snapshot()
    first = study[0]
    with pytest.raises(RollbackError), transaction.atomic():
        if action == "study":
            do_delete_study(hospital, first.study_instance_uid)
        elif action == "series":
            do_delete_series(hospital, first.study_instance_uid, first.series_instance_uid)
        else:
            do_delete_instances(
                hospital,
                first.study_instance_uid,
                first.series_instance_uid,
                [first.sop_instance_uid],
            )
        assert first.blob_key in blobs()  # not before the commit
        raise RollbackError
    assert snapshot() == before


def test_blobs_go_only_after_the_commit(study: list[IngestResult], hospital: Hospital) -> None:
    with transaction.atomic():
        do_delete_study(hospital, study[0].study_instance_uid)
        assert len(blobs()) == 6
    assert blobs() == set()
