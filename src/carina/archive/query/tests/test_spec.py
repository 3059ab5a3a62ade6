"""Building a QuerySpec from a C-FIND identifier and from QIDO-RS parameters: levels,
information models, unique keys, character sets, and identifiers that make no sense."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from carina.archive.query import (
    IdentifierMismatchError,
    InformationModel,
    InvalidValueError,
    Level,
    QuerySpec,
    UndecodableIdentifierError,
    UnknownKeyError,
    spec_from_identifier,
)
from carina.archive.query.spec import exact_uids

PATIENT_ROOT = InformationModel.PATIENT_ROOT
STUDY_ROOT = InformationModel.STUDY_ROOT


def _wire(ds: Dataset, implicit: bool = True) -> Dataset:
    """``ds`` as a C-FIND SCP receives it: encoded, then decoded lazily."""
    data = encode(ds, implicit, True)
    assert data is not None
    return decode(BytesIO(data), implicit, True)


def _identifier(**elements: object) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return _wire(ds)


def test_an_identifier_becomes_matching_and_return_keys() -> None:
    spec = spec_from_identifier(
        _identifier(
            QueryRetrieveLevel="STUDY",
            PatientName="TEST^*",
            StudyDate="20260101-",
            ModalitiesInStudy=["CT", "MR"],
            StudyInstanceUID="",
            NumberOfStudyRelatedInstances=None,
        ),
        STUDY_ROOT,
    )
    assert spec.level is Level.STUDY
    assert spec.keys["PatientName"] == "TEST^*"
    assert spec.keys["ModalitiesInStudy"] == "CT\\MR"
    assert set(spec.return_keys) == {
        "PatientName",
        "StudyDate",
        "ModalitiesInStudy",
        "StudyInstanceUID",
        "NumberOfStudyRelatedInstances",
    }
    assert {c.attribute.keyword for c in spec.conditions} == {
        "PatientName",
        "StudyDate",
        "ModalitiesInStudy",
    }
    assert not spec.status_warning


def test_a_latin1_identifier_is_decoded_in_its_character_set() -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientName = "Müller^*"
    ds.PatientID = ""
    data = encode(ds, False, True)
    assert data is not None and "Müller".encode("latin-1") in data
    spec = spec_from_identifier(decode(BytesIO(data), False, True), PATIENT_ROOT)
    assert spec.keys["PatientName"] == "Müller^*"
    assert "SpecificCharacterSet" not in spec.return_keys


def test_a_japanese_identifier_is_decoded_in_its_character_set() -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = "=山田^太郎"
    spec = spec_from_identifier(_wire(ds, implicit=False), STUDY_ROOT)
    assert spec.keys["PatientName"] == "=山田^太郎"


@pytest.mark.parametrize(
    ("model", "elements", "keyword", "message"),
    [
        (STUDY_ROOT, {"PatientName": "X*"}, "QueryRetrieveLevel", "is missing"),
        (STUDY_ROOT, {"QueryRetrieveLevel": ""}, "QueryRetrieveLevel", "is missing"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "FOO"}, "QueryRetrieveLevel", "is not one of"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "PATIENT"}, "QueryRetrieveLevel", "not a level"),
        (STUDY_ROOT, {"QueryRetrieveLevel": "SERIES"}, "StudyInstanceUID", "needs"),
        (
            STUDY_ROOT,
            {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": "*"},
            "StudyInstanceUID",
            "needs",
        ),
        (
            STUDY_ROOT,
            {"QueryRetrieveLevel": "IMAGE", "StudyInstanceUID": "1.2.3"},
            "SeriesInstanceUID",
            "needs",
        ),
        (PATIENT_ROOT, {"QueryRetrieveLevel": "STUDY"}, "PatientID", "needs"),
        (
            PATIENT_ROOT,
            {"QueryRetrieveLevel": "STUDY", "PatientID": "P*"},
            "PatientID",
            "single value",
        ),
        (
            PATIENT_ROOT,
            {"QueryRetrieveLevel": "SERIES", "PatientID": "P1"},
            "StudyInstanceUID",
            "needs",
        ),
    ],
)
def test_identifiers_that_do_not_fit_the_model_are_refused_with_a900(
    model: InformationModel, elements: dict[str, str], keyword: str, message: str
) -> None:
    with pytest.raises(IdentifierMismatchError, match=message) as caught:
        spec_from_identifier(_identifier(**elements), model)
    assert caught.value.dimse_status == 0xA900
    assert caught.value.keyword == keyword


def test_hierarchical_queries_with_the_unique_keys_above_are_accepted() -> None:
    spec = spec_from_identifier(
        _identifier(
            QueryRetrieveLevel="IMAGE",
            PatientID="P1",
            StudyInstanceUID="1.2.3",
            SeriesInstanceUID="1.2.3.4\\1.2.3.5",
            SOPInstanceUID="",
        ),
        PATIENT_ROOT,
    )
    assert spec.level is Level.IMAGE
    assert exact_uids(spec, "SeriesInstanceUID") == ("1.2.3.4", "1.2.3.5")
    assert spec_from_identifier(_identifier(QueryRetrieveLevel="PATIENT"), PATIENT_ROOT)


def test_an_invalid_value_is_refused_with_the_attribute_named() -> None:
    with pytest.raises(InvalidValueError) as caught:
        spec_from_identifier(
            _identifier(QueryRetrieveLevel="STUDY", StudyDate="2026-13"), STUDY_ROOT
        )
    assert caught.value.dimse_status == 0xC001
    assert caught.value.offending_tag == 0x00080020


def test_a_malformed_number_in_the_raw_identifier_is_reported_not_crashed_on() -> None:
    # IS "12x": pydicom would refuse to convert it; the engine reads the raw bytes.
    raw = (
        b"\x08\x00\x52\x00\x06\x00\x00\x00SERIES"
        b"\x20\x00\x0d\x00\x04\x00\x00\x001.2\x00"
        b"\x20\x00\x11\x00\x04\x00\x00\x0012x "
    )
    identifier = decode(BytesIO(raw), True, True)
    with pytest.raises(InvalidValueError, match="SeriesNumber"):
        spec_from_identifier(identifier, STUDY_ROOT)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff" * 40,
        b"\x08\x00\x52\x00\xff\xff\xff\x7f" + b"STUDY",
        b"garbage, not a data set at all",
    ],
)
@pytest.mark.filterwarnings("ignore:End of file reached before delimiter")
def test_garbage_identifiers_are_refused_not_crashed_on(raw: bytes) -> None:
    try:
        identifier = decode(BytesIO(raw), True, True)
    except Exception:
        return  # pynetdicom already refuses it; the SCP answers 0xC000 (dimse/find.py)
    with pytest.raises((UndecodableIdentifierError, IdentifierMismatchError)) as caught:
        spec_from_identifier(identifier, STUDY_ROOT)
    assert caught.value.dimse_status in (0xC000, 0xA900)


def test_keys_carina_cannot_use_make_a_warning() -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.PatientAge = "040Y"  # a matching value on a key the archive does not index
    ds.Modality = ""  # a series key at study level
    ds.ProcedureCodeSequence = [Dataset()]
    ds.ProcedureCodeSequence[0].CodeValue = "CT123"  # Sequence Matching is not offered
    ds.add_new(0x00091010, "LO", "")  # a private key
    spec = spec_from_identifier(_wire(ds, implicit=False), STUDY_ROOT)
    assert spec.unsupported == {"PatientAge", "Modality", "ProcedureCodeSequence", "00091010"}
    assert spec.status_warning
    assert spec.conditions == ()
    assert spec.vrs["00091010"] == "LO"


def test_qido_parameters_build_the_same_kind_of_spec() -> None:
    spec = QuerySpec.from_qido(
        "series",
        {
            "00100010": ["DOE^J*"],
            "Modality": ["CT"],
            "SeriesInstanceUID": ["1.2.3,1.2.4"],
            "includefield": ["StudyDescription,00081030", "NumberOfSeriesRelatedInstances"],
            "limit": ["25"],
            "offset": ["50"],
            "fuzzymatching": ["true"],
        },
        study_uid="1.2.840.1",
    )
    assert spec.level is Level.SERIES
    assert spec.model is None
    assert spec.keys == {
        "PatientName": "DOE^J*",
        "Modality": "CT",
        "SeriesInstanceUID": "1.2.3\\1.2.4",
        "StudyInstanceUID": "1.2.840.1",
    }
    assert "StudyDescription" in spec.return_keys
    assert "NumberOfSeriesRelatedInstances" in spec.return_keys
    assert (spec.limit, spec.offset) == (25, 50)
    assert exact_uids(spec, "SeriesInstanceUID") == ("1.2.3", "1.2.4")
    everything = QuerySpec.from_qido("STUDY", {"includefield": ["all"]})
    assert "ModalitiesInStudy" in everything.return_keys
    assert "NumberOfPatientRelatedStudies" in everything.return_keys
    assert "Modality" not in everything.return_keys


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"NoSuchKeyword": ["x"]}, UnknownKeyError),
        ({"limit": ["many"]}, Exception),
        ({"limit": ["100000"]}, Exception),
        ({"StudyDate": ["20261301"]}, InvalidValueError),
    ],
)
def test_bad_qido_parameters_are_refused(params: dict[str, list[str]], error: type) -> None:
    with pytest.raises(error) as caught:
        QuerySpec.from_qido("STUDY", params)
    assert getattr(caught.value, "http_status", 400) == 400
