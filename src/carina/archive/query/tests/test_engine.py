"""Running a spec: what comes back, in which order, for which hospital, at what cost."""

from __future__ import annotations

import datetime as dt
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from carina.archive.query import QuerySpec, count, queryset, run, to_dataset, to_json
from carina.archive.query.tests.conftest import (
    MR_IMAGE,
    ArchiveBuilder,
    SeriesPlan,
    find,
    uids,
)
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def _roundtrip(ds: Dataset) -> Dataset:
    """``ds`` encoded as on the network (explicit VR little endian) and decoded again."""
    data = encode(ds, False, True)
    assert data is not None
    return decode(BytesIO(data), False, True)


def test_study_answers_carry_every_requested_key(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    study = archive.study(
        patient_name="DOE^JANE",
        referring="WELBY^MARCUS",
        series=[
            SeriesPlan("CT", 3),
            SeriesPlan("SR", 1, sop_class="1.2.840.10008.5.1.4.1.1.88.11"),
        ],
    )
    spec = QuerySpec(
        "STUDY",
        {"PatientName": "DOE*", "StudyDate": "", "ModalitiesInStudy": ""},
        [
            "StudyInstanceUID",
            "StudyTime",
            "AccessionNumber",
            "ReferringPhysicianName",
            "NumberOfStudyRelatedSeries",
            "NumberOfStudyRelatedInstances",
            "NumberOfPatientRelatedStudies",
            "PatientBirthDate",
            "InstanceAvailability",
            "PatientAge",
        ],
    )
    [match] = run(spec, hospital)
    ds = _roundtrip(to_dataset(spec, match))
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.PatientName == "DOE^JANE"
    assert ds.StudyDate == "20261120"
    assert ds.StudyTime == "101500"
    assert ds.StudyInstanceUID == study.study_instance_uid
    assert ds.AccessionNumber == "ACC001"
    assert ds.ReferringPhysicianName == "WELBY^MARCUS"
    assert list(ds.ModalitiesInStudy) == ["CT", "SR"]
    assert ds.NumberOfStudyRelatedSeries == 2
    assert ds.NumberOfStudyRelatedInstances == 4
    assert ds.NumberOfPatientRelatedStudies == 1
    assert ds.PatientBirthDate == "19700101"
    assert ds.InstanceAvailability == "ONLINE"
    # A key the archive does not keep at study level comes back zero-length (FF01).
    assert "PatientAge" in ds and ds.PatientAge in ("", None)
    assert spec.unsupported == {"PatientAge"}
    assert "SpecificCharacterSet" not in ds  # all ASCII


def test_empty_values_are_returned_zero_length(archive: ArchiveBuilder, hospital: Hospital) -> None:
    archive.study(accession="", study_date=None, study_time=None, description="")
    spec = QuerySpec(
        "STUDY", {"AccessionNumber": "", "StudyDate": "", "StudyTime": "", "StudyDescription": ""}
    )
    [match] = run(spec, hospital)
    ds = _roundtrip(to_dataset(spec, match))
    for keyword in ("AccessionNumber", "StudyDate", "StudyTime", "StudyDescription"):
        assert keyword in ds
        assert ds[keyword].is_empty
    assert to_json(spec, match)["00080050"] == {"vr": "SH"}


def test_patient_answers_count_studies_series_and_instances(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    archive.study(patient_id="A", series=[SeriesPlan("CT", 3), SeriesPlan("CT", 2)])
    archive.study(patient_id="A", series=[SeriesPlan("MR", 4)])
    archive.study(patient_id="B", series=[SeriesPlan("CR", 1)])
    keys = {
        "PatientID": "",
        "NumberOfPatientRelatedStudies": "",
        "NumberOfPatientRelatedSeries": "",
        "NumberOfPatientRelatedInstances": "",
    }
    found = {m.values["PatientID"]: m.values for m in find(hospital, "PATIENT", keys)}
    assert found["A"]["NumberOfPatientRelatedStudies"] == 2
    assert found["A"]["NumberOfPatientRelatedSeries"] == 3
    assert found["A"]["NumberOfPatientRelatedInstances"] == 9
    assert found["B"]["NumberOfPatientRelatedInstances"] == 1


def test_series_answers_count_their_instances(archive: ArchiveBuilder, hospital: Hospital) -> None:
    study = archive.study(series=[SeriesPlan("CT", 3, number=2), SeriesPlan("MR", 1, number=1)])
    spec = QuerySpec(
        "SERIES",
        {"StudyInstanceUID": study.study_instance_uid, "SeriesNumber": ""},
        ["Modality", "NumberOfSeriesRelatedInstances"],
    )
    answers = [_roundtrip(to_dataset(spec, m)) for m in run(spec, hospital)]
    assert [(a.SeriesNumber, a.Modality, a.NumberOfSeriesRelatedInstances) for a in answers] == [
        (1, "MR", 1),
        (2, "CT", 3),
    ]


def test_image_answers_take_keys_the_index_lacks_from_the_stored_metadata(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    study = archive.study(series=[SeriesPlan("CT", 2)])
    series = study.series.get()
    extra = archive.add_instance(
        series,
        3,
        MR_IMAGE,
        metadata={
            "00080008": {"vr": "CS", "Value": ["DERIVED", "SECONDARY"]},
            "00081140": {
                "vr": "SQ",
                "Value": [
                    {
                        "00081150": {"vr": "UI", "Value": ["1.2.3"]},
                        "00081155": {"vr": "UI", "Value": ["1.2.3.4"]},
                    }
                ],
            },
            "00091001": {"vr": "LO", "Value": ["private"]},
            "7FE00010": {"vr": "OW", "BulkDataURI": "7FE00010"},
        },
    )
    spec = QuerySpec(
        "IMAGE",
        {
            "StudyInstanceUID": study.study_instance_uid,
            "SeriesInstanceUID": series.series_instance_uid,
            "SOPInstanceUID": extra.sop_instance_uid,
            "ImageType": "",
            "ReferencedImageSequence": "",
            "SliceThickness": "",
            "PixelData": "",
            "InstanceNumber": "",
            "Rows": "",
        },
        sequences={"ReferencedImageSequence": ["ReferencedSOPInstanceUID"]},
    )
    assert spec.unsupported == set()  # at IMAGE level, every key can be returned
    [match] = run(spec, hospital)
    ds = _roundtrip(to_dataset(spec, match))
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
    assert len(ds.ReferencedImageSequence) == 1
    item = ds.ReferencedImageSequence[0]
    assert item.ReferencedSOPInstanceUID == "1.2.3.4"
    assert "ReferencedSOPClassUID" not in item  # only what the request's item asked for
    assert ds["SliceThickness"].is_empty  # this instance has none
    assert ds["PixelData"].is_empty  # bulk data is never returned
    assert ds.InstanceNumber == 3
    assert ds.Rows == 128
    as_json = to_json(spec, match)
    assert as_json["7FE00010"] == {"vr": "OW", "BulkDataURI": "7FE00010"}
    assert as_json["00080008"] == {"vr": "CS", "Value": ["DERIVED", "SECONDARY"]}
    assert as_json["00200013"] == {"vr": "IS", "Value": [3]}


def test_non_ascii_answers_are_utf8_and_say_so(archive: ArchiveBuilder, hospital: Hospital) -> None:
    archive.study(
        patient_name="Yamada^Tarou=山田^太郎=やまだ^たろう", description="Thorax ärztlich"
    )
    spec = QuerySpec("STUDY", {"PatientName": "山田*", "StudyDescription": ""})
    [match] = run(spec, hospital)
    ds = to_dataset(spec, match)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    back = _roundtrip(ds)
    assert str(back.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert back.PatientName.ideographic == "山田^太郎"
    assert back.StudyDescription == "Thorax ärztlich"
    as_json = to_json(spec, match)
    assert as_json["00100010"] == {
        "vr": "PN",
        "Value": [
            {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}
        ],
    }
    assert "00080005" not in as_json


def test_results_come_in_a_fixed_order_with_limit_and_offset(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    made = []
    for day, time in [(3, 9), (1, 8), (3, 10), (2, 7)]:
        study = archive.study(
            patient_id=f"P{day}{time}", study_date=dt.date(2026, 1, day), study_time=dt.time(time)
        )
        made.append(((day, time), study.study_instance_uid))
    undated = archive.study(patient_id="X", study_date=None, study_time=None)
    newest_first = [uid for _, uid in sorted(made, reverse=True)] + [undated.study_instance_uid]
    spec = QuerySpec("STUDY", {"StudyInstanceUID": ""})
    assert [m.values["StudyInstanceUID"] for m in run(spec, hospital)] == newest_first
    page = QuerySpec("STUDY", {"StudyInstanceUID": ""}, limit=2, offset=1)
    assert [m.values["StudyInstanceUID"] for m in run(page, hospital)] == newest_first[1:3]
    assert count(page, hospital) == 5
    small_chunks = run(spec, hospital, chunk_size=2)
    assert [m.values["StudyInstanceUID"] for m in small_chunks] == newest_first


def test_another_hospitals_data_never_matches(
    archive: ArchiveBuilder, hospital: Hospital, other_hospital: Hospital
) -> None:
    ours = archive.study(patient_id="P1", patient_name="DOE^JANE", series=[SeriesPlan("CT", 2)])
    # The other hospital holds the same patient and the same study UID, with an MR series.
    theirs = archive.study(
        hospital=other_hospital,
        patient_id="P1",
        patient_name="DOE^JANE",
        study_uid=ours.study_instance_uid,
        series=[SeriesPlan("MR", 5), SeriesPlan("MR", 1)],
    )
    archive.study(hospital=other_hospital, patient_id="P2", patient_name="DOE^JOHN")
    uid = ours.study_instance_uid
    assert uids(hospital, "STUDY", {"PatientName": "DOE*"}) == {uid}
    assert uids(hospital, "STUDY", {"ModalitiesInStudy": "MR"}) == set()
    assert uids(other_hospital, "STUDY", {"ModalitiesInStudy": "MR"}) == {uid}
    assert uids(hospital, "PATIENT", {"PatientName": "DOE*"}) == {"P1"}
    [patient] = find(
        hospital,
        "PATIENT",
        {"PatientID": "P1"},
        "NumberOfPatientRelatedStudies",
        "NumberOfPatientRelatedInstances",
    )
    assert patient.values["NumberOfPatientRelatedStudies"] == 1
    assert patient.values["NumberOfPatientRelatedInstances"] == 2
    [study] = find(hospital, "STUDY", {"StudyInstanceUID": uid}, "SOPClassesInStudy")
    assert study.pk == ours.pk != theirs.pk
    theirs_series = {s.series_instance_uid for s in theirs.series.all()}
    assert uids(hospital, "SERIES", {"StudyInstanceUID": uid}).isdisjoint(theirs_series)
    assert len(uids(hospital, "IMAGE", {"StudyInstanceUID": uid})) == 2
    assert queryset(QuerySpec("SERIES", {"StudyInstanceUID": uid}), hospital).count() == 1


def test_the_number_of_database_queries_does_not_grow_with_the_results(
    archive: ArchiveBuilder, hospital: Hospital, django_assert_max_num_queries: object
) -> None:
    for index in range(12):
        archive.study(
            patient_id=f"P{index % 4}",
            series=[SeriesPlan("CT", 2), SeriesPlan("MR", 1, sop_class=MR_IMAGE)],
        )
    study_keys = {
        "PatientName": "TEST*",
        "PatientID": "",
        "StudyInstanceUID": "",
        "ModalitiesInStudy": "",
        "NumberOfStudyRelatedSeries": "",
        "NumberOfStudyRelatedInstances": "",
        "NumberOfPatientRelatedStudies": "",
        "NumberOfPatientRelatedSeries": "",
        "NumberOfPatientRelatedInstances": "",
    }
    # One query for the patients named TEST*, one for their studies with every count.
    with django_assert_max_num_queries(2):  # type: ignore[operator]
        found = find(hospital, "STUDY", study_keys)
    assert len(found) == 12
    assert all(m.values["NumberOfPatientRelatedStudies"] == 3 for m in found)
    with django_assert_max_num_queries(2):  # type: ignore[operator]
        found = find(hospital, "STUDY", {"SOPClassesInStudy": ""})
    assert all(len(m.values["SOPClassesInStudy"]) == 2 for m in found)
    with django_assert_max_num_queries(4):  # type: ignore[operator]
        found = list(run(QuerySpec("STUDY", {"SOPClassesInStudy": ""}), hospital, chunk_size=4))
    assert len(found) == 12
    # One query for the MR series, one for their instances.
    with django_assert_max_num_queries(2):  # type: ignore[operator]
        found = find(hospital, "IMAGE", {"ImageType": "", "PatientName": "", "Modality": "MR"})
    assert len(found) == 12
    assert all(m.metadata is not None for m in found)
    with django_assert_max_num_queries(1):  # type: ignore[operator]
        found = find(hospital, "PATIENT", {"NumberOfPatientRelatedInstances": ""})
    assert [m.values["NumberOfPatientRelatedInstances"] for m in found] == [9, 9, 9, 9]


def test_the_metadata_column_is_read_only_when_needed(
    archive: ArchiveBuilder, hospital: Hospital
) -> None:
    archive.study()
    [match] = find(hospital, "IMAGE", {"SOPInstanceUID": "", "InstanceNumber": ""})
    assert match.metadata is None
