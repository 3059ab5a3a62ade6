"""C-FIND SCP driven by DCMTK's findscu and by pynetdicom: every level of the Patient Root and
Study Root models, the matching rules, counts, character sets, C-CANCEL, bad identifiers,
permissions and hospital isolation. Responses are read back from the files findscu writes
(``-X -od``) and compared with what the archive holds."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.dimse_primitives import C_FIND

from carina.archive.ingest import Origin, ingest
from carina.archive.models import Source
from carina.archive.query import to_dataset
from carina.archive.query.tests.conftest import ArchiveBuilder
from carina.core.testing import make_ct_slice, shipped_file
from carina.dimse import scu
from carina.dimse.actions import NodeOptions, do_add_node
from carina.dimse.conformance import PATIENT_ROOT_FIND, STUDY_ROOT_FIND
from carina.dimse.listener import Listener
from carina.dimse.tests.conftest import HOST, SCU_AE, scu_args
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)

CT = "1.2.840.10008.5.1.4.1.1.2"


@dataclass
class Archive:
    """What the ``archive`` fixture stored, by name."""

    study: dict[str, str]
    series: dict[str, str]
    sops: dict[str, list[str]]


def _store(hospital: Hospital, folder: Path, ds: Dataset) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, str(path)))


@pytest.fixture
def archive(hospital: Hospital, other_hospital: Hospital, tmp_path: Path) -> Archive:
    """Three patients in the default hospital, and in the other hospital a copy of study A's
    first slice (same UIDs) and a study of its own. TESTSCU is a node of both hospitals."""
    do_add_node(hospital, "scu", ae_title=SCU_AE, host=HOST, port=104)
    do_add_node(other_hospital, "scu", ae_title=SCU_AE, host=HOST, port=104)
    plan = {
        # study: (patient id, name, date, time, accession, description, [(series, modality, n)])
        "A": (
            "P1",
            "TEST^PATIENT",
            "20261120",
            "101500",
            "ACC001",
            "CT CHEST",
            [("A1", "CT", 2), ("A2", "MR", 1)],
        ),
        "B": ("P2", "TEST^OTHER", "20250105", "080000", "ACC_002", "100% DOSE", [("B1", "CT", 1)]),
        "C": ("P3", "SMITH^JOHN", "20260301", "143000", "ACCX002", "100X DOSE", [("C1", "CR", 1)]),
    }
    made = Archive({}, {}, {})
    first_slice: Dataset | None = None
    for study, (pid, name, date, time_, accession, description, series_plan) in plan.items():
        made.study[study] = generate_uid()
        for number, (series, modality, count) in enumerate(series_plan, start=1):
            made.series[series] = generate_uid()
            made.sops[series] = []
            for index in range(count):
                ds = make_ct_slice(
                    study_uid=made.study[study],
                    series_uid=made.series[series],
                    index=index,
                    size=8,
                    patient_id=pid,
                    patient_name=name,
                    modality=modality,
                    extra={
                        "StudyDate": date,
                        "StudyTime": time_,
                        "AccessionNumber": accession,
                        "StudyDescription": description,
                        "SeriesNumber": number,
                        "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
                    },
                )
                made.sops[series].append(str(ds.SOPInstanceUID))
                _store(hospital, tmp_path / "in", ds)
                first_slice = first_slice or ds
    assert first_slice is not None
    _store(other_hospital, tmp_path / "other", first_slice)
    own = make_ct_slice(
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        index=0,
        size=8,
        patient_id="P9",
        patient_name="TEST^ELSEWHERE",
    )
    made.study["D"] = str(own.StudyInstanceUID)
    _store(other_hospital, tmp_path / "other", own)
    return made


def findscu(
    port: int,
    model: str,
    keys: list[str],
    tmp_path: Path,
    *args: str,
    called: str = "CARINA",
    calling: str = SCU_AE,
    query_files: tuple[Path, ...] = (),
) -> tuple[list[Dataset], str]:
    """Run DCMTK findscu (``model``: ``-P`` or ``-S``) and read the responses it wrote."""
    out = Path(tmp_path) / f"rsp-{time.monotonic_ns()}"
    out.mkdir()
    key_args = [arg for key in keys for arg in ("-k", key)]
    # findscu -v prints the identifiers in their own character set: read it leniently.
    result = subprocess.run(
        ["/usr/bin/findscu", "-v", model, "-X", "-od", str(out), *args,
         *scu_args(port, called, calling), *map(str, query_files), *key_args],
        capture_output=True, encoding="utf-8", errors="replace", timeout=120, check=False,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    return [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))], log


def final_status(log: str) -> str:
    """What findscu says about the final response: ``Success``, ``Cancel``, ``Error: …``."""
    for line in log.splitlines():
        if "Received Final Find Response" in line:
            return line.split("(", 1)[1].rstrip(")")
    raise AssertionError(f"no final response in:\n{log}")


def values(answers: list[Dataset], keyword: str) -> list[Any]:
    return [a.get(keyword) for a in answers]


# --- Study Root ------------------------------------------------------------------------


def test_study_root_study_level_with_a_name_wild_card_returns_counts_and_modalities(
    listener: Listener, archive: Archive, tmp_path: Path
) -> None:
    answers, log = findscu(
        listener.port,
        "-S",
        [
            "QueryRetrieveLevel=STUDY",
            "PatientName=TEST^*",
            "PatientID",
            "StudyInstanceUID",
            "StudyDate",
            "AccessionNumber",
            "ModalitiesInStudy",
            "NumberOfStudyRelatedSeries",
            "NumberOfStudyRelatedInstances",
            "RetrieveAETitle",
        ],
        tmp_path,
    )
    assert final_status(log) == "Success"
    assert "Pending: WarningUnsupportedOptionalKeys" not in log
    # Newest study first; the other hospital's TEST^ELSEWHERE is not there.
    assert values(answers, "StudyInstanceUID") == [archive.study["A"], archive.study["B"]]
    first, second = answers
    assert first.QueryRetrieveLevel == "STUDY"
    assert str(first.PatientName) == "TEST^PATIENT"
    assert first.PatientID == "P1"
    assert first.StudyDate == "20261120"
    assert first.AccessionNumber == "ACC001"
    assert list(first.ModalitiesInStudy) == ["CT", "MR"]
    assert first.NumberOfStudyRelatedSeries == 2
    assert first.NumberOfStudyRelatedInstances == 3
    assert first.RetrieveAETitle == "CARINA"
    assert second.ModalitiesInStudy == "CT"
    assert second.NumberOfStudyRelatedInstances == 1


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("PatientName=*", ["A", "C", "B"]),
        ("PatientName=test", ["A", "B"]),
        ("PatientName=SMI?H", ["C"]),
        ("PatientName=*^JOHN", ["C"]),
        ("StudyDescription=1?0? DOSE", ["C", "B"]),
        ("StudyDescription=100%*", ["B"]),
        ("StudyDescription=100% DOSE", ["B"]),
        ("AccessionNumber=ACC_002", ["B"]),
        ("AccessionNumber=ACC_*", ["B"]),
        ("AccessionNumber=ACC?002", ["C", "B"]),
        ("AccessionNumber=acc001", []),
        ("StudyDate=20260101-20261231", ["A", "C"]),
        ("StudyDate=-20251231", ["B"]),
        ("StudyDate=20260301-", ["A", "C"]),
        ("StudyDate=20250105", ["B"]),
        ("StudyTime=0700-1100", ["A", "B"]),
        ("ModalitiesInStudy=MR", ["A"]),
        ("ModalitiesInStudy=CT", ["A", "B"]),
        ("ModalitiesInStudy=CR\\MR", ["A", "C"]),
    ],
)
def test_study_level_matching_rules(
    listener: Listener, archive: Archive, tmp_path: Path, key: str, expected: list[str]
) -> None:
    answers, log = findscu(
        listener.port, "-S", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", key], tmp_path
    )
    assert final_status(log) == "Success"
    assert values(answers, "StudyInstanceUID") == [archive.study[s] for s in expected]


def test_a_list_of_uids_at_series_and_image_level(
    listener: Listener, archive: Archive, tmp_path: Path
) -> None:
    a = archive.study["A"]
    series, _ = findscu(
        listener.port,
        "-S",
        [
            "QueryRetrieveLevel=SERIES",
            f"StudyInstanceUID={a}",
            f"SeriesInstanceUID={archive.series['A2']}\\{archive.series['A1']}\\1.2.3.4",
            "Modality",
            "SeriesNumber",
            "NumberOfSeriesRelatedInstances",
        ],
        tmp_path,
    )
    assert [(s.SeriesInstanceUID, s.Modality, s.SeriesNumber) for s in series] == [
        (archive.series["A1"], "CT", 1),
        (archive.series["A2"], "MR", 2),
    ]
    assert values(series, "NumberOfSeriesRelatedInstances") == [2, 1]
    first, second = archive.sops["A1"]
    images, log = findscu(
        listener.port,
        "-S",
        [
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={a}",
            f"SeriesInstanceUID={archive.series['A1']}",
            f"SOPInstanceUID={second}\\{first}",
            "SOPClassUID",
            "InstanceNumber",
            "ImageType",
            "Rows",
        ],
        tmp_path,
    )
    assert final_status(log) == "Success"
    assert values(images, "SOPInstanceUID") == [first, second]
    assert values(images, "InstanceNumber") == [1, 2]
    assert values(images, "SOPClassUID") == [CT, CT]
    assert list(images[0].ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]  # from the metadata
    assert images[0].Rows == 8


# --- Patient Root ----------------------------------------------------------------------


def test_patient_root_at_every_level(listener: Listener, archive: Archive, tmp_path: Path) -> None:
    patients, log = findscu(
        listener.port,
        "-P",
        [
            "QueryRetrieveLevel=PATIENT",
            "PatientName=TEST*",
            "PatientID",
            "PatientBirthDate",
            "NumberOfPatientRelatedStudies",
            "NumberOfPatientRelatedSeries",
            "NumberOfPatientRelatedInstances",
        ],
        tmp_path,
    )
    assert final_status(log) == "Success"
    assert [
        (
            str(p.PatientName),
            p.PatientID,
            p.NumberOfPatientRelatedStudies,
            p.NumberOfPatientRelatedSeries,
            p.NumberOfPatientRelatedInstances,
        )
        for p in patients
    ] == [("TEST^OTHER", "P2", 1, 1, 1), ("TEST^PATIENT", "P1", 1, 2, 3)]
    assert patients[0].PatientBirthDate == "19700101"

    studies, _ = findscu(
        listener.port,
        "-P",
        ["QueryRetrieveLevel=STUDY", "PatientID=P1", "StudyInstanceUID", "StudyDescription"],
        tmp_path,
    )
    assert [(s.StudyInstanceUID, s.StudyDescription) for s in studies] == [
        (archive.study["A"], "CT CHEST")
    ]
    series, _ = findscu(
        listener.port,
        "-P",
        [
            "QueryRetrieveLevel=SERIES",
            "PatientID=P1",
            f"StudyInstanceUID={archive.study['A']}",
            "SeriesInstanceUID",
            "Modality=MR",
        ],
        tmp_path,
    )
    assert values(series, "SeriesInstanceUID") == [archive.series["A2"]]
    images, _ = findscu(
        listener.port,
        "-P",
        [
            "QueryRetrieveLevel=IMAGE",
            "PatientID=P1",
            f"StudyInstanceUID={archive.study['A']}",
            f"SeriesInstanceUID={archive.series['A2']}",
            "SOPInstanceUID",
            "InstanceNumber",
        ],
        tmp_path,
    )
    assert values(images, "SOPInstanceUID") == archive.sops["A2"]


@pytest.mark.parametrize(
    ("model", "keys", "status"),
    [
        (
            "-S",
            ["QueryRetrieveLevel=PATIENT", "PatientName=*"],
            "Error: DataSetDoesNotMatchSOPClass",
        ),
        ("-S", ["QueryRetrieveLevel=SERIES", "Modality=CT"], "Error: DataSetDoesNotMatchSOPClass"),
        (
            "-P",
            ["QueryRetrieveLevel=STUDY", "PatientName=TEST*"],
            "Error: DataSetDoesNotMatchSOPClass",
        ),
        ("-S", ["PatientName=TEST*"], "Error: DataSetDoesNotMatchSOPClass"),
        ("-S", ["QueryRetrieveLevel=STUDY", "StudyDate=20261301"], "Failed: UnableToProcess"),
        ("-S", ["QueryRetrieveLevel=STUDY", "StudyTime=1800-0800"], "Failed: UnableToProcess"),
    ],
)
def test_identifiers_that_break_the_rules_get_a_failure_status(
    listener: Listener,
    archive: Archive,
    tmp_path: Path,
    model: str,
    keys: list[str],
    status: str,
) -> None:
    answers, log = findscu(listener.port, model, keys, tmp_path)
    assert answers == []
    assert final_status(log) == status


def test_unsupported_optional_keys_give_pending_warnings_and_come_back_empty(
    listener: Listener, archive: Archive, tmp_path: Path
) -> None:
    answers, log = findscu(
        listener.port,
        "-S",
        ["QueryRetrieveLevel=STUDY", "PatientID=P3", "PatientAge", "InstitutionName=X*"],
        tmp_path,
    )
    assert "Pending: WarningUnsupportedOptionalKeys" in log
    [answer] = answers
    assert answer.PatientID == "P3"
    assert answer["PatientAge"].is_empty
    assert answer["InstitutionName"].is_empty


def test_findscu_proposing_deflate_is_answered(
    listener: Listener, archive: Archive, tmp_path: Path
) -> None:
    answers, log = findscu(
        listener.port,
        "-S",
        ["QueryRetrieveLevel=STUDY", "PatientID=P2", "StudyInstanceUID"],
        tmp_path,
        "-xd",
        "-d",  # prints the negotiation and every DIMSE status
    )
    assert "Accepted Transfer Syntax: =DeflatedLittleEndianExplicit" in log
    assert "0x0000: Success" in log
    assert values(answers, "StudyInstanceUID") == [archive.study["B"]]


# --- character sets --------------------------------------------------------------------


def test_names_in_other_character_sets_are_found_and_answered_in_utf8(
    listener: Listener, hospital: Hospital, tmp_path: Path
) -> None:
    do_add_node(hospital, "scu", ae_title=SCU_AE, host=HOST, port=104)
    for name in ("chrH31.dcm", "chrFren.dcm"):
        ingest(shipped_file(name), hospital=hospital, origin=Origin(Source.IMPORT, name))
    answers, _ = findscu(
        listener.port,
        "-S",
        ["QueryRetrieveLevel=STUDY", "PatientName=yamada", "PatientID"],
        tmp_path,
    )
    [japanese] = answers
    assert japanese.SpecificCharacterSet == "ISO_IR 192"
    assert japanese.PatientID == "H31EXAMPLE"
    assert str(japanese.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert japanese.PatientName.ideographic == "山田^太郎"

    # A query written in ISO 8859-1 (Latin-1) by the requestor, sent as a query file.
    query = Dataset()
    query.SpecificCharacterSet = "ISO_IR 100"
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "Buc^Jérôme"
    query.PatientID = ""
    query_file = tmp_path / "latin1-query.dcm"
    query.save_as(query_file, implicit_vr=False, little_endian=True)
    assert "Jérôme".encode("latin-1") in query_file.read_bytes()
    answers, _ = findscu(listener.port, "-S", [], tmp_path, query_files=(query_file,))
    [french] = answers
    assert french.PatientID == "SCSFREN"
    assert french.SpecificCharacterSet == "ISO_IR 192"
    assert str(french.PatientName) == "Buc^Jérôme"
    # The ideographic group alone, in UTF-8, as a pynetdicom requestor sends it.
    result = scu.find(
        scu.Target(HOST, listener.port, "CARINA"),
        "STUDY",
        {"SpecificCharacterSet": "ISO_IR 192", "PatientName": "=山田*", "PatientID": ""},
        calling_ae=SCU_AE,
    )
    assert [m.PatientID for m in result.matches] == ["H31EXAMPLE"]


# --- C-CANCEL --------------------------------------------------------------------------


@pytest.fixture
def many_studies(hospital: Hospital) -> list[str]:
    do_add_node(hospital, "scu", ae_title=SCU_AE, host=HOST, port=104)
    builder = ArchiveBuilder(hospital)
    return [builder.study(patient_id=f"P{i}").study_instance_uid for i in range(30)]


@pytest.fixture
def slow_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each answer takes 50 ms to build, so that a C-CANCEL arrives while matches remain."""

    def slow(*args: Any, **kwargs: Any) -> Dataset:
        time.sleep(0.05)
        return to_dataset(*args, **kwargs)

    monkeypatch.setattr("carina.dimse.find.to_dataset", slow)


