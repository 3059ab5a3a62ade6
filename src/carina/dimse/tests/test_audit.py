"""The audit trail of the DICOM listener, driven by DCMTK: one event per association, one per
study and association for C-STORE and retrieve (PS3.15 A.5.3.2), one per C-FIND request, one per
rejected association (docs/audit.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE

from carina.audit.models import Action, ActorKind, AuditEvent, ObjectType, Outcome
from carina.core.testing import write_series
from carina.dimse.actions import do_add_node
from carina.dimse.listener import Listener
from carina.dimse.tests.conftest import HOST, SCU_AE, dcmtk, scu_args, wait_idle
from carina.dimse.tests.retrieving import archive_files, archive_study
from carina.dimse.tests.test_find import findscu
from carina.dimse.tests.test_get import GETTER, getscu
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)


def events(hospital: Hospital, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.for_hospital(hospital).filter(action=action).order_by("id"))


def test_storescu_of_two_studies_leaves_one_association_and_one_event_per_study(
    listener: Listener, hospital: Hospital, other_hospital: Hospital, tmp_path: Path
) -> None:
    first = write_series(tmp_path / "a", 3, patient_id="PAT-A")
    second = write_series(tmp_path / "b", 2, patient_id="PAT-B")
    result = dcmtk("storescu", *scu_args(listener.port), *map(str, first + second))
    assert result.returncode == 0, result.stderr
    wait_idle(listener)

    (association,) = events(hospital, Action.ASSOCIATION)
    assert association.actor == SCU_AE
    assert association.actor_kind == ActorKind.DICOM_NODE
    assert association.source_ae == SCU_AE
    assert association.source_ip == HOST
    assert association.outcome == Outcome.SUCCESS
    assert association.count == 5
    assert "5 stored, 0 refused" in association.detail
    assert "released" in association.detail

    stores = {event.object_uid: event for event in events(hospital, Action.STORE)}
    assert len(stores) == 2
    for paths, patient_id in ((first, "PAT-A"), (second, "PAT-B")):
        study_uid = str(pydicom.dcmread(paths[0]).StudyInstanceUID)
        event = stores[study_uid]
        assert event.hospital_id == hospital.pk
        assert event.object_type == ObjectType.STUDY
        assert event.patient_id == patient_id
        assert event.count == len(paths)
        assert event.actor == SCU_AE
        assert event.outcome == Outcome.SUCCESS
    assert not AuditEvent.objects.for_hospital(other_hospital).exists()


def test_rejected_associations_are_recorded_with_their_reason(
    make_listener: Callable[..., Listener], hospital: Hospital
) -> None:
    listener = make_listener(max_associations=1)
    result = dcmtk("echoscu", *scu_args(listener.port, called="NOBODY"))
    assert result.returncode != 0
    wait_idle(listener)
    (rejected,) = AuditEvent.objects.all_hospitals().filter(
        action=Action.ASSOCIATION_REJECTED, hospital=None
    )
    assert rejected.actor == SCU_AE
    assert rejected.source_ip == HOST
    assert rejected.outcome == Outcome.FAILURE
    assert "NOBODY" in rejected.detail and "not one Carina answers to" in rejected.detail

    # The limit of simultaneous associations (pynetdicom rejects it, after Carina admitted).
    holder = AE("HOLDER")
    holder.add_requested_context("1.2.840.10008.1.1")
    assoc = holder.associate(HOST, listener.port, ae_title="CARINA")
    assert assoc.is_established
    try:
        assert dcmtk("echoscu", *scu_args(listener.port)).returncode != 0
    finally:
        assoc.release()
    wait_idle(listener)
    (limited,) = events(hospital, Action.ASSOCIATION_REJECTED)
    assert limited.actor == SCU_AE
    assert "limit of 1 simultaneous association" in limited.detail
    # Only the association that was served is recorded as one.
    (served,) = events(hospital, Action.ASSOCIATION)
    assert served.actor == "HOLDER"
    assert events(hospital, Action.ECHO) == []


def test_echo_is_recorded_once_per_association(listener: Listener, hospital: Hospital) -> None:
    assert dcmtk("echoscu", "--repeat", "3", *scu_args(listener.port)).returncode == 0
    wait_idle(listener)
    (echo,) = events(hospital, Action.ECHO)
    assert echo.actor == SCU_AE
    assert "3 C-ECHO" in echo.detail
    (association,) = events(hospital, Action.ASSOCIATION)
    assert "3 echoes" in association.detail


def test_findscu_leaves_one_query_event_with_its_keys_and_match_count(
    listener: Listener, hospital: Hospital, tmp_path: Path
) -> None:
    do_add_node(hospital, "scu", ae_title=SCU_AE, host=HOST, port=104)
    archive_files(hospital, write_series(tmp_path / "a", 2, patient_id="FIND-1"))
    archive_files(hospital, write_series(tmp_path / "b", 1, patient_id="FIND-2"))
    answers, _ = findscu(
        listener.port,
        "-S",
        ["QueryRetrieveLevel=STUDY", "PatientID=FIND-1", "StudyInstanceUID"],
        tmp_path,
    )
    assert len(answers) == 1
    wait_idle(listener)
    (query,) = events(hospital, Action.QUERY)
    assert query.count == 1
    assert query.patient_id == "FIND-1"
    assert query.object_type == ObjectType.STUDY
    assert query.outcome == Outcome.SUCCESS
    assert "PatientID=FIND-1" in query.detail
    assert "STUDY level" in query.detail
    (association,) = events(hospital, Action.ASSOCIATION)
    assert "1 queries" in association.detail


def test_getscu_leaves_one_retrieve_event_per_study_with_the_count(
    listener: Listener, hospital: Hospital, tmp_path: Path
) -> None:
    do_add_node(hospital, "getter", ae_title=GETTER, host=HOST, port=104)
    study = archive_study(hospital, tmp_path / "in", patient_id="GET-1")
    code, log, received = getscu(
        listener, tmp_path / "out", "STUDY", f"StudyInstanceUID={study.study_uid}"
    )
    assert code == 0, log
    assert len(received) == 7
    wait_idle(listener)
    (retrieve,) = events(hospital, Action.RETRIEVE)
    assert retrieve.object_uid == study.study_uid
    assert retrieve.object_type == ObjectType.STUDY
    assert retrieve.patient_id == "GET-1"
    assert retrieve.count == 7
    assert retrieve.destination_ae == GETTER
    assert retrieve.actor == GETTER
    assert retrieve.outcome == Outcome.SUCCESS
    (association,) = events(hospital, Action.ASSOCIATION)
    assert association.count == 7
    assert "7 sent" in association.detail


def test_refused_retrieve_is_recorded(
    listener: Listener, hospital: Hospital, tmp_path: Path
) -> None:
    """An unknown caller (accepted by the default hospital's policy) may not retrieve."""
    study = archive_study(hospital, tmp_path / "in")
    _, _, received = getscu(
        listener, tmp_path / "out", "STUDY", f"StudyInstanceUID={study.study_uid}"
    )
    assert received == {}
    wait_idle(listener)
    (refused,) = events(hospital, Action.RETRIEVE)
    assert refused.outcome == Outcome.FAILURE
    assert "0x0124" in refused.detail
