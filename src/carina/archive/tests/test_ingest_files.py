"""Real objects of many modalities and transfer syntaxes go in and come back byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from carina.archive.ingest import IngestStatus, Origin, ingest
from carina.archive.models import Instance, Patient, Series, Source, Study
from carina.archive.storage import BlobStorage
from carina.core.testing import shipped_file, write_series
from carina.tenancy.models import Hospital

# One file per kind the issue names: CT, MR, CR, US multi-frame, RT, SR, SEG, and the transfer
# syntaxes JPEG / JPEG-LS / JPEG 2000 / RLE / deflated / big-endian / implicit.
SHIPPED = [
    ("CT_small.dcm", "CT", "1.2.840.10008.1.2.1"),
    ("MR_small_implicit.dcm", "MR", "1.2.840.10008.1.2"),
    ("MR_small_bigendian.dcm", "MR", "1.2.840.10008.1.2.2"),
    ("RG1_UNCR.dcm", "CR", "1.2.840.10008.1.2.1"),
    ("RG3_J2KR.dcm", "CR", "1.2.840.10008.1.2.4.90"),
    ("color3d_jpeg_baseline.dcm", "US", "1.2.840.10008.1.2.4.50"),
    ("examples_ybr_color.dcm", "US", "1.2.840.10008.1.2.4.50"),
    ("JPGExtended.dcm", "NM", "1.2.840.10008.1.2.4.51"),
    ("SC_rgb_jpeg_gdcm.dcm", "OT", "1.2.840.10008.1.2.4.70"),
    ("JPEG-LL.dcm", "NM", "1.2.840.10008.1.2.4.70"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR", "1.2.840.10008.1.2.4.80"),
    ("693_J2KI.dcm", "CT", "1.2.840.10008.1.2.4.91"),
    ("SC_rgb_rle_2frame.dcm", "OT", "1.2.840.10008.1.2.5"),
    ("image_dfl.dcm", "OT", "1.2.840.10008.1.2.1.99"),
    ("rtdose.dcm", "RTDOSE", "1.2.840.10008.1.2"),
    ("rtplan.dcm", "RTPLAN", "1.2.840.10008.1.2"),
    ("rtdose_rle.dcm", "RTDOSE", "1.2.840.10008.1.2.5"),
    ("test-SR.dcm", "SR", "1.2.840.10008.1.2.1"),
    ("liver.dcm", "SEG", "1.2.840.10008.1.2.1"),
    ("eCT_Supplemental.dcm", "CT", "1.2.840.10008.1.2.1"),
    ("waveform_ecg.dcm", "ECG", "1.2.840.10008.1.2.1"),
]


def _read_back(storage: BlobStorage, key: str) -> bytes:
    with storage.open(key) as handle:
        return handle.read()


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "modality", "transfer_syntax"), SHIPPED)
def test_shipped_object_is_indexed_and_reads_back_identical(
    name: str, modality: str, transfer_syntax: str, hospital: Hospital, storage: BlobStorage
) -> None:
    path = shipped_file(name)
    result = ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, name))

    assert result.status == IngestStatus.STORED
    instance = Instance.objects.for_hospital(hospital).select_related("series__study").get()
    assert instance.transfer_syntax_uid == transfer_syntax
    assert instance.series.modality == modality
    assert instance.size_bytes == path.stat().st_size
    assert instance.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert _read_back(storage, instance.blob_key) == path.read_bytes()
    # The DICOM JSON is kept without bulk data: pixel data is a reference, not a value.
    assert instance.metadata["00080018"]["Value"] == [instance.sop_instance_uid]
    if "7FE00010" in instance.metadata:
        assert set(instance.metadata["7FE00010"]) == {"vr", "BulkDataURI"}


@pytest.mark.django_db
def test_multiframe_dimensions_are_indexed(hospital: Hospital) -> None:
    ingest(
        shipped_file("color3d_jpeg_baseline.dcm"), hospital=hospital, origin=Origin(Source.IMPORT)
    )
    instance = Instance.objects.for_hospital(hospital).get()
    assert (instance.rows, instance.columns, instance.number_of_frames) == (480, 640, 120)


@pytest.mark.django_db
def test_synthesized_series_counts_and_round_trip(
    tmp_path: Path, hospital: Hospital, storage: BlobStorage
) -> None:
    study_uid = generate_uid()
    ct = write_series(tmp_path / "ct", 20, study_uid=study_uid, modality="CT")
    pt = write_series(
        tmp_path / "pt", 5, study_uid=study_uid, modality="PT", extra={"SeriesNumber": 2}
    )
    for path in ct + pt:
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, path.name))

    study = Study.objects.for_hospital(hospital).get(study_instance_uid=study_uid)
    assert study.number_of_series == 2
    assert study.number_of_instances == 25
    assert study.size_bytes == sum(p.stat().st_size for p in ct + pt)
    assert study.modalities_in_study == "CT\\PT"
    assert study.patient.patient_name == "TEST^PATIENT"
    assert study.accession_number == "ACC001"
    assert str(study.study_date) == "2026-11-20"
    counts = dict(
        Series.objects.for_hospital(hospital).values_list("modality", "number_of_instances")
    )
    assert counts == {"CT": 20, "PT": 5}
    assert Patient.objects.for_hospital(hospital).count() == 1
    for path in ct + pt:
        instance = Instance.objects.for_hospital(hospital).get(
            sha256=hashlib.sha256(path.read_bytes()).hexdigest()
        )
        assert _read_back(storage, instance.blob_key) == path.read_bytes()
    assert sorted(storage.iter_keys()) == sorted(
        Instance.objects.for_hospital(hospital).values_list("blob_key", flat=True)
    )


@pytest.mark.django_db
def test_blob_keys_do_not_contain_tag_text(tmp_path: Path, hospital: Hospital) -> None:
    [path] = write_series(tmp_path, 1, patient_id="../../etc/passwd", patient_name="EVIL^NAME")
    result = ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    assert ".." not in result.blob_key
    assert "EVIL" not in result.blob_key
    assert result.sop_instance_uid not in result.blob_key
    assert result.blob_key.startswith(f"{hospital.pk}/")


@pytest.mark.django_db
def test_large_private_value_is_stored_but_kept_out_of_metadata(
    tmp_path: Path, hospital: Hospital, storage: BlobStorage
) -> None:
    """A huge private tag (here 8 MB) is archived as received; the JSON holds a reference."""
    from carina.core.testing import make_ct_slice

    ds = make_ct_slice(study_uid=generate_uid(), series_uid=generate_uid(), index=0, size=16)
    block = ds.private_block(0x0009, "CARINA TEST", create=True)
    block.add_new(0x01, "OB", b"\x01" * (8 * 1024 * 1024))
    path = tmp_path / "private.dcm"
    ds.save_as(path, enforce_file_format=True)

    ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    instance = Instance.objects.for_hospital(hospital).get()
    assert instance.metadata["00091001"] == {"vr": "OB", "BulkDataURI": "00091001"}
    assert instance.metadata["00090010"]["Value"] == ["CARINA TEST"]
    assert _read_back(storage, instance.blob_key) == path.read_bytes()


@pytest.mark.django_db
def test_character_set_is_decoded_in_index(hospital: Hospital) -> None:
    ingest(shipped_file("chrH31.dcm"), hospital=hospital, origin=Origin(Source.IMPORT))
    patient = Patient.objects.for_hospital(hospital).get()
    assert "山田" in patient.patient_name


@pytest.mark.django_db
def test_nul_characters_in_text_values_are_dropped_from_the_index(
    tmp_path: Path, hospital: Hospital, storage: BlobStorage
) -> None:
    """Some writers pad text with NUL; PostgreSQL cannot store it, the archive still must."""
    [path] = write_series(
        tmp_path, 1, extra={"StudyDescription": "CT\x00HEAD", "OperatorsName": "SMITH\x00"}
    )
    ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    study = Study.objects.for_hospital(hospital).get()
    assert study.study_description == "CTHEAD"
    instance = Instance.objects.for_hospital(hospital).get()
    assert instance.metadata["00081070"]["Value"] == [{"Alphabetic": "SMITH"}]
    assert _read_back(storage, instance.blob_key) == path.read_bytes()