def test_c_cancel_from_pynetdicom_stops_the_matches(
    listener: Listener, many_studies: list[str], slow_answers: None
) -> None:
    ae = AE(ae_title=SCU_AE)
    ae.add_requested_context(STUDY_ROOT_FIND)
    assoc = ae.associate(HOST, listener.port, ae_title="CARINA")
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    statuses = []
    try:
        for status, _ in assoc.send_c_find(query, STUDY_ROOT_FIND):
            statuses.append(int(status.Status))
            if len(statuses) == 2:
                assoc.send_c_cancel(1, query_model=STUDY_ROOT_FIND)
    finally:
        assoc.release()
    assert statuses[-1] == 0xFE00
    assert 2 <= statuses.count(0xFF00) < 20  # far fewer than the 30 studies


def test_findscu_cancel_and_the_scu_library_cancel(
    listener: Listener, many_studies: list[str], slow_answers: None, tmp_path: Path
) -> None:
    answers, log = findscu(
        listener.port,
        "-S",
        ["QueryRetrieveLevel=STUDY", "StudyInstanceUID"],
        tmp_path,
        "--cancel",
        "3",
    )
    assert final_status(log) == "Cancel: MatchingTerminatedDueToCancelRequest"
    assert 3 <= len(answers) < 20
    seen: list[str] = []

    def enough(match: Dataset) -> bool:
        seen.append(match.StudyInstanceUID)
        return len(seen) < 2

    result = scu.find(
        scu.Target(HOST, listener.port, "CARINA"),
        "STUDY",
        {"StudyInstanceUID": ""},
        on_result=enough,
        calling_ae=SCU_AE,
    )
    assert result.cancelled
    assert 2 <= len(result.matches) < 20
    assert set(seen) <= set(many_studies)


