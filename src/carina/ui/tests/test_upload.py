"""Uploading without JavaScript (the form's own POST): files and ZIP archives go through the
one ingest pipeline; the status page shows every object's outcome (stored, already present,
rejected with the reason) and links the studies; uploads are private to their user and
hospital."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from carina.archive.models import Study
from carina.tenancy.models import Hospital

from .conftest import StoreStudy

pytestmark = pytest.mark.django_db


def dicom(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="application/dicom")


def zipped(name: str, members: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def test_upload_files_and_a_zip_and_see_each_outcome(
    clients: dict[str, Client], store_study: StoreStudy, hospital: Hospital
) -> None:
    stored = store_study(patient_name="ALREADY^HERE", patient_id="P-1", series=[("CT", 1)])
    fresh = store_study(patient_name="FRESH^ONE", patient_id="P-2", series=[("CT", 3)])
    # The "fresh" study's objects are taken out of the archive again: the upload stores them.
    from carina.archive.actions import do_delete_study

    do_delete_study(hospital, fresh.study_uid)
    archive = zipped(
        "folder.zip",
        {
            "scans/a.dcm": fresh.files[1].read_bytes(),
            "scans/b.dcm": fresh.files[2].read_bytes(),
            "scans/notes.txt": b"not DICOM",
        },
    )
    response = clients["technologist"].post(
        "/upload/",
        {"files": [dicom(stored.files[0]), dicom(fresh.files[0]), archive]},
        follow=True,
    )
    assert response.status_code == 200
    assert re.fullmatch(r"/upload/[0-9a-f-]{36}/", response.redirect_chain[-1][0])
    page = response.content.decode()
    assert "5 of 5 objects processed" in page
    assert "3 stored" in page and "1 already present" in page and "1 rejected" in page
    assert "folder.zip!scans/notes.txt" in page
    assert "not a DICOM" in page.lower() or "dicm" in page.lower()  # the reason is given
    assert f'href="/studies/{fresh.study_uid}/"' in page
    assert f'href="/studies/{stored.study_uid}/"' in page
    assert Study.objects.for_hospital(hospital).get(study_instance_uid=fresh.study_uid)
    # The upload is listed on the upload page.
    assert "technologist" in clients["technologist"].get("/upload/").content.decode()


def test_an_upload_without_files_is_refused_on_the_page(clients: dict[str, Client]) -> None:
    response = clients["technologist"].post("/upload/", {})
    assert response.status_code == 400
    assert "Send one or more files" in response.content.decode()


def test_uploads_need_the_store_permission(clients: dict[str, Client]) -> None:
    response = clients["physician"].get("/upload/")
    assert response.status_code == 403
    assert "does not allow you to upload DICOM files" in response.content.decode()
    assert clients["physician"].post("/upload/", {}).status_code == 403
    assert 'href="/upload/"' not in clients["physician"].get("/").content.decode()


def test_an_upload_is_seen_by_its_user_and_the_administrators_only(
    clients: dict[str, Client], store_study: StoreStudy
) -> None:
    stored = store_study(series=[("CT", 1)])
    done = clients["technologist"].post("/upload/", {"files": [dicom(stored.files[0])]})
    url = done["Location"]
    assert clients["technologist"].get(url).status_code == 200
    assert clients["admin"].get(url).status_code == 200
    assert clients["radiologist"].get(url).status_code == 404
    assert clients["other_admin"].get(url).status_code == 404
    # Unfinished uploads poll their status; finished ones do not.
    assert 'hx-trigger="every 2s"' not in clients["technologist"].get(url).content.decode()
