"""The study page: details, series with thumbnails that the DICOMweb service draws, the tag
browser, the viewer and download links, deleting (allowed roles, confirmed, audited), the
study's audit history — and 404 for another hospital's study."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from carina.archive.models import Instance, Study
from carina.audit.models import Action, AuditEvent
from carina.tenancy.models import Hospital

from .conftest import StoredStudy, StoreStudy

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(store_study: StoreStudy) -> StoredStudy:
    return store_study(
        patient_name="SMITH^JOHN",
        patient_id="P-100",
        series=[("CT", 3), ("SR", 1)],
        AccessionNumber="ACC-1",
        StudyDescription="CT CHEST",
        ReferringPhysicianName="HOUSE^GREGORY",
    )


def test_the_page_shows_patient_study_and_series(
    clients: dict[str, Client], study: StoredStudy
) -> None:
    response = clients["radiologist"].get(f"/studies/{study.study_uid}/")
    assert response.status_code == 200
    page = response.content.decode()
    for text in (
        "SMITH, JOHN",
        "P-100",
        "1970-01-01",
        "Other",  # PatientSex O
        "CT CHEST",
        "ACC-1",
        "HOUSE, GREGORY",
        "2 / 4",
        study.study_uid,
        "#1 CT series 1",
        "3 instances",
        "#2 SR series 2",
    ):
        assert text in page, text
    # A thumbnail per series, drawn by DICOMweb; the viewer for the study and each series.
    for series_uid in study.series_uids:
        assert f"/dicomweb/studies/{study.study_uid}/series/{series_uid}/thumbnail" in page
        assert (
            f"/viewer/viewer?StudyInstanceUIDs={study.study_uid}&amp;"
            f"SeriesInstanceUIDs={series_uid}" in page
        )
    assert f'href="/viewer/viewer?StudyInstanceUIDs={study.study_uid}"' in page
    assert f"/api/studies/{study.study_uid}/zip/" in page
    assert "Delete…" not in page  # a radiologist may not delete


def test_the_thumbnails_are_images(clients: dict[str, Client], study: StoredStudy) -> None:
    client = clients["radiologist"]
    page = client.get(f"/studies/{study.study_uid}/").content.decode()
    src = re.search(r'<img src="([^"]+/thumbnail)"', page)
    assert src is not None
    thumbnail = client.get(src.group(1), HTTP_ACCEPT="image/jpeg")
    assert thumbnail.status_code == 200
    assert thumbnail["Content-Type"] == "image/jpeg"


def test_another_hospitals_study_is_not_found(
    clients: dict[str, Client], study: StoredStudy
) -> None:
    client = clients["other_admin"]
    for path in (
        f"/studies/{study.study_uid}/",
        f"/studies/{study.study_uid}/tags/?series={study.series_uids[0]}",
        f"/studies/{study.study_uid}/history/",
        f"/studies/{study.study_uid}/delete/",
        f"/studies/{study.study_uid}/send/",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "SMITH" not in response.content.decode()
    assert client.post(f"/studies/{study.study_uid}/delete/").status_code == 404
    assert Study.objects.for_hospital(Hospital.objects.get(slug="default")).count() == 1


def test_an_unknown_study_is_a_friendly_404(clients: dict[str, Client]) -> None:
    response = clients["radiologist"].get("/studies/1.2.3.4/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "No study 1.2.3.4 in Default hospital." in page
    assert "Back to the worklist" in page


def test_the_tag_browser_shows_an_instances_attributes(
    clients: dict[str, Client], study: StoredStudy
) -> None:
    client = clients["radiologist"]
    url = f"/studies/{study.study_uid}/tags/?series={study.series_uids[0]}"
    page = client.get(url).content.decode()
    assert "(0010,0010)" in page
    assert "PatientName" in page
    assert "SMITH^JOHN" in page
    assert "(7FE0,0010)" in page and "(bulk data, retrieved separately)" in page
    # Every instance of the series can be chosen; the first is shown.
    assert page.count('<option value="') == 3
    # Filtered, as a fragment for HTMX.
    fragment = client.get(url + "&q=patientid", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment
    assert "P-100" in fragment
    assert "(0010,0010)" not in fragment
    assert "1 row" in fragment
    # Another instance.
    third = study.sop_uids[2]
    chosen = client.get(url + f"&instance={third}").content.decode()
    assert f'<option value="{third}" selected>' in chosen


def test_the_tag_browser_refuses_unknown_series_and_instances(
    clients: dict[str, Client], study: StoredStudy, store_study: StoreStudy
) -> None:
    client = clients["radiologist"]
    base = f"/studies/{study.study_uid}/tags/"
    assert client.get(base).status_code == 404
    assert client.get(base + "?series=1.2.3").status_code == 404
    other = store_study(patient_name="OTHER^STUDY")
    # A series of another study, even of the same hospital, is not this study's.
    assert client.get(base + f"?series={other.series_uids[0]}").status_code == 404
    assert (
        client.get(
            base + f"?series={study.series_uids[0]}&instance={other.sop_uids[0]}"
        ).status_code
        == 404
    )


def test_deleting_needs_the_role_and_a_confirmation(
    clients: dict[str, Client], study: StoredStudy
) -> None:
    url = f"/studies/{study.study_uid}/delete/"
    refused = clients["radiologist"].get(url)
    assert refused.status_code == 403
    assert "does not allow you to delete studies" in refused.content.decode()
    assert clients["radiologist"].post(url).status_code == 403
    admin = clients["admin"]
    assert "Delete…" in admin.get(f"/studies/{study.study_uid}/").content.decode()
    confirm = admin.get(url)
    assert confirm.status_code == 200
    assert "Delete this study?" in confirm.content.decode()
    assert "2 series, 4 instances" in confirm.content.decode()
    hospital = Hospital.objects.get(slug="default")
    assert Study.objects.for_hospital(hospital).count() == 1  # nothing gone on GET
    done = admin.post(url, follow=True)
    assert done.redirect_chain[-1][0] == "/"
    assert "Deleted the study CT CHEST of SMITH^JOHN: 2 series, 4 instance(s)." in (
        done.content.decode()
    )
    assert Study.objects.for_hospital(hospital).count() == 0
    assert Instance.objects.for_hospital(hospital).count() == 0
    event = AuditEvent.objects.for_hospital(hospital).get(action=Action.WEB_DELETE)
    assert event.actor == "a-admin"
    assert event.object_uid == study.study_uid
    assert event.patient_id == "P-100"
    assert event.count == 4
    assert admin.get(f"/studies/{study.study_uid}/").status_code == 404


def test_the_history_lists_the_studys_events(
    clients: dict[str, Client], study: StoredStudy, users: dict[str, Any]
) -> None:
    clients["radiologist"].get(f"/studies/{study.study_uid}/")
    clients["technologist"].get(f"/studies/{study.study_uid}/")
    # A radiologist sees their own events; an administrator sees everyone's.
    own = clients["radiologist"].get(f"/studies/{study.study_uid}/history/").content.decode()
    assert "a-radiologist" in own
    assert "a-technologist" not in own
    everyone = clients["admin"].get(f"/studies/{study.study_uid}/history/").content.decode()
    assert "a-radiologist" in everyone and "a-technologist" in everyone
    assert f"/audit/?object_uid={study.study_uid}" in everyone


def test_viewing_the_study_is_audited(clients: dict[str, Client], study: StoredStudy) -> None:
    clients["physician"].get(f"/studies/{study.study_uid}/")
    event = AuditEvent.objects.for_hospital(Hospital.objects.get(slug="default")).get(
        actor="a-physician"
    )
    assert event.action == Action.WEB_QUERY
    assert event.object_uid == study.study_uid
    assert event.patient_id == "P-100"
