"""Uploads of DICOM files and ZIP archives through ``/api/uploads/``: per-object results,
duplicates, refusals with their reason, unsafe ZIP members, background runs with progress."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.uid import generate_uid
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.api.tests.conftest import client_for, make_user
from carina.archive.models import Instance
from carina.archive.storage import get_storage
from carina.audit.models import AuditEvent
from carina.core.testing import make_ct_slice
from carina.tenancy.models import Hospital


def dicom_bytes(study_uid: str, index: int, **kwargs: Any) -> bytes:
    series_uid = generate_uid(entropy_srcs=[study_uid])  # one series per study
    ds = make_ct_slice(study_uid=study_uid, series_uid=series_uid, index=index, size=16, **kwargs)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def upload(client: APIClient, *files: tuple[str, bytes], query: str = "") -> Any:
    return client.post(
        f"/api/uploads/{query}",
        {"files": [SimpleUploadedFile(name, data) for name, data in files]},
        format="multipart",
    )


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.django_db
def test_upload_files_stores_them_and_reports_each(
    clients: dict[str, APIClient], hospital: Hospital
) -> None:
    study = generate_uid()
    first, second = dicom_bytes(study, 0), dicom_bytes(study, 1)
    response = upload(clients["technologist"], ("a.dcm", first), ("b.dcm", second))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "done" and body["progress"] == 1.0
    assert response["Location"] == body["url"]
    assert [r["status"] for r in body["results"]] == ["stored", "stored"]
    assert [r["name"] for r in body["results"]] == ["a.dcm", "b.dcm"]
    assert {r["study_instance_uid"] for r in body["results"]} == {study}
    sop = body["results"][0]["sop_instance_uid"]
    row = Instance.objects.for_hospital(hospital).get(sop_instance_uid=sop)
    assert row.source == "api"
    with get_storage().open(row.blob_key) as blob:
        assert blob.read() == first
    again = upload(clients["technologist"], ("a.dcm", first))
    assert again.status_code == 201
    assert again.json()["results"][0]["status"] == "already_present"
    events = AuditEvent.objects.for_hospital(hospital).filter(action="api.store")
    assert [(e.object_uid, e.count, e.actor) for e in events] == [
        (study, 1, "a-technologist"),
        (study, 2, "a-technologist"),
    ]


@pytest.mark.django_db
def test_refused_objects_say_why(clients: dict[str, APIClient]) -> None:
    response = upload(clients["technologist"], ("notes.txt", b"hello, not DICOM"))
    assert response.status_code == 400
    body = response.json()
    assert body["results"][0]["status"] == "rejected"
    assert "not a DICOM Part 10 file" in body["results"][0]["reason"]
    assert "notes.txt" in body["detail"]
    study = generate_uid()
    sop = generate_uid()
    original = dicom_bytes(study, 0, sop_uid=sop)
    assert upload(clients["technologist"], ("x.dcm", original)).status_code == 201
    changed = dicom_bytes(study, 0, sop_uid=sop, patient_name="OTHER^NAME")
    response = upload(clients["technologist"], ("y.dcm", changed))
    assert response.status_code == 409
    assert "already stored with different content" in response.json()["results"][0]["reason"]


@pytest.mark.django_db
def test_upload_a_zip_archive(
    clients: dict[str, APIClient], hospital: Hospital, tmp_path: Path
) -> None:
    study = generate_uid()
    archive = zip_of(
        {
            "CT/IM1": dicom_bytes(study, 0),
            "CT/IM2": dicom_bytes(study, 1),
            "DICOMDIR": b"index",
            "../evil.dcm": dicom_bytes(study, 2),
            "/etc/passwd": b"root",
            "README.txt": b"read me",
        }
    )
    response = upload(clients["radiologist"], ("cd.zip", archive))
    assert response.status_code == 201, response.content
    results = {r["name"]: r for r in response.json()["results"]}
    assert results["cd.zip!CT/IM1"]["status"] == "stored"
    assert results["cd.zip!CT/IM2"]["status"] == "stored"
    assert results["cd.zip!DICOMDIR"]["status"] == "skipped"
    for unsafe in ("cd.zip!../evil.dcm", "cd.zip!/etc/passwd"):
        assert results[unsafe]["status"] == "rejected"
        assert "unsafe name" in results[unsafe]["reason"]
    assert results["cd.zip!README.txt"]["status"] == "rejected"
    assert response.json()["counts"] == {"stored": 2, "skipped": 1, "rejected": 3}
    assert (
        Instance.objects.for_hospital(hospital)
        .filter(series__study__study_instance_uid=study)
        .count()
        == 2
    )
    assert not any(p.name == "evil.dcm" for p in tmp_path.parent.rglob("evil.dcm"))


@pytest.mark.django_db
def test_who_may_upload(clients: dict[str, APIClient]) -> None:
    response = upload(clients["physician"], ("a.dcm", dicom_bytes(generate_uid(), 0)))
    assert response.status_code == 403
    assert "store" in response.json()["detail"]
    response = clients["technologist"].post("/api/uploads/", {}, format="multipart")
    assert response.status_code == 400
    assert "files" in response.json()["detail"]
    response = upload(clients["technologist"], ("a.dcm", b"x"), query="?background=perhaps")
    assert response.status_code == 400


@pytest.mark.django_db
def test_upload_status_is_the_uploaders_own(
    clients: dict[str, APIClient], users: dict[str, Any], hospital: Hospital
) -> None:
    mine = upload(clients["technologist"], ("a.dcm", dicom_bytes(generate_uid(), 0))).json()
    assert clients["technologist"].get(mine["url"]).status_code == 200
    other_tech = client_for(make_user("a-tech2", hospital, "technologist"))
    assert other_tech.get(mine["url"]).status_code == 404
    assert clients["admin"].get(mine["url"]).status_code == 200  # the hospital's administrator
    assert clients["other_admin"].get(mine["url"]).status_code == 404
    listed = clients["technologist"].get("/api/uploads/").json()["results"]
    assert [u["id"] for u in listed] == [mine["id"]]


@pytest.mark.django_db(transaction=True)
def test_large_upload_runs_in_the_background_with_progress(
    hospital: Hospital, settings: Any
) -> None:
    settings.CARINA_UPLOAD_SYNC_MAX_OBJECTS = 3
    client = client_for(make_user("bg-tech", hospital, "technologist"))
    study = generate_uid()
    files = [(f"s{i}.dcm", dicom_bytes(study, i)) for i in range(4)]
    files.append(("bad.txt", b"not dicom"))
    response = upload(client, *files)
    assert response.status_code == 202, response.content
    status_url = response["Location"]
    assert response.json()["total"] == 5
    deadline = time.monotonic() + 120
    body = client.get(status_url).json()
    while body["status"] in ("queued", "running") and time.monotonic() < deadline:
        assert 0 <= body["done"] <= body["total"] == 5
        time.sleep(0.2)
        body = client.get(status_url).json()
    assert body["status"] == "done", body
    assert body["done"] == 5 and body["progress"] == 1.0
    assert body["counts"] == {"stored": 4, "rejected": 1}
    rejected = [r for r in body["results"] if r["status"] == "rejected"]
    assert rejected[0]["name"] == "bad.txt" and "not a DICOM" in rejected[0]["reason"]
    assert (
        Instance.objects.for_hospital(hospital)
        .filter(series__study__study_instance_uid=study)
        .count()
        == 4
    )


@pytest.mark.django_db(transaction=True)
def test_background_can_be_asked_for(hospital: Hospital) -> None:
    client = client_for(make_user("bg-tech2", hospital, "technologist"))
    response = upload(client, ("a.dcm", dicom_bytes(generate_uid(), 0)), query="?background=true")
    assert response.status_code == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(response["Location"]).json()
        if body["status"] == "done":
            break
        time.sleep(0.2)
    assert body["status"] == "done" and body["counts"] == {"stored": 1}


@pytest.mark.django_db
def test_run_upload_twice_does_the_work_once(users: dict[str, Any], hospital: Hospital) -> None:
    """What a Celery task will call: safe to run again."""
    from carina.api.uploads import create_upload, run_upload

    upload_row = create_upload(
        hospital,
        users["technologist"],
        [SimpleUploadedFile("a.dcm", dicom_bytes(generate_uid(), 0))],
        background=False,
    )
    again = run_upload(upload_row.id)
    assert again.status == "done" and again.counts == {"stored": 1} and len(again.results) == 1
