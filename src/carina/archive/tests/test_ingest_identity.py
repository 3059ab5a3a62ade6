"""Duplicates, patient demographics and hierarchy conflicts (PS3.4 B.4.1: a SOP Instance UID
identifies one object)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from carina.archive.ingest import IngestStatus, Origin, ingest
from carina.archive.ingest.errors import DuplicateConflictError, HierarchyConflictError
from carina.archive.models import DemographicsMismatch, Instance, Patient, Source, Study
from carina.archive.storage import BlobStorage
from carina.core.testing import make_ct_slice
from carina.tenancy.models import DuplicatePolicy, Hospital

pytestmark = pytest.mark.django_db


def _save(tmp_path: Path, name: str, **kwargs: object) -> Path:
    defaults: dict[str, object] = {
        "study_uid": "1.2.3.4",
        "series_uid": "1.2.3.4.1",
        "index": 0,
        "size": 16,
        "sop_uid": "1.2.3.4.1.1",
    }
    defaults.update(kwargs)
    ds = make_ct_slice(**defaults)  # type: ignore[arg-type]
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


def test_same_object_twice_is_success_and_stored_once(
    tmp_path: Path, hospital: Hospital, storage: BlobStorage
) -> None:
    path = _save(tmp_path, "a.dcm")
    first = ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    second = ingest(path, hospital=hospital, origin=Origin(Source.DIMSE, "CT1"))
    assert (first.status, second.status) == (IngestStatus.STORED, IngestStatus.ALREADY_PRESENT)
    assert second.instance_id == first.instance_id
    assert Instance.objects.for_hospital(hospital).count() == 1
    assert Study.objects.for_hospital(hospital).get().number_of_instances == 1
    assert len(list(storage.iter_keys())) == 1


def test_same_uid_different_bytes_is_rejected_by_default(
    tmp_path: Path,
    hospital: Hospital,
    storage: BlobStorage,
    snapshot: Callable[[], dict[str, object]],
) -> None:
    original = _save(tmp_path, "a.dcm")
    changed = _save(tmp_path, "b.dcm", extra={"SeriesDescription": "edited"})
    ingest(original, hospital=hospital, origin=Origin(Source.IMPORT))
    before = snapshot()
    with pytest.raises(DuplicateConflictError) as caught:
        ingest(changed, hospital=hospital, origin=Origin(Source.IMPORT), name="b.dcm")
    assert caught.value.http_status == 409
    assert "b.dcm: SOP Instance UID 1.2.3.4.1.1 is already stored with different content" in (
        caught.value.message
    )
    assert snapshot() == before
    kept = Instance.objects.for_hospital(hospital).get()
    with storage.open(kept.blob_key) as handle:
        assert handle.read() == original.read_bytes()


def test_keep_newest_policy_replaces_the_object(
    tmp_path: Path, hospital: Hospital, storage: BlobStorage
) -> None:
    hospital.duplicate_policy = DuplicatePolicy.KEEP_NEWEST
    hospital.save()
    original = _save(tmp_path, "a.dcm")
    changed = _save(tmp_path, "b.dcm", extra={"SeriesDescription": "edited"})
    ingest(original, hospital=hospital, origin=Origin(Source.IMPORT))
    with pytest.raises(Exception, match="no-op"):  # keep the outer test transaction usable
        from django.db import transaction

        with transaction.atomic():
            result = ingest(changed, hospital=hospital, origin=Origin(Source.IMPORT))
            assert result.status == IngestStatus.REPLACED
            raise RuntimeError("no-op")
    # Rolled back with the transaction: the old object is still there, intact.
    kept = Instance.objects.for_hospital(hospital).get()
    with storage.open(kept.blob_key) as handle:
        assert handle.read() == original.read_bytes()

    result = ingest(changed, hospital=hospital, origin=Origin(Source.IMPORT))
    assert result.status == IngestStatus.REPLACED
    instance = Instance.objects.for_hospital(hospital).get()
    assert instance.metadata["0008103E"]["Value"] == ["edited"]
    with storage.open(instance.blob_key) as handle:
        assert handle.read() == changed.read_bytes()
    study = Study.objects.for_hospital(hospital).get()
    assert (study.number_of_series, study.number_of_instances) == (1, 1)
    assert study.size_bytes == changed.stat().st_size


def test_different_demographics_keep_the_archive_consistent_and_are_recorded(
    tmp_path: Path, hospital: Hospital
) -> None:
    ingest(
        _save(tmp_path, "a.dcm", patient_name="DOE^JANE"),
        hospital=hospital,
        origin=Origin(Source.IMPORT),
    )
    second = _save(tmp_path, "b.dcm", patient_name="DOE^JOAN", sop_uid="1.2.3.4.1.2", index=1)
    result = ingest(second, hospital=hospital, origin=Origin(Source.IMPORT))
    assert result.status == IngestStatus.STORED
    patient = Patient.objects.for_hospital(hospital).get()
    assert patient.patient_name == "DOE^JANE"
    mismatch = DemographicsMismatch.objects.for_hospital(hospital).get()
    assert (mismatch.attribute, mismatch.archived_value, mismatch.received_value) == (
        "PatientName",
        "DOE^JANE",
        "DOE^JOAN",
    )
    assert mismatch.sop_instance_uid == "1.2.3.4.1.2"
    assert Study.objects.for_hospital(hospital).get().number_of_instances == 2


def test_study_of_another_patient_is_refused(
    tmp_path: Path, hospital: Hospital, snapshot: Callable[[], dict[str, object]]
) -> None:
    ingest(
        _save(tmp_path, "a.dcm", patient_id="P1"), hospital=hospital, origin=Origin(Source.IMPORT)
    )
    before = snapshot()
    other = _save(tmp_path, "b.dcm", patient_id="P2", sop_uid="1.2.3.4.1.9")
    with pytest.raises(HierarchyConflictError) as caught:
        ingest(other, hospital=hospital, origin=Origin(Source.IMPORT))
    assert "study 1.2.3.4 belongs to patient 'P1'" in caught.value.reason
    assert caught.value.http_status == 409
    after = snapshot()
    # The new patient row is rolled back with the rest.
    assert after == before


def test_series_of_another_study_is_refused(
    tmp_path: Path, hospital: Hospital, snapshot: Callable[[], dict[str, object]]
) -> None:
    ingest(_save(tmp_path, "a.dcm"), hospital=hospital, origin=Origin(Source.IMPORT))
    before = snapshot()
    moved = _save(tmp_path, "b.dcm", study_uid="1.2.3.5", sop_uid="1.2.3.4.1.3")
    with pytest.raises(HierarchyConflictError, match="belongs to another study"):
        ingest(moved, hospital=hospital, origin=Origin(Source.IMPORT))
    assert snapshot() == before


def test_hospitals_hold_the_same_object_separately(
    tmp_path: Path, hospital: Hospital, other_hospital: Hospital
) -> None:
    path = _save(tmp_path, "a.dcm", study_uid=generate_uid())
    a = ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    b = ingest(path, hospital=other_hospital, origin=Origin(Source.IMPORT))
    assert a.status == b.status == IngestStatus.STORED
    assert a.blob_key != b.blob_key
    assert Instance.objects.for_hospital(hospital).get().pk == a.instance_id
    assert Instance.objects.for_hospital(other_hospital).get().pk == b.instance_id
    assert Instance.objects.all_hospitals().count() == 2