# --- garbage, permissions, isolation ---------------------------------------------------


@dataclass(frozen=True)
class FinalResponse:
    status: int
    error_comment: str
    offending_element: tuple[int, ...]


def _raw_find(port: int, identifier: bytes) -> FinalResponse:
    """Send a C-FIND whose identifier is ``identifier``, bytes as they are; the final answer.

    The association's reactor is paused meanwhile, as pynetdicom's own ``send_c_find`` does,
    so that it does not take the responses off the queue."""
    ae = AE(ae_title=SCU_AE)
    ae.add_requested_context(STUDY_ROOT_FIND, "1.2.840.10008.1.2")
    assoc = ae.associate(HOST, port, ae_title="CARINA")
    assert assoc.is_established
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.001)
    try:
        request = C_FIND()
        request.MessageID = 7
        request.AffectedSOPClassUID = STUDY_ROOT_FIND
        request.Priority = 2
        request.Identifier = BytesIO(identifier)
        context_id = assoc.accepted_contexts[0].context_id
        assert context_id is not None
        assoc.dimse.send_msg(request, context_id)
        while True:
            _, response = assoc.dimse.get_msg(block=True)
            assert isinstance(response, C_FIND), "no answer"
            assert response.Status is not None
            status = int(response.Status)
            if status not in (0xFF00, 0xFF01):
                offending: Any = response.OffendingElement or []
                tags = offending if isinstance(offending, list | tuple) else [offending]
                return FinalResponse(
                    status, response.ErrorComment or "", tuple(int(t) for t in tags)
                )
    finally:
        assoc._reactor_checkpoint.set()
        assoc.release()


