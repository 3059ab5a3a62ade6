"""DELETE of studies, series and instances under /dicomweb: who may, what goes (rows and
blobs), what the study's counts say afterwards, and what the audit trail records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from carina.accounts.actions import do_create_admin
from carina.archive.ingest.pipeline import IngestResult
from carina.archive.models import Instance, Patient, Series, Study
from carina.archive.storage import get_storage
from carina.audit.models import Action, AuditEvent, Outcome
from carina.core.testing import write_series
from carina.dicomweb.tests.conftest import PASSWORD, Store, client_for, token_for
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)

CtSeries = Callable[..., list[IngestResult]]


@pytest.fixture
def admin(live_server: Any, hospital: Hospital) -> requests.Session:
    """A hospital administrator of the default hospital, with a Bearer token."""
    do_create_admin("hadmin", PASSWORD, hospital)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_for(live_server.url, 'hadmin')}"
    return session


@pytest.fixture
def study(tmp_path: Path, store: Store) -> list[IngestResult]:
    """A stored study: a CT series of 3 slices and a PT series of 2."""
    uid = generate_uid()
    return store(
        [
            *write_series(tmp_path / "ct", 3, study_uid=uid, modality="CT"),
            *write_series(tmp_path / "pt", 2, study_uid=uid, modality="PT"),
        ]
    )


def url(base: str, *uids: str) -> str:
    levels = ("studies", "series", "instances")
    path = "/".join(f"{level}/{uid}" for level, uid in zip(levels, uids, strict=False))
    return f"{base}/dicomweb/{path}"


def delete_events(hospital: Hospital) -> list[AuditEvent]:
    return list(AuditEvent.objects.for_hospital(hospital).filter(action=Action.WEB_DELETE))


def blobs() -> set[str]:
    return set(get_storage().iter_keys())


def test_a_radiologist_may_not_delete(
    http: requests.Session, live_server: Any, study: list[IngestResult], hospital: Hospital
) -> None:
    response = http.delete(url(live_server.url, study[0].study_instance_uid), timeout=30)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    assert "only a hospital administrator may" in response.json()["error"]
    assert Instance.objects.for_hospital(hospital).count() == 5
    assert len(blobs()) == 5
    [event] = delete_events(hospital)
    assert (event.actor, event.outcome) == ("reader", Outcome.FAILURE)


def test_a_hospital_administrator_deletes_a_study(
    admin: requests.Session, live_server: Any, study: list[IngestResult], hospital: Hospital
) -> None:
    study_uid = study[0].study_instance_uid
    response = admin.delete(url(live_server.url, study_uid), timeout=30)
    assert response.status_code == 204
    assert response.content == b""
    assert not Study.objects.for_hospital(hospital).exists()
    assert not Series.objects.for_hospital(hospital).exists()
    assert not Instance.objects.for_hospital(hospital).exists()
    assert not Patient.objects.for_hospital(hospital).exists()
    assert blobs() == set()
    again = admin.delete(url(live_server.url, study_uid), timeout=30)
    assert again.status_code == 404
    assert study_uid in again.json()["error"]
    [event] = delete_events(hospital)
    assert (event.actor, event.outcome, event.count) == ("hadmin", Outcome.SUCCESS, 5)
    assert (event.object_type, event.object_uid, event.patient_id) == ("study", study_uid, "PID001")
    assert "5 instance(s) in 2 series" in event.detail
    assert "the patient, left without studies, was removed" in event.detail


def test_deleting_a_series_updates_the_study(
    admin: requests.Session, live_server: Any, study: list[IngestResult], hospital: Hospital
) -> None:
    pet = study[3]
    kept = {r.blob_key for r in study[:3]}
    response = admin.delete(
        url(live_server.url, pet.study_instance_uid, pet.series_instance_uid), timeout=30
    )
    assert response.status_code == 204
    row = Study.objects.for_hospital(hospital).get()
    assert row.modalities_in_study == "CT"
    assert (row.number_of_series, row.number_of_instances) == (1, 3)
    assert row.size_bytes == sum(r.size_bytes for r in study[:3])
    assert blobs() == kept
    assert (
        not Series.objects.for_hospital(hospital)
        .filter(series_instance_uid=pet.series_instance_uid)
        .exists()
    )
    [event] = delete_events(hospital)
    assert (event.object_type, event.object_uid, event.count) == (
        "series",
        pet.series_instance_uid,
        2,
    )


def test_deleting_instances_down_to_nothing(
    admin: requests.Session, live_server: Any, ct_series: CtSeries, hospital: Hospital
) -> None:
    first, second = ct_series(2)
    one = url(
        live_server.url,
        first.study_instance_uid,
        first.series_instance_uid,
        first.sop_instance_uid,
    )
    assert admin.delete(one, timeout=30).status_code == 204
    row = Study.objects.for_hospital(hospital).get()
    assert (row.number_of_series, row.number_of_instances) == (1, 1)
    assert row.size_bytes == second.size_bytes
    assert blobs() == {second.blob_key}
    assert admin.delete(one, timeout=30).status_code == 404
    last = url(
        live_server.url,
        second.study_instance_uid,
        second.series_instance_uid,
        second.sop_instance_uid,
    )
    assert admin.delete(last, timeout=30).status_code == 204
    assert not Study.objects.for_hospital(hospital).exists()
    assert not Patient.objects.for_hospital(hospital).exists()
    assert blobs() == set()


def test_another_hospitals_objects_are_not_found(
    live_server: Any,
    study: list[IngestResult],
    hospital: Hospital,
    other_hospital: Hospital,
) -> None:
    do_create_admin("otheradmin", PASSWORD, other_hospital)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_for(live_server.url, 'otheradmin')}"
    target = study[0]
    for uids in (
        (target.study_instance_uid,),
        (target.study_instance_uid, target.series_instance_uid),
        (target.study_instance_uid, target.series_instance_uid, target.sop_instance_uid),
    ):
        response = session.delete(url(live_server.url, *uids), timeout=30)
        assert response.status_code == 404, uids
    session.close()
    assert Instance.objects.for_hospital(hospital).count() == 5
    assert len(blobs()) == 5


def test_a_series_must_belong_to_the_study_in_the_path(
    admin: requests.Session, live_server: Any, study: list[IngestResult], ct_series: CtSeries
) -> None:
    [elsewhere] = ct_series(1)
    response = admin.delete(
        url(live_server.url, study[0].study_instance_uid, elsewhere.series_instance_uid),
        timeout=30,
    )
    assert response.status_code == 404
    assert len(blobs()) == 6


def test_dicomweb_client_deletes_as_administrator(
    live_server: Any, study: list[IngestResult], hospital: Hospital
) -> None:
    do_create_admin("sysadmin", PASSWORD)  # a system administrator: every hospital
    client: DICOMwebClient = client_for(live_server.url, "sysadmin")
    client.delete_series(study[0].study_instance_uid, study[0].series_instance_uid)
    assert Study.objects.for_hospital(hospital).get().modalities_in_study == "PT"
    client.delete_study(study[0].study_instance_uid)
    client._session.close()
    assert not Study.objects.for_hospital(hospital).exists()


def test_a_session_cookie_delete_must_come_from_this_site(
    live_server: Any, study: list[IngestResult], hospital: Hospital
) -> None:
    do_create_admin("hadmin", PASSWORD, hospital)
    session = requests.Session()
    session.get(f"{live_server.url}/accounts/login/", timeout=30)
    signed_in = session.post(
        f"{live_server.url}/accounts/login/",
        data={
            "username": "hadmin",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{live_server.url}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert signed_in.status_code == 302
    target = url(live_server.url, study[0].study_instance_uid)
    assert session.delete(target, timeout=30).status_code == 403
    forged = session.delete(target, headers={"Origin": "http://evil.example"}, timeout=30)
    assert forged.status_code == 403
    assert Instance.objects.for_hospital(hospital).count() == 5
    same_site = session.delete(target, headers={"Origin": live_server.url}, timeout=30)
    session.close()
    assert same_site.status_code == 204
    assert not Instance.objects.for_hospital(hospital).exists()
