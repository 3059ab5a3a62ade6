"""Study and series ZIP downloads: streamed, every file byte for byte, and a DICOMDIR that
pydicom reads as a file-set whose records point at those files."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.api.tests.conftest import StoredStudy, StoreStudy
from carina.api.zipstream import ZipSource, stream_zip_with_dicomdir
from carina.archive.ingest.pipeline import Origin, ingest
from carina.archive.models import Instance, Source
from carina.audit.models import AuditEvent
from carina.core.testing import shipped_file
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def download(client: APIClient, url: str) -> zipfile.ZipFile:
    response = client.get(url, HTTP_ACCEPT="application/zip")
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def extracted_file_set(archive: zipfile.ZipFile, folder: Path) -> FileSet:
    assert archive.testzip() is None  # every CRC checks
    archive.extractall(folder)
    return FileSet(folder / "DICOMDIR")


def test_study_zip_is_a_file_set_with_every_stored_file(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], tmp_path: Path
) -> None:
    chest = archive["chest"]
    with download(clients["radiologist"], f"/api/studies/{chest.study_uid}/zip/") as zipped:
        names = zipped.namelist()
        assert names[-1] == "DICOMDIR"
        assert len(names) == 6
        fs = extracted_file_set(zipped, tmp_path / "out")
    assert len(fs) == 5
    by_uid = {str(instance.SOPInstanceUID): instance for instance in fs}
    assert set(by_uid) == set(chest.sop_uids)
    for sop_uid, original in zip(chest.sop_uids, chest.files, strict=True):
        instance = by_uid[sop_uid]
        # The record points at the file of that very instance, byte-equal to the stored one.
        assert Path(instance.path).read_bytes() == original.read_bytes()
        assert dcmread(instance.path).SOPInstanceUID == sop_uid
    [patient] = fs.find_values("PatientID")
    assert patient == "PID001"
    assert fs.find_values("StudyInstanceUID") == [chest.study_uid]
    assert sorted(fs.find_values("SeriesInstanceUID")) == sorted(chest.series_uids)
    assert sorted(int(v) for v in fs.find_values("InstanceNumber")) == [1, 2, 3]
    # File IDs follow PS3.10 8.2 (at most 8 characters, upper case and digits, per part).
    for instance in fs:
        parts = instance.FileID.split("/")
        assert all(re.fullmatch(r"[A-Z0-9_]{1,8}", p) for p in parts), parts


def test_series_zip_holds_only_that_series(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], tmp_path: Path
) -> None:
    chest = archive["chest"]
    series_uid = chest.series_uids[1]
    with download(clients["admin"], f"/api/series/{series_uid}/zip/") as zipped:
        fs = extracted_file_set(zipped, tmp_path / "out")
    assert {i.SOPInstanceUID for i in fs} == set(chest.sop_uids[3:])
    assert fs.find_values("SeriesInstanceUID") == [series_uid]


def test_zip_streams_before_the_archive_is_complete(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    chest = archive["chest"]
    response = clients["radiologist"].get(f"/api/studies/{chest.study_uid}/zip/")
    chunks = iter(response.streaming_content)
    first = next(chunks)
    # The first chunk is the first file's entry; the DICOMDIR does not exist yet.
    assert first.startswith(b"PK\x03\x04")
    assert b"DICOMDIR" not in first
    rest = b"".join(chunks)
    assert b"DICOMDIR" in rest


def test_zip_of_objects_the_records_need_values_for(
    clients: dict[str, APIClient],
    store_study: StoreStudy,
    hospital: Hospital,
    tmp_path: Path,
) -> None:
    """Objects without StudyID, SeriesNumber or InstanceNumber, and a structured report,
    are all listed in the DICOMDIR (values filled in the records only)."""
    study = store_study(series=[("CT", 2)], StudyID="")
    for path in study.files:
        ds = dcmread(path)
        del ds.InstanceNumber
        del ds.SeriesNumber
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(tmp_path / f"bare-{path.name}", enforce_file_format=True)
        ingest(tmp_path / f"bare-{path.name}", hospital=hospital, origin=Origin(Source.IMPORT, "t"))
    report = dcmread(shipped_file("test-SR.dcm"))
    report.StudyInstanceUID = study.study_uid
    report.PatientID = study.patient_id
    report.PatientName = study.patient_name
    report.save_as(tmp_path / "sr.dcm")
    ingest(tmp_path / "sr.dcm", hospital=hospital, origin=Origin(Source.IMPORT, "t"))
    with download(clients["admin"], f"/api/studies/{study.study_uid}/zip/") as zipped:
        count = len(zipped.namelist()) - 1
        fs = extracted_file_set(zipped, tmp_path / "out")
    assert count == 5
    assert len(fs) == 5
    assert report.SOPInstanceUID in {i.SOPInstanceUID for i in fs}
    for instance in fs:
        assert dcmread(instance.path).SOPInstanceUID == instance.SOPInstanceUID


def test_zip_is_audited_with_the_number_of_instances(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], hospital: Hospital
) -> None:
    chest = archive["chest"]
    with download(clients["radiologist"], f"/api/studies/{chest.study_uid}/zip/"):
        pass
    event: Any = AuditEvent.objects.for_hospital(hospital).filter(action="api.retrieve").first()
    assert (event.object_uid, event.count, event.patient_id, event.outcome) == (
        chest.study_uid,
        5,
        "PID001",
        "success",
    )


def test_a_download_cut_short_reports_what_was_sent(
    archive: dict[str, StoredStudy], hospital: Hospital
) -> None:
    """When the client goes away, the stream is closed and reports an incomplete download
    (the view records it as a ``partial`` audit event)."""
    chest = archive["chest"]
    reports: list[tuple[int, bool]] = []
    source = ZipSource(
        uid=chest.study_uid,
        patient_id=chest.patient_id,
        instances=Instance.objects.for_hospital(hospital).filter(
            series__study__study_instance_uid=chest.study_uid
        ),
    )
    stream = stream_zip_with_dicomdir(
        hospital, source, finished=lambda n, ok: reports.append((n, ok))
    )
    next(stream)
    stream.close()
    assert reports == [(0, False)]
    stream = stream_zip_with_dicomdir(
        hospital, source, finished=lambda n, ok: reports.append((n, ok))
    )
    assert b"".join(stream).startswith(b"PK")
    assert reports[-1] == (5, True)
