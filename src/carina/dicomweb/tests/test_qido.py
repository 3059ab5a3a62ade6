"""QIDO-RS (PS3.18 10.6) against a live Carina: dicomweb-client for every search resource,
the exact requests OHIF 3.13 sends (docs: /work/shared/notes/ohif-viewer.md §3.1), every
matching rule with names that need percent-encoding, paging, errors a client can act on,
hospital isolation, the audit trail, and paging and streaming at the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from carina.archive.query.tests.conftest import ArchiveBuilder, SeriesPlan
from carina.audit.models import Action, AuditEvent, Outcome
from carina.core.testing import make_ct_slice
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
OHIF_FIELDS = "includefield=00081030,00080060,00080090,00100030"
OHIF_LIST = f"limit=101&offset=0&fuzzymatching=false&{OHIF_FIELDS}"


@dataclass
class Archive:
    """What the ``archive`` fixture stored: study, series and SOP Instance UIDs by name."""

    study: dict[str, str]
    series: dict[str, str]
    sops: dict[str, list[str]]


# study: (PatientID, PatientName, StudyDate, AccessionNumber, StudyDescription,
#         [(series, Modality, SeriesDescription, instances)])
PLAN: dict[str, tuple[str, str, str, str, str, list[tuple[str, str, str, int]]]] = {
    "A": (
        "PAT001",
        "DOE^JANE",
        "20240315",
        "ACC001",
        "Chest CT",
        [("A1", "CT", "AXIAL 1.25", 3), ("A2", "MR", "T1", 1)],
    ),
    "B": ("PAT002", "Müller^Jörg", "20230101", "ACC_002", "A&B+C 100%_X", [("B1", "CR", "", 1)]),
    "C": ("PAT003", "VAN DER BERG^ANNA", "20250601", "ACCX002", "100%AX", [("C1", "CT", "", 1)]),
    "D": ("PAT+4&5", "O'BRIEN+ROSE^MARY", "20220202", "ACC004", "plain", [("D1", "MR", "", 1)]),
}


def _slice(study: str, series: str, index: int, number: int, **kw: Any) -> Dataset:
    pid, name, date, accession, description, _ = PLAN[study]
    modality, series_description = kw.pop("modality"), kw.pop("series_description")
    return make_ct_slice(
        study_uid=kw.pop("study_uid"),
        series_uid=kw.pop("series_uid"),
        index=index,
        size=8,
        patient_id=pid,
        patient_name=name,
        modality=modality,
        extra={
            "StudyDate": date,
            "AccessionNumber": accession,
            "StudyDescription": description,
            "SeriesNumber": number,
            "SeriesDescription": series_description,
            "SeriesDate": date,
            "ReferringPhysicianName": "WHO^DR",
            "StudyID": f"S{study}",
        },
    )


@pytest.fixture
def archive(store: Any, other_hospital: Hospital) -> Archive:
    """Four studies in the default hospital; in the other hospital a copy of study A's first
    slice (same UIDs) and a study of a patient with the same Patient ID and a similar name."""
    made = Archive({}, {}, {})
    first: Dataset | None = None
    for study, (*_, series_plan) in PLAN.items():
        made.study[study] = generate_uid()
        for number, (series, modality, description, count) in enumerate(series_plan, start=1):
            made.series[series] = generate_uid()
            slices = [
                _slice(
                    study,
                    series,
                    index,
                    number,
                    study_uid=made.study[study],
                    series_uid=made.series[series],
                    modality=modality,
                    series_description=description,
                )
                for index in range(count)
            ]
            made.sops[series] = [str(ds.SOPInstanceUID) for ds in slices]
            store(slices)
            first = first or slices[0]
    assert first is not None
    elsewhere = make_ct_slice(
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        index=0,
        size=8,
        patient_id="PAT001",
        patient_name="DOE^JOHN",
    )
    made.study["E"] = str(elsewhere.StudyInstanceUID)
    store([first, elsewhere], hospital=other_hospital)
    return made


def study_uids(results: list[dict[str, Any]]) -> list[str]:
    return [r["0020000D"]["Value"][0] for r in results]


def values(result: dict[str, Any], tag: str) -> list[Any]:
    return list(result.get(tag, {}).get("Value", []))


def names(archive: Archive, *studies: str) -> list[str]:
    return [archive.study[s] for s in studies]


# --- studies ---------------------------------------------------------------------------


def test_study_results_carry_what_ps3_18_and_ohif_need(
    dicomweb: DICOMwebClient, archive: Archive
) -> None:
    (result,) = dicomweb.search_for_studies(search_filters={"PatientID": "PAT001"})
    uid = archive.study["A"]
    assert values(result, "0020000D") == [uid]
    assert values(result, "00100010") == [{"Alphabetic": "DOE^JANE"}]
    assert values(result, "00100020") == ["PAT001"]
    assert values(result, "00100030") == ["19700101"]
    assert values(result, "00100040") == ["O"]
    assert values(result, "00080020") == ["20240315"]
    assert values(result, "00080030") == ["101500"]
    assert values(result, "00080050") == ["ACC001"]
    assert values(result, "00081030") == ["Chest CT"]
    assert values(result, "00080090") == [{"Alphabetic": "WHO^DR"}]
    assert values(result, "00200010") == ["SA"]
    assert values(result, "00080061") == ["CT", "MR"]
    assert values(result, "00201206") == [2]
    assert values(result, "00201208") == [4]
    assert values(result, "00080056") == ["ONLINE"]
    assert result["00081190"] == {"vr": "UR", "Value": [f"/dicomweb/studies/{uid}"]}
    assert "00080060" not in result  # never a value-less Modality next to ModalitiesInStudy
    assert list(result) == sorted(result)


def test_the_ohif_study_list_request(
    http: requests.Session, live_server: Any, archive: Archive
) -> None:
    response = http.get(
        f"{live_server.url}/dicomweb/studies?{OHIF_LIST}",
        headers={"Accept": "application/dicom+json"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/dicom+json"
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert "Warning" not in response.headers
    results = response.json()
    # Newest first; nothing of the other hospital.
    assert study_uids(results) == names(archive, "C", "A", "B", "D")
    for result in results:
        assert values(result, "00080061"), "ModalitiesInStudy must carry a value (OHIF #2774)"
        assert "00080060" not in result
        assert "00081030" in result and "00080090" in result and "00100030" in result
        assert values(result, "00201208")


def test_a_study_without_a_modality_has_no_value_less_modalities_in_study(
    dicomweb: DICOMwebClient, store: Any
) -> None:
    ds = make_ct_slice(study_uid=generate_uid(), series_uid=generate_uid(), index=0, size=8)
    del ds.Modality
    store([ds])
    (result,) = dicomweb.search_for_studies()
    assert "00080061" not in result
    assert values(result, "00201208") == [1]


def test_the_ohif_filtered_study_list_request(
    http: requests.Session, live_server: Any, archive: Archive
) -> None:
    query = (
        "PatientName=*doe*&00100020=*PAT001*&AccessionNumber=*ACC001*"
        "&StudyDescription=*Chest*&ModalitiesInStudy=CT%2CMR"
        f"&{OHIF_LIST}&StudyDate=20230101-20241231"
    )
    response = http.get(f"{live_server.url}/dicomweb/studies?{query}", timeout=30)
    assert response.status_code == 200
    assert study_uids(response.json()) == names(archive, "A")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("PatientName=*doe*", ["A"]),
        ("ModalitiesInStudy=CT,MR", ["C", "A", "D"]),
        ("ModalitiesInStudy=CT%2CMR", ["C", "A", "D"]),
        ("StudyDate=20230101-20241231", ["A", "B"]),
        ("00100020=PAT001", ["A"]),  # OHIF's other-studies-of-this-patient lookup: exact
        ("00100020=PAT00", []),
    ],
)
def test_ohif_filters_one_by_one(
    http: requests.Session, live_server: Any, archive: Archive, query: str, expected: list[str]
) -> None:
    response = http.get(f"{live_server.url}/dicomweb/studies?{OHIF_LIST}&{query}", timeout=30)
    assert response.status_code == 200
    assert study_uids(response.json()) == names(archive, *expected)


def test_the_ohif_study_existence_check(
    http: requests.Session, live_server: Any, archive: Archive
) -> None:
    uid = archive.study["B"]
    response = http.get(
        f"{live_server.url}/dicomweb/studies?{OHIF_LIST}&StudyInstanceUID={uid}", timeout=30
    )
    assert study_uids(response.json()) == [uid]
    missing = http.get(
        f"{live_server.url}/dicomweb/studies?{OHIF_LIST}&StudyInstanceUID=1.2.3.4", timeout=30
    )
    assert missing.status_code == 200
    assert missing.json() == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"PatientName": "doe*"}, ["A"]),
        ({"PatientName": "DOE^jane"}, ["A"]),
        ({"PatientName": "*^ANNA"}, ["C"]),
        ({"PatientName": "Müller^Jörg"}, ["B"]),
        ({"PatientName": "müller*"}, ["B"]),
        ({"PatientName": "MÜLLER*"}, []),  # only A-Z ignore case (docs/query.md)
        ({"PatientName": "VAN DER BERG^ANNA"}, ["C"]),
        ({"PatientName": "van der*"}, ["C"]),
        ({"PatientName": "O'BRIEN+ROSE*"}, ["D"]),
        ({"PatientName": "O'BRIEN ROSE*"}, []),  # '+' is a plus, not a space
        ({"PatientID": "PAT+4&5"}, ["D"]),
        ({"00100020": "PAT+4?5"}, ["D"]),
        ({"StudyDescription": "A&B+C 100%_X"}, ["B"]),
        ({"StudyDescription": "100%*"}, ["C"]),
        ({"StudyDescription": "*%_X"}, ["B"]),  # '_' is literal: not C's '100%AX'
        ({"StudyDescription": "chest*"}, []),  # descriptions are case-sensitive (PS3.4)
        ({"AccessionNumber": "ACC_002"}, ["B"]),
        ({"AccessionNumber": "ACC?002"}, ["C", "B"]),
        ({"StudyDate": "20240101-"}, ["C", "A"]),
        ({"StudyDate": "-20230101"}, ["B", "D"]),
        ({"StudyDate": "20220202"}, ["D"]),
        ({"ModalitiesInStudy": "MR"}, ["A", "D"]),
        ({"ModalitiesInStudy": "CR\\MR"}, ["A", "B", "D"]),
        ({"ReferringPhysicianName": "who*"}, ["C", "A", "B", "D"]),
        ({"StudyID": "SB"}, ["B"]),
    ],
)
def test_matching_rules_with_literal_special_characters(
    dicomweb: DICOMwebClient, archive: Archive, filters: dict[str, str], expected: list[str]
) -> None:
    results = dicomweb.search_for_studies(search_filters=filters)
    assert study_uids(results) == names(archive, *expected)


@pytest.mark.parametrize("separator", [",", "\\"])
def test_a_list_of_study_uids(dicomweb: DICOMwebClient, archive: Archive, separator: str) -> None:
    wanted = separator.join([archive.study["A"], archive.study["C"], "1.2.3.4"])
    results = dicomweb.search_for_studies(search_filters={"StudyInstanceUID": wanted})
    assert study_uids(results) == names(archive, "C", "A")


def test_repeated_uid_parameters_are_one_list_and_tags_may_be_lower_case(
    http: requests.Session, live_server: Any, archive: Archive
) -> None:
    a, d = archive.study["A"], archive.study["D"]
    response = http.get(f"{live_server.url}/dicomweb/studies?0020000d={a}&0020000D={d}", timeout=30)
    assert study_uids(response.json()) == [a, d]


def test_includefield_lists_tags_keywords_and_all(
    dicomweb: DICOMwebClient, http: requests.Session, live_server: Any, archive: Archive
) -> None:
    (result,) = dicomweb.search_for_studies(
        search_filters={"PatientID": "PAT002"}, fields=["SOPClassesInStudy", "00201200"]
    )
    assert values(result, "00080062") == [CT_IMAGE]
    assert values(result, "00201200") == [1]  # NumberOfPatientRelatedStudies
    url = f"{live_server.url}/dicomweb/studies?PatientID=PAT002"
    listed = http.get(f"{url}&includefield=SOPClassesInStudy,00201202", timeout=30).json()[0]
    assert values(listed, "00080062") == [CT_IMAGE]
    assert values(listed, "00201202") == [1]
    everything = http.get(f"{url}&includefield=all", timeout=30).json()[0]
    assert values(everything, "00080062") == [CT_IMAGE]
    assert values(everything, "00201204") == [1]
    # Modality is a series attribute, PatientAge is not kept for studies, the time zone is
    # not known and Retrieve AE Title belongs to C-FIND: none comes back, not even empty.
    neither = http.get(
        f"{url}&includefield=00080060&includefield=PatientAge,TimezoneOffsetFromUTC,00080054",
        timeout=30,
    )
    assert neither.status_code == 200
    for tag in ("00080060", "00101010", "00080201", "00080054"):
        assert tag not in neither.json()[0], tag


def test_limit_and_offset_page_through_a_fixed_order(
    dicomweb: DICOMwebClient, archive: Archive
) -> None:
    pages = [dicomweb.search_for_studies(limit=3, offset=offset) for offset in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 1, 0]
    assert study_uids(pages[0] + pages[1]) == names(archive, "C", "A", "B", "D")


def test_fuzzymatching_is_accepted_with_a_warning(
    dicomweb: DICOMwebClient, http: requests.Session, live_server: Any, archive: Archive
) -> None:
    assert study_uids(
        dicomweb.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "doe"})
    ) == names(archive, "A")
    response = http.get(
        f"{live_server.url}/dicomweb/studies?PatientName=doe&fuzzymatching=true", timeout=30
    )
    assert response.headers["Warning"].startswith('299 carina "The fuzzymatching parameter')
    quiet = http.get(f"{live_server.url}/dicomweb/studies?fuzzymatching=false", timeout=30)
    assert "Warning" not in quiet.headers


def test_no_match_is_200_with_an_empty_array(
    dicomweb: DICOMwebClient, http: requests.Session, live_server: Any, archive: Archive
) -> None:
    assert dicomweb.search_for_studies(search_filters={"PatientName": "NOBODY"}) == []
    response = http.get(f"{live_server.url}/dicomweb/studies?PatientName=NOBODY", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/dicom+json"
    assert response.content == b"[]"


# --- limits and bad requests -----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=-1", "limit must be a whole number"),
        ("limit=abc", "limit must be a whole number"),
        ("limit=1.5", "limit must be a whole number"),
        ("offset=-3", "offset must be a whole number"),
        ("offset=99999999999999999999", "offset must be a whole number"),
        ("StudyDate=2026-13-45", "StudyDate"),
        ("StudyDate=20261231-20260101", "ends before it starts"),
        ("Foo=bar", "'Foo' is not a DICOM attribute"),
        ("patientname=doe", "did you mean PatientName?"),
        ("includefield=Bogus", "'Bogus' is not a DICOM attribute"),
        ("Modality=CT", "use ModalitiesInStudy"),
        ("PatientAge=030Y", "PatientAge: Carina does not match this attribute"),
        ("00400275.00401001=X", "matching inside sequences"),
        ("StudyInstanceUID=1.2.*", "StudyInstanceUID"),
    ],
)
def test_bad_searches_are_400_naming_the_parameter(
    http: requests.Session, live_server: Any, query: str, message: str
) -> None:
    response = http.get(f"{live_server.url}/dicomweb/studies?{query}", timeout=30)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert message in response.json()["error"]


def test_a_limit_above_the_maximum_is_reduced(
    http: requests.Session, live_server: Any, archive: Archive
) -> None:
    response = http.get(f"{live_server.url}/dicomweb/studies?limit=1000000", timeout=30)
    assert response.status_code == 200
    assert len(response.json()) == 4
    assert "Warning" not in response.headers  # nothing was left out


def test_a_page_cut_by_the_maximum_says_so_in_a_warning(
    http: requests.Session, live_server: Any, archive: Archive, settings: Any
) -> None:
    settings.CARINA_QIDO_MAX_RESULTS = 3
    for query in ("", "?limit=50"):
        response = http.get(f"{live_server.url}/dicomweb/studies{query}", timeout=30)
        assert study_uids(response.json()) == names(archive, "C", "A", "B")
        assert response.headers["Warning"].startswith('299 carina "There are more than 3')
        assert "offset=3" in response.headers["Warning"]
    rest = http.get(f"{live_server.url}/dicomweb/studies?offset=3", timeout=30)
    assert study_uids(rest.json()) == names(archive, "D")
    assert "Warning" not in rest.headers
    asked = http.get(f"{live_server.url}/dicomweb/studies?limit=2", timeout=30)
    assert len(asked.json()) == 2 and "Warning" not in asked.headers


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/dicom+json", 200),
        ("application/json", 200),
        ("*/*", 200),
        ("application/*", 200),
        ("application/xml", 406),
        ('multipart/related; type="application/dicom+xml"', 406),
        ("image/jpeg, application/dicom+json;q=0.5", 200),
    ],
)
def test_accept(http: requests.Session, live_server: Any, accept: str, status: int) -> None:
    response = http.get(
        f"{live_server.url}/dicomweb/studies", headers={"Accept": accept}, timeout=30
    )
    assert response.status_code == status
    if status == 406:
        assert "application/dicom+json" in response.json()["error"]
    else:
        assert response.headers["Content-Type"] == "application/dicom+json"


def test_the_accept_query_parameter_wins(
    http: requests.Session, live_server: Any, archive: Archive
) -> None:
    url = f"{live_server.url}/dicomweb/studies?accept={quote('application/dicom+json')}"
    response = http.get(url, headers={"Accept": "application/xml"}, timeout=30)
    assert response.status_code == 200
    assert len(response.json()) == 4


def test_head_answers_headers_only(
    http: requests.Session, live_server: Any, archive: Archive
) -> None:
    response = http.head(f"{live_server.url}/dicomweb/studies", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/dicom+json"
    assert response.content == b""


# --- series ----------------------------------------------------------------------------


def test_series_of_a_study(dicomweb: DICOMwebClient, archive: Archive) -> None:
    results = dicomweb.search_for_series(study_instance_uid=archive.study["A"])
    assert [values(r, "0020000E") for r in results] == [
        [archive.series["A1"]],
        [archive.series["A2"]],
    ]
    first = results[0]
    assert values(first, "0020000D") == [archive.study["A"]]
    assert values(first, "00080060") == ["CT"]
    assert values(first, "00200011") == [1]
    assert values(first, "0008103E") == ["AXIAL 1.25"]
    assert values(first, "00080021") == ["20240315"]
    assert values(first, "00201209") == [3]
    assert values(results[1], "00201209") == [1]
    assert values(first, "00081190") == [
        f"/dicomweb/studies/{archive.study['A']}/series/{archive.series['A1']}"
    ]
    assert "00100010" not in first  # the study is fixed by the path


def test_the_ohif_series_requests(
    http: requests.Session, live_server: Any, archive: Archive
) -> None:
    base = f"{live_server.url}/dicomweb/studies/{archive.study['A']}/series"
    for fields in ("0008103E,00080021", "00080021,00080031,0008103E,00200011"):
        response = http.get(f"{base}?includefield={fields}", timeout=30)
        assert response.status_code == 200
        results = response.json()
        assert [values(r, "0020000E")[0] for r in results] == [
            archive.series["A1"],
            archive.series["A2"],
        ]
        assert all(values(r, "0008103E") and values(r, "00080021") for r in results)


def test_all_series_carry_the_study_attributes(dicomweb: DICOMwebClient, archive: Archive) -> None:
    results = dicomweb.search_for_series(search_filters={"Modality": "CT"})
    assert [values(r, "0020000E")[0] for r in results] == [
        archive.series["A1"],
        archive.series["C1"],
    ]
    assert values(results[0], "00100010") == [{"Alphabetic": "DOE^JANE"}]
    assert values(results[0], "00080061") == ["CT", "MR"]
    by_patient = dicomweb.search_for_series(search_filters={"PatientName": "doe*"})
    assert [values(r, "0020000E")[0] for r in by_patient] == [
        archive.series["A1"],
        archive.series["A2"],
    ]


# --- instances -------------------------------------------------------------------------


def test_instances_of_a_series(dicomweb: DICOMwebClient, archive: Archive) -> None:
    study, series = archive.study["A"], archive.series["A1"]
    results = dicomweb.search_for_instances(study_instance_uid=study, series_instance_uid=series)
    assert [values(r, "00080018")[0] for r in results] == archive.sops["A1"]
    first = results[0]
    assert values(first, "00080016") == [CT_IMAGE]
    assert values(first, "00200013") == [1]
    assert values(first, "0020000D") == [study]
    assert values(first, "0020000E") == [series]
    assert values(first, "00280010") == [8]
    assert values(first, "00280011") == [8]
    assert values(first, "00280100") == [16]
    assert values(first, "00080056") == ["ONLINE"]
    sop = archive.sops["A1"][0]
    assert values(first, "00081190") == [
        f"/dicomweb/studies/{study}/series/{series}/instances/{sop}"
    ]


def test_instances_of_a_study_and_all_instances(dicomweb: DICOMwebClient, archive: Archive) -> None:
    in_study = dicomweb.search_for_instances(study_instance_uid=archive.study["A"])
    assert [values(r, "00080018")[0] for r in in_study] == archive.sops["A1"] + archive.sops["A2"]
    assert values(in_study[-1], "00080060") == ["MR"]  # the series' attributes come too
    everywhere = dicomweb.search_for_instances(
        search_filters={"PatientID": "PAT003"}, fields=["ImagePositionPatient"]
    )
    assert [values(r, "00080018")[0] for r in everywhere] == archive.sops["C1"]
    assert values(everywhere[0], "00100010") == [{"Alphabetic": "VAN DER BERG^ANNA"}]
    assert values(everywhere[0], "00200032") == [0.0, 0.0, 0.0]  # from the stored metadata


def test_the_ohif_thumbnail_fallback_request(
    http: requests.Session, live_server: Any, archive: Archive
) -> None:
    study, series = archive.study["A"], archive.series["A1"]
    response = http.get(
        f"{live_server.url}/dicomweb/studies/{study}/series/{series}/instances"
        "?limit=1&includefield=00080018",
        timeout=30,
    )
    assert [values(r, "00080018")[0] for r in response.json()] == archive.sops["A1"][:1]


# --- hospitals -------------------------------------------------------------------------


def test_another_hospital_sees_none_of_these_studies(
    outsider_dicomweb: DICOMwebClient, archive: Archive
) -> None:
    theirs = outsider_dicomweb.search_for_studies()
    assert sorted(study_uids(theirs)) == sorted(names(archive, "A", "E"))
    (copy,) = outsider_dicomweb.search_for_studies(
        search_filters={"StudyInstanceUID": archive.study["A"]}
    )
    assert values(copy, "00201208") == [1]  # their own copy of one slice, not our four
    assert outsider_dicomweb.search_for_studies(search_filters={"PatientName": "müller*"}) == []
    assert (
        outsider_dicomweb.search_for_series(
            search_filters={"SeriesInstanceUID": archive.series["B1"]}
        )
        == []
    )
    assert (
        outsider_dicomweb.search_for_instances(
            search_filters={"SOPInstanceUID": archive.sops["C1"][0]}
        )
        == []
    )


@pytest.mark.parametrize(
    "path",
    [
        "studies/{B}/series",
        "studies/{B}/instances",
        "studies/{A}/series/{A2}/instances",
        "studies/1.2.3.999/series",
        "studies/1.2.3.999/instances",
        "studies/{A}/series/1.2.3.999/instances",
        "studies/{C}/series/{A1}/instances",
    ],
)
def test_a_study_or_series_in_the_path_that_the_hospital_lacks_is_404(
    live_server: Any, outsider: Any, reader: Any, archive: Archive, path: str
) -> None:
    from carina.dicomweb.tests.conftest import token_for

    url = f"{live_server.url}/dicomweb/" + path.format(
        A=archive.study["A"], B=archive.study["B"], C=archive.study["C"],
        A1=archive.series["A1"], A2=archive.series["A2"],
    )  # fmt: skip
    # The outsider has a copy of study A (series A1 only); the reader has everything but
    # the unknown UIDs and the series of another study.
    user = "outsider" if "{B}" in path or "{A2}" in path else "reader"
    response = requests.get(
        url, headers={"Authorization": f"Bearer {token_for(live_server.url, user)}"}, timeout=30
    )
    assert response.status_code == 404
    assert "error" in response.json()


# --- audit -----------------------------------------------------------------------------


def test_each_search_leaves_one_audit_event(
    http: requests.Session, live_server: Any, archive: Archive, hospital: Hospital
) -> None:
    before = AuditEvent.unscoped.filter(action=Action.WEB_QUERY).count()
    response = http.get(
        f"{live_server.url}/dicomweb/studies?PatientName={quote('Müller*')}&00100020=PAT002",
        timeout=30,
    )
    assert len(response.json()) == 1
    series = http.get(f"{live_server.url}/dicomweb/studies/{archive.study['A']}/series", timeout=30)
    assert len(series.json()) == 2
    bad = http.get(f"{live_server.url}/dicomweb/studies?StudyDate=2026-13-45", timeout=30)
    assert bad.status_code == 400
    events = list(AuditEvent.unscoped.filter(action=Action.WEB_QUERY).order_by("id"))[before:]
    assert len(events) == 3
    studies, of_study, refused = events
    assert studies.hospital == hospital
    assert studies.actor == "reader"
    assert studies.object_type == "study"
    assert studies.count == 1
    assert studies.outcome == Outcome.SUCCESS
    assert studies.patient_id == "PAT002"
    assert "PatientName=Müller*" in studies.detail
    assert studies.source_ip == "127.0.0.1"
    assert of_study.object_type == "series"
    assert of_study.object_uid == archive.study["A"]
    assert of_study.count == 2
    assert refused.outcome == Outcome.FAILURE
    assert "StudyDate" in refused.detail


# --- at the database -------------------------------------------------------------------


@pytest.fixture
def signed_in(client: Client, reader: Any) -> Client:
    """Django's in-process client with the reader's session (to watch the SQL)."""
    client.force_login(reader)
    return client


def _get_all(client: Client, url: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The results of a search and the SQL it ran (consuming the stream inside)."""
    import json

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        assert response.status_code == 200
        assert response.streaming
        body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return json.loads(body), [q["sql"] for q in queries.captured_queries]


