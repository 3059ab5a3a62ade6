"""The common case of indexing (a new image of a known series, in hand-written SQL) writes
exactly what the general path writes, and leaves every other case to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from carina.archive.ingest import IngestStatus, Origin, ingest
from carina.archive.ingest import index as index_module
from carina.archive.models import DemographicsMismatch, Instance, Series, Source, Study
from carina.core.testing import write_series
from carina.tenancy.models import Hospital

IGNORED = {"id", "received_at", "blob_key", "series", "hospital"}


def _rows(hospital: Hospital) -> list[dict[str, Any]]:
    rows = Instance.objects.for_hospital(hospital).order_by("sop_instance_uid").values()
    return [{k: v for k, v in row.items() if k.removesuffix("_id") not in IGNORED} for row in rows]


def _counts(hospital: Hospital) -> list[tuple[Any, ...]]:
    studies = Study.objects.for_hospital(hospital).values_list(
        "study_instance_uid",
        "number_of_series",
        "number_of_instances",
        "size_bytes",
        "modalities_in_study",
    )
    series = Series.objects.for_hospital(hospital).values_list(
        "series_instance_uid", "number_of_instances", "size_bytes"
    )
    return sorted(studies) + sorted(series)


def _ingest_all(files: list[Path], hospital: Hospital) -> list[IngestStatus]:
    return [
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, "test")).status
        for path in files
    ]


@pytest.mark.django_db(transaction=True)
def test_the_common_case_writes_what_the_general_path_writes(
    tmp_path: Path, hospital: Hospital, other_hospital: Hospital, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = generate_uid()
    files = [
        *write_series(tmp_path / "ct", 4, study_uid=study, modality="CT"),
        *write_series(tmp_path / "pt", 3, study_uid=study, modality="PT"),
    ]
    assert _ingest_all(files, hospital) == [IngestStatus.STORED] * 7

    monkeypatch.setattr(index_module, "append_to_known_series", lambda *args: None)
    assert _ingest_all(files, other_hospital) == [IngestStatus.STORED] * 7

    assert _rows(hospital) == _rows(other_hospital)
    assert _counts(hospital) == _counts(other_hospital)
    assert _counts(hospital)[0][1:] == (2, 7, sum(p.stat().st_size for p in files), "CT\\PT")


@pytest.mark.django_db(transaction=True)
def test_an_image_with_other_demographics_is_stored_and_the_difference_recorded(
    tmp_path: Path, hospital: Hospital
) -> None:
    first, second = write_series(tmp_path, 2, modality="MR")
    ds = pydicom.dcmread(second)
    ds.PatientSex = "F" if ds.get("PatientSex") != "F" else "M"
    ds.save_as(second)
    assert _ingest_all([first, second], hospital) == [IngestStatus.STORED] * 2
    mismatch = DemographicsMismatch.objects.for_hospital(hospital).get()
    assert (mismatch.attribute, mismatch.received_value) == ("PatientSex", ds.PatientSex)
    assert Series.objects.for_hospital(hospital).get().number_of_instances == 2


@pytest.mark.django_db(transaction=True)
def test_the_same_image_again_is_already_present_and_counted_once(
    tmp_path: Path, hospital: Hospital
) -> None:
    files = write_series(tmp_path, 2, modality="CT")
    _ingest_all(files, hospital)
    assert _ingest_all(files[1:], hospital) == [IngestStatus.ALREADY_PRESENT]
    study = Study.objects.for_hospital(hospital).get()
    assert (study.number_of_instances, study.number_of_series) == (2, 1)
