"""A system administrator browses the archive in the Django admin; it cannot be edited there."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from carina.archive.ingest import Origin, ingest
from carina.archive.models import Source, Study
from carina.core.testing import write_series
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def test_admin_lists_studies_of_every_hospital_read_only(
    admin_client: Client, tmp_path: Path, hospital: Hospital, other_hospital: Hospital
) -> None:
    for path in write_series(tmp_path / "a", 2, patient_name="ALPHA^ONE"):
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    for path in write_series(tmp_path / "b", 1, patient_name="BETA^TWO", patient_id="B"):
        ingest(path, hospital=other_hospital, origin=Origin(Source.IMPORT))

    page = admin_client.get("/admin/archive/study/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "ALPHA^ONE" in html and "BETA^TWO" in html
    study = Study.objects.for_hospital(hospital).get()
    detail = admin_client.get(f"/admin/archive/study/{study.pk}/change/")
    assert detail.status_code == 200
    assert study.study_instance_uid in detail.content.decode()
    assert admin_client.get("/admin/archive/study/add/").status_code == 403
    assert admin_client.post(f"/admin/archive/study/{study.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/archive/instance/").status_code == 200


def test_admin_requires_login(client: Client) -> None:
    response = client.get("/admin/archive/study/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
