"""The archive through the REST API: search, filters, ordering, pages, records, metadata,
files, deletes, roles and audit events."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.api.tests.conftest import StoredStudy, StoreStudy, client_for
from carina.archive.models import Instance, Study
from carina.audit.models import AuditEvent
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def uids(response: Any, key: str = "study_instance_uid") -> list[str]:
    assert response.status_code == 200, response.content
    return [row[key] for row in response.json()["results"]]


def test_signed_out_is_401_with_a_reason(archive: dict[str, StoredStudy]) -> None:
    response = APIClient().get("/api/studies/")
    assert response.status_code == 401
    assert "detail" in response.json()


def test_bearer_token_works_like_the_session(
    users: dict[str, Any], archive: dict[str, StoredStudy]
) -> None:
    response = client_for(users["physician"], bearer=True).get("/api/studies/")
    assert set(uids(response)) == {archive["chest"].study_uid, archive["brain"].study_uid}


def test_study_search_lists_only_the_callers_hospital(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    body = clients["physician"].get("/api/studies/").json()
    assert body["count"] == 2 and body["count_exact"] is True
    assert [r["study_instance_uid"] for r in body["results"]] == [
        archive["chest"].study_uid,  # newest study date first
        archive["brain"].study_uid,
    ]
    chest = body["results"][0]
    assert chest["patient"]["patient_name"] == "DOE^JANE"
    assert chest["modalities_in_study"] == ["CT"]
    assert chest["number_of_series"] == 2 and chest["number_of_instances"] == 5
    assert chest["zip_url"].endswith(f"/api/studies/{archive['chest'].study_uid}/zip/")
    other = clients["other_admin"].get("/api/studies/").json()
    assert [r["study_instance_uid"] for r in other["results"]] == [archive["secret"].study_uid]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("patient_name=doe", ["chest"]),  # contains, any case
        ("patient_name=jane", ["chest"]),
        ("patient_name=SM*JOHN", ["brain"]),  # wild card over the whole name
        ("patient_name=*BOB", []),  # the other hospital's patient
        ("patient_id=PID002", ["brain"]),
        ("patient_id=PID00*", ["chest", "brain"]),
        ("patient_id=pid002", []),  # identifiers are case-sensitive, as in DICOM
        ("accession=ACC001", ["chest"]),
        ("modality=MR", ["brain"]),
        ("modality=CT,MR", ["chest", "brain"]),
        ("modality=US", []),
        ("date_from=2026-11-01", ["chest"]),
        ("date_to=20261031", ["brain"]),
        ("date_from=2026-09-01&date_to=2026-12-31", ["chest", "brain"]),
        ("q=brain", ["brain"]),  # description
        ("q=acc001", ["chest"]),  # accession, any case
        ("q=pid002", ["brain"]),
        ("q=secret", []),
    ],
)
def test_study_filters(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], query: str, expected: list[str]
) -> None:
    found = uids(clients["physician"].get(f"/api/studies/?{query}"))
    assert found == [archive[name].study_uid for name in expected]


def test_study_filter_by_uid_and_patient(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    chest = archive["chest"].study_uid
    assert uids(clients["physician"].get(f"/api/studies/?study_instance_uid={chest}")) == [chest]
    patient = clients["physician"].get(f"/api/studies/{chest}/").json()["patient"]["id"]
    assert uids(clients["physician"].get(f"/api/studies/?patient={patient}")) == [chest]


def test_bad_filter_values_are_400_naming_the_field(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    response = clients["physician"].get("/api/studies/?date_from=yesterday")
    assert response.status_code == 400
    assert "date_from" in response.json()
    response = clients["physician"].get("/api/studies/?date_from=2026-12-01&date_to=2026-01-01")
    assert response.status_code == 400
    assert "before date_from" in str(response.json())
    response = clients["physician"].get("/api/studies/?ordering=password")
    assert response.status_code == 400
    assert "ordering" in response.json()


def test_ordering(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], store_study: StoreStudy
) -> None:
    undated = store_study(patient_id="PID003", patient_name="ADAMS^AMY", StudyDate="")
    chest, brain = archive["chest"].study_uid, archive["brain"].study_uid
    client = clients["physician"]
    # A study without a date comes last in both directions.
    assert uids(client.get("/api/studies/?ordering=study_date")) == [
        brain,
        chest,
        undated.study_uid,
    ]
    assert uids(client.get("/api/studies/?ordering=-study_date")) == [
        chest,
        brain,
        undated.study_uid,
    ]
    assert uids(client.get("/api/studies/?ordering=patient_name")) == [
        undated.study_uid,
        chest,
        brain,
    ]
    assert uids(client.get("/api/studies/?ordering=-received")) == [undated.study_uid, brain, chest]


def test_pages_walk_every_study_once(
    clients: dict[str, APIClient], store_study: StoreStudy
) -> None:
    made = {store_study(patient_id=f"P{i}", series=[("CT", 1)]).study_uid for i in range(5)}
    client = clients["physician"]
    seen: list[str] = []
    url: str | None = "/api/studies/?limit=2&ordering=received"
    pages = 0
    while url:
        body = client.get(url).json()
        assert body["count"] == 5 and body["count_exact"]
        seen += [r["study_instance_uid"] for r in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(made) and len(seen) == 5
    last = client.get("/api/studies/?limit=2&offset=4").json()
    assert last["previous"] is not None and last["next"] is None


def test_count_is_capped_on_large_results(
    clients: dict[str, APIClient], store_study: StoreStudy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carina.api.pagination import CappedLimitOffsetPagination

    monkeypatch.setattr(CappedLimitOffsetPagination, "count_cap", 3)
    for i in range(5):
        store_study(patient_id=f"P{i}", series=[("CT", 1)])
    body = clients["physician"].get("/api/studies/?limit=2").json()
    assert body["count"] == 3 and body["count_exact"] is False
    assert body["next"] is not None
    # The last page knows the exact count without counting.
    body = clients["physician"].get("/api/studies/?limit=2&offset=4").json()
    assert body["count"] == 5 and body["count_exact"] is True


def test_study_record_series_instances_and_images(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    chest = archive["chest"]
    client = clients["physician"]
    study = client.get(f"/api/studies/{chest.study_uid}/").json()
    assert study["accession_number"] == "ACC001" and study["study_date"] == "2026-11-20"
    series = client.get(f"/api/studies/{chest.study_uid}/series/").json()["results"]
    assert [s["series_instance_uid"] for s in series] == chest.series_uids
    assert [s["series_number"] for s in series] == [1, 2]
    instances = client.get(f"/api/series/{chest.series_uids[0]}/instances/").json()["results"]
    assert [i["sop_instance_uid"] for i in instances] == chest.sop_uids[:3]
    assert [i["instance_number"] for i in instances] == [1, 2, 3]
    images = client.get(f"/api/studies/{chest.study_uid}/images/").json()
    assert [s["series_instance_uid"] for s in images["series"]] == chest.series_uids
    first = images["series"][0]
    assert first["thumbnail_url"].endswith(
        f"/dicomweb/studies/{chest.study_uid}/series/{chest.series_uids[0]}/thumbnail"
    )
    assert [i["sop_instance_uid"] for i in first["instances"]] == chest.sop_uids[:3]


def test_top_level_series_and_instance_lists_filter(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    client = clients["physician"]
    brain = archive["brain"]
    assert uids(client.get("/api/series/?modality=MR"), "series_instance_uid") == brain.series_uids
    found = uids(client.get(f"/api/instances/?series={brain.series_uids[0]}"), "sop_instance_uid")
    assert found == brain.sop_uids


def test_patients(clients: dict[str, APIClient], archive: dict[str, StoredStudy]) -> None:
    client = clients["physician"]
    body = client.get("/api/patients/?patient_name=doe").json()
    assert [p["patient_id"] for p in body["results"]] == ["PID001"]
    patient = body["results"][0]
    assert patient["number_of_studies"] == 1
    studies = client.get(patient["studies_url"]).json()["results"]
    assert [s["study_instance_uid"] for s in studies] == [archive["chest"].study_uid]
    everyone = client.get("/api/patients/").json()["results"]
    assert [p["patient_name"] for p in everyone] == ["DOE^JANE", "SMITH^JOHN"]


def test_instance_metadata_is_dicom_json(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    chest = archive["chest"]
    sop = chest.sop_uids[0]
    data = clients["physician"].get(f"/api/instances/{sop}/metadata/").json()
    assert data["00080018"] == {"vr": "UI", "Value": [sop]}
    assert data["00100010"]["Value"] == [{"Alphabetic": "DOE^JANE"}]
    assert data["7FE00010"]["BulkDataURI"].endswith(
        f"/studies/{chest.study_uid}/series/{chest.series_uids[0]}/instances/{sop}/bulkdata/7FE00010"
    )


def test_instance_file_is_the_stored_file(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    chest = archive["chest"]
    response = clients["radiologist"].get(
        f"/api/instances/{chest.sop_uids[1]}/file/", HTTP_ACCEPT="application/dicom"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    assert f'filename="{chest.sop_uids[1]}.dcm"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == chest.files[1].read_bytes()


def test_physician_may_view_but_not_download(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    chest = archive["chest"]
    client = clients["physician"]
    assert client.get(f"/api/studies/{chest.study_uid}/").status_code == 200
    for url in (
        f"/api/instances/{chest.sop_uids[0]}/file/",
        f"/api/studies/{chest.study_uid}/zip/",
    ):
        response = client.get(url, HTTP_ACCEPT="application/zip, application/dicom")
        assert response.status_code == 403
        assert response["Content-Type"] == "application/json"
        assert "physician" in response.json()["detail"].lower()


def test_other_hospitals_objects_are_404(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    secret = archive["secret"]
    client = clients["admin"]
    for url in (
        f"/api/studies/{secret.study_uid}/",
        f"/api/studies/{secret.study_uid}/series/",
        f"/api/studies/{secret.study_uid}/images/",
        f"/api/studies/{secret.study_uid}/zip/",
        f"/api/series/{secret.series_uids[0]}/",
        f"/api/series/{secret.series_uids[0]}/instances/",
        f"/api/instances/{secret.sop_uids[0]}/",
        f"/api/instances/{secret.sop_uids[0]}/metadata/",
        f"/api/instances/{secret.sop_uids[0]}/file/",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "SECRET" not in response.content.decode()
    assert client.delete(f"/api/studies/{secret.study_uid}/").status_code == 404
    assert Study.objects.all_hospitals().filter(study_instance_uid=secret.study_uid).exists()


def test_header_picks_one_of_the_users_hospitals(
    users: dict[str, Any],
    archive: dict[str, StoredStudy],
    other_hospital: Hospital,
) -> None:
    from carina.accounts.models import Membership

    Membership.objects.create(user=users["physician"], hospital=other_hospital, role="physician")
    client = clients_for_physician = client_for(users["physician"])
    found = uids(client.get("/api/studies/", HTTP_X_CARINA_HOSPITAL="other"))
    assert found == [archive["secret"].study_uid]
    assert len(uids(clients_for_physician.get("/api/studies/"))) == 2
    response = client_for(users["radiologist"]).get("/api/studies/", HTTP_X_CARINA_HOSPITAL="other")
    assert response.status_code == 403
    assert "other" in response.json()["detail"]


def test_delete_needs_the_delete_permission_and_is_audited(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], hospital: Hospital
) -> None:
    chest = archive["chest"]
    response = clients["radiologist"].delete(f"/api/series/{chest.series_uids[1]}/")
    assert response.status_code == 403
    response = clients["admin"].delete(f"/api/series/{chest.series_uids[1]}/")
    assert response.status_code == 204
    study = clients["admin"].get(f"/api/studies/{chest.study_uid}/").json()
    assert study["number_of_series"] == 1 and study["number_of_instances"] == 3
    assert clients["admin"].delete(f"/api/instances/{chest.sop_uids[0]}/").status_code == 204
    assert clients["admin"].delete(f"/api/studies/{chest.study_uid}/").status_code == 204
    assert clients["admin"].get(f"/api/studies/{chest.study_uid}/").status_code == 404
    assert (
        not Instance.objects.for_hospital(hospital)
        .filter(sop_instance_uid__in=chest.sop_uids)
        .exists()
    )
    deletes = AuditEvent.objects.for_hospital(hospital).filter(action="api.delete")
    assert sorted(deletes.values_list("object_type", flat=True)) == ["instance", "series", "study"]
    assert set(deletes.values_list("actor", flat=True)) == {"a-admin"}
    assert set(deletes.values_list("patient_id", flat=True)) == {"PID001"}


def test_reads_of_patient_data_are_audited_once_per_request(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], hospital: Hospital
) -> None:
    chest = archive["chest"]
    events = AuditEvent.objects.for_hospital(hospital)
    before = events.count()
    clients["physician"].get("/api/studies/?patient_id=PID001")
    clients["physician"].get(f"/api/instances/{chest.sop_uids[0]}/metadata/")
    clients["radiologist"].get(f"/api/instances/{chest.sop_uids[0]}/file/")
    clients["physician"].get("/api/studies/not-a-uid/")  # an error: not recorded
    assert events.count() == before + 3
    query, metadata, download = events.order_by("occurred_at", "id")[before:]
    assert (query.action, query.actor, query.patient_id, query.count) == (
        "api.query",
        "a-physician",
        "PID001",
        1,
    )
    assert "GET /api/studies/?patient_id=PID001" in query.detail
    assert (metadata.action, metadata.object_uid) == ("api.retrieve", chest.sop_uids[0])
    assert (download.action, download.actor, download.patient_id) == (
        "api.retrieve",
        "a-radiologist",
        "PID001",
    )