def test_the_page_is_cut_in_sql(signed_in: Client, hospital: Hospital) -> None:
    builder = ArchiveBuilder(hospital)
    for day in range(1, 6):
        builder.study(patient_id=f"P{day}", study_date=None, accession=f"A{day}")
    results, sql = _get_all(signed_in, "/dicomweb/studies?limit=2&offset=1")
    assert len(results) == 2
    select = next(s for s in sql if "archive_study" in s and "LIMIT" in s)
    assert "LIMIT 2" in select and "OFFSET 1" in select


def test_the_number_of_queries_does_not_grow_with_the_results(
    signed_in: Client, hospital: Hospital
) -> None:
    """More than one chunk of rows (500) costs no more queries than three rows, but for
    SOPClassesInStudy, which costs one per chunk (docs/query.md)."""
    builder = ArchiveBuilder(hospital)
    for number in range(3):
        builder.study(patient_id=f"P{number}", series=(SeriesPlan(instances=2),))
    urls = ("/dicomweb/studies?includefield=all", "/dicomweb/series", "/dicomweb/instances")
    few = [_get_all(signed_in, url) for url in urls]
    with transaction.atomic():
        for number in range(3, 603):
            builder.study(patient_id=f"P{number}", series=(SeriesPlan(instances=1),))
    many = [_get_all(signed_in, url) for url in urls]
    assert [len(results) for results, _ in few] == [3, 3, 6]
    assert [len(results) for results, _ in many] == [603, 603, 606]
    (_, few_studies), (_, few_series), (_, few_instances) = few
    (_, many_studies), (_, many_series), (_, many_instances) = many
    assert len(many_studies) == len(few_studies) + 1
    assert len(many_series) == len(few_series)
    assert len(many_instances) == len(few_instances)
