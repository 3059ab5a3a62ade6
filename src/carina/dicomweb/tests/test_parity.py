"""One query engine, two protocols: the same searches through C-FIND (pynetdicom against
Carina's DICOM listener, Study Root) and through QIDO-RS (dicomweb-client against the web
server) find the same entities, in the same order (DESIGN.md, "One query engine")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE

from carina.core.testing import make_ct_slice
from carina.dimse.actions import do_add_node
from carina.dimse.conformance import STUDY_ROOT_FIND
from carina.dimse.listener import Listener, ListenerConfig
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "127.0.0.1"
SCU_AE = "PARITYSCU"
UNIQUE = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}

# study: (PatientID, PatientName, StudyDate, AccessionNumber, [(Modality, instances)])
PLAN = {
    "A": ("P1", "DOE^JANE", "20240315", "ACC001", [("CT", 2), ("MR", 1)]),
    "B": ("P2", "Doe-Smith^John", "20230101", "ACC_002", [("CR", 1)]),
    "C": ("P3", "SMITH^JOHN", "20250601", "ACCX002", [("CT", 1)]),
    "D": ("P4", "Müller^Jörg", "20220202", "ACC004", [("MR", 2)]),
}


@pytest.fixture
def listener(hospital: Hospital, tmp_path: Path) -> Iterator[Listener]:
    """Carina's DICOM listener on a free port of 127.0.0.1, the SCU a known node."""
    do_add_node(hospital, "parity", ae_title=SCU_AE, host=HOST, port=104)
    config = ListenerConfig(
        host=HOST,
        port=0,
        ae_title="CARINA",
        acse_timeout=5,
        dimse_timeout=10,
        network_timeout=10,
        grace_period=5,
        spool_dir=tmp_path / "spool",
    )
    started = Listener(config).start()
    yield started
    started.stop(grace_period=5)


@pytest.fixture
def uids(store: Any, other_hospital: Hospital) -> dict[str, str]:
    """The studies of PLAN in the default hospital, and a lookalike in the other one (which
    neither protocol may find). Returns the study and series UIDs by name (A, A1, …)."""
    made: dict[str, str] = {}
    for study, (pid, name, date, accession, series_plan) in PLAN.items():
        made[study] = generate_uid()
        for number, (modality, count) in enumerate(series_plan, start=1):
            series = made[f"{study}{number}"] = generate_uid()
            store(
                [
                    make_ct_slice(
                        study_uid=made[study], series_uid=series, index=index, size=8,
                        patient_id=pid, patient_name=name, modality=modality,
                        extra={"StudyDate": date, "AccessionNumber": accession,
                               "SeriesNumber": number},
                    )
                    for index in range(count)
                ]
            )  # fmt: skip
    lookalike = make_ct_slice(
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        index=0,
        size=8,
        patient_name="DOE^JANET",
        extra={"StudyDate": "20240316", "AccessionNumber": "ACC_003"},
    )
    store([lookalike], hospital=other_hospital)
    return made


def c_find(listener: Listener, level: str, keys: dict[str, str]) -> list[str]:
    """The unique keys of the C-FIND answers, in the order they came."""
    ae = AE(ae_title=SCU_AE)
    ae.add_requested_context(STUDY_ROOT_FIND)
    assoc = ae.associate(HOST, listener.port, ae_title="CARINA")
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    if UNIQUE[level] not in keys:
        setattr(query, UNIQUE[level], "")
    found: list[str] = []
    try:
        for status, identifier in assoc.send_c_find(query, STUDY_ROOT_FIND):
            assert status is not None and status.Status in (0xFF00, 0xFF01, 0x0000), status
            if status.Status in (0xFF00, 0xFF01):
                assert identifier is not None
                found.append(str(identifier.get(UNIQUE[level])))
    finally:
        assoc.release()
    return found


def qido(dicomweb: DICOMwebClient, level: str, keys: dict[str, str]) -> list[str]:
    """The unique keys of the QIDO-RS results, in order; UID lists sent comma-separated
    and code strings too, as web clients (OHIF) send them."""
    filters = {k: v.replace("\\", ",") for k, v in keys.items()}
    tag = {"STUDY": "0020000D", "SERIES": "0020000E", "IMAGE": "00080018"}[level]
    if level == "STUDY":
        results = dicomweb.search_for_studies(search_filters=filters)
    elif level == "SERIES":
        study = filters.pop("StudyInstanceUID")
        results = dicomweb.search_for_series(study_instance_uid=study, search_filters=filters)
    else:
        study, series = filters.pop("StudyInstanceUID"), filters.pop("SeriesInstanceUID")
        results = dicomweb.search_for_instances(
            study_instance_uid=study, series_instance_uid=series, search_filters=filters
        )
    return [str(r[tag]["Value"][0]) for r in results]


CASES: list[tuple[str, dict[str, str], list[str]]] = [
    # (level, keys with {name} placeholders, expected names)
    ("STUDY", {"PatientName": "DOE*"}, ["A", "B"]),
    ("STUDY", {"PatientName": "doe*"}, ["A", "B"]),
    ("STUDY", {"PatientName": "*^JOHN"}, ["C", "B"]),
    ("STUDY", {"PatientName": "m?ller^*"}, ["D"]),
    ("STUDY", {"StudyDate": "20230101-20241231"}, ["A", "B"]),
    ("STUDY", {"StudyDate": "20240101-"}, ["C", "A"]),
    ("STUDY", {"StudyDate": "-20230101"}, ["B", "D"]),
    ("STUDY", {"StudyInstanceUID": "{A}\\{D}\\1.2.3.4"}, ["A", "D"]),
    ("STUDY", {"ModalitiesInStudy": "CT"}, ["C", "A"]),
    ("STUDY", {"ModalitiesInStudy": "CR\\MR"}, ["A", "B", "D"]),
    ("STUDY", {"AccessionNumber": "ACC_*"}, ["B"]),
    ("STUDY", {"AccessionNumber": "ACC?002"}, ["C", "B"]),
    ("STUDY", {"PatientName": "DOE*", "StudyDate": "2024"}, ["A"]),
    ("SERIES", {"StudyInstanceUID": "{A}", "Modality": "MR"}, ["A2"]),
    ("SERIES", {"StudyInstanceUID": "{A}", "SeriesInstanceUID": "{A2}\\{A1}"}, ["A1", "A2"]),
    ("IMAGE", {"StudyInstanceUID": "{D}", "SeriesInstanceUID": "{D1}"}, ["D1"]),
]


@pytest.mark.parametrize(("level", "keys", "expected"), CASES)
def test_c_find_and_qido_rs_find_the_same(
    listener: Listener,
    dicomweb: DICOMwebClient,
    uids: dict[str, str],
    level: str,
    keys: dict[str, str],
    expected: list[str],
) -> None:
    keys = {k: v.format(**uids) for k, v in keys.items()}
    over_dimse = c_find(listener, level, keys)
    over_web = qido(dicomweb, level, keys)
    assert over_web == over_dimse
    if level == "IMAGE":
        assert len(over_web) == 2  # both instances of series D1
    else:
        assert over_web == [uids[name] for name in expected]