@pytest.mark.parametrize(
    ("identifier", "status", "comment"),
    [
        (b"\xff" * 37, None, ""),
        (b"\x08\x00\x52\x00\xff\x00\x00\x00STUDY", 0xC000, "truncated"),
        (b"garbage, not a data set at all!", None, ""),
        (b"\x10\x00\x10\x00\x02\x00\x00\x00X*", 0xA900, "QueryRetrieveLevel"),
        (
            b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY \x08\x00\x20\x00\x04\x00\x00\x00abcd",
            0xC001,
            "StudyDate",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:End of file reached before delimiter")
def test_garbage_identifiers_are_refused_and_the_listener_keeps_serving(
    listener: Listener,
    hospital: Hospital,
    identifier: bytes,
    status: int | None,
    comment: str,
) -> None:
    do_add_node(hospital, "scu", ae_title=SCU_AE, host=HOST, port=104)
    answer = _raw_find(listener.port, identifier)
    if status is not None:
        assert answer.status == status
    else:  # pydicom reads it as a data set without QueryRetrieveLevel, or not at all
        assert answer.status in (0xC000, 0xA900)
    assert comment in answer.error_comment
    assert len(answer.error_comment) <= 64
    if status == 0xA900:
        assert answer.offending_element == (0x00080052,)
    if status == 0xC001:
        assert answer.offending_element == (0x00080020,)
    assert scu.echo(HOST, listener.port, "CARINA", SCU_AE).ok


def test_an_unknown_caller_and_a_node_without_query_permission_are_refused(
    listener: Listener, archive: Archive, hospital: Hospital, tmp_path: Path
) -> None:
    target = scu.Target(HOST, listener.port, "CARINA")
    stranger = scu.find(target, "STUDY", {"StudyInstanceUID": ""}, calling_ae="STRANGER")
    assert stranger.status == 0x0124
    assert "may not query" in stranger.error_comment
    assert stranger.matches == []
    do_add_node(
        hospital,
        "viewer",
        ae_title="VIEWER",
        host=HOST,
        port=104,
        options=NodeOptions(may_query=False),
    )
    viewer = scu.find(target, "STUDY", {"StudyInstanceUID": ""}, calling_ae="VIEWER")
    assert viewer.status == 0x0124
    answers, log = findscu(
        listener.port, "-S", ["QueryRetrieveLevel=STUDY"], tmp_path, calling="VIEWER"
    )
    assert answers == []
    assert "0x124" in final_status(log)


def test_each_hospitals_ae_title_finds_only_its_own_objects(
    listener: Listener, archive: Archive, tmp_path: Path
) -> None:
    keys = [
        "QueryRetrieveLevel=STUDY",
        "PatientName=TEST*",
        "StudyInstanceUID",
        "NumberOfStudyRelatedInstances",
        "ModalitiesInStudy",
    ]
    ours, _ = findscu(listener.port, "-S", keys, tmp_path)
    theirs, _ = findscu(listener.port, "-S", keys, tmp_path, called="OTHERAE")
    assert values(ours, "StudyInstanceUID") == [archive.study["A"], archive.study["B"]]
    # Same date and time: the study stored last comes first.
    assert values(theirs, "StudyInstanceUID") == [archive.study["D"], archive.study["A"]]
    # The same study UID in both hospitals: each sees only its own instances and series.
    assert ours[0].NumberOfStudyRelatedInstances == 3
    assert theirs[1].NumberOfStudyRelatedInstances == 1
    assert theirs[1].ModalitiesInStudy == "CT"
    assert all(a.RetrieveAETitle == "OTHERAE" for a in theirs if "RetrieveAETitle" in a)
    images, _ = findscu(
        listener.port,
        "-S",
        [
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={archive.study['A']}",
            f"SeriesInstanceUID={archive.series['A2']}",
            "SOPInstanceUID",
        ],
        tmp_path,
        called="OTHERAE",
    )
    assert images == []
    patients, _ = findscu(
        listener.port,
        "-P",
        ["QueryRetrieveLevel=PATIENT", "PatientID=P3"],
        tmp_path,
        called="OTHERAE",
    )
    assert patients == []


# --- the SCU library -------------------------------------------------------------------


def test_scu_find_collects_matches_and_reports_progress(
    listener: Listener, archive: Archive
) -> None:
    seen: list[str] = []
    result = scu.find(
        scu.Target(HOST, listener.port, "CARINA"),
        "SERIES",
        {"StudyInstanceUID": archive.study["A"], "SeriesInstanceUID": "", "Modality": ""},
        on_result=lambda ds: seen.append(ds.Modality),
        calling_ae=SCU_AE,
    )
    assert result.ok and not result.warning
    assert seen == ["CT", "MR"]
    assert [m.SeriesInstanceUID for m in result.matches] == [
        archive.series["A1"],
        archive.series["A2"],
    ]
    patients = scu.find(
        scu.Target(HOST, listener.port, "CARINA"),
        "PATIENT",
        {"PatientID": "P*", "PatientName": "", "PatientAge": ""},
        model="patient",
        calling_ae=SCU_AE,
    )
    assert patients.ok and patients.warning
    assert [m.PatientID for m in patients.matches] == ["P3", "P2", "P1"]
    failed = scu.find(
        scu.Target(HOST, listener.port, "CARINA"),
        "SERIES",
        {"Modality": "CT"},
        calling_ae=SCU_AE,
    )
    assert failed.status == 0xA900
    assert failed.offending_element == (0x0020000D,)
    assert "StudyInstanceUID" in failed.error_comment
    with pytest.raises(scu.DimseError):
        scu.find(scu.Target(HOST, 1, "CARINA"), "STUDY", {}, timeout=2)


def test_patient_root_find_is_offered_next_to_study_root(listener: Listener) -> None:
    ae = AE(ae_title=SCU_AE)
    ae.add_requested_context(PATIENT_ROOT_FIND)
    ae.add_requested_context(STUDY_ROOT_FIND)
    assoc = ae.associate(HOST, listener.port, ae_title="CARINA")
    try:
        accepted = {cx.abstract_syntax for cx in assoc.accepted_contexts}
    finally:
        assoc.release()
    assert accepted == {PATIENT_ROOT_FIND, STUDY_ROOT_FIND}
