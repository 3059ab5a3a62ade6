"""The worklist finds the current hospital's studies by name, ID, accession, free text, date
preset, modality and status; sorts, pages, refreshes by polling; refuses a bad search beside
its fields with every value kept; and never shows another hospital's studies."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from carina.archive.models import Study
from carina.audit.models import Action, AuditEvent
from carina.tenancy.models import Hospital

from .conftest import StoreStudy, da

pytestmark = pytest.mark.django_db

HTMX: dict[str, Any] = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}


def listed(response: Any) -> list[str]:
    """The StudyInstanceUIDs of the rows shown, in order."""
    return re.findall(r'data-study-uid="([^"]+)"', response.content.decode())


@pytest.fixture
def archive(store_study: StoreStudy, other_hospital: Hospital) -> dict[str, Any]:
    today = timezone.localdate()
    return {
        "smith": store_study(
            patient_name="SMITH^JOHN",
            patient_id="P-100",
            AccessionNumber="ACC-1",
            StudyDescription="CT CHEST",
            StudyDate=da(today),
        ),
        "jones": store_study(
            patient_name="JONES^MARY",
            patient_id="P-200",
            series=[("MR", 1), ("SR", 1)],
            AccessionNumber="ACC-2",
            StudyDescription="MR BRAIN",
            StudyDate=da(today - dt.timedelta(days=1)),
        ),
        "old": store_study(
            patient_name="OLDMAN^ALBERT",
            patient_id="P-300",
            series=[("CR", 1)],
            AccessionNumber="ACC-3",
            StudyDescription="CHEST XRAY",
            StudyDate="20200105",
        ),
        "elsewhere": store_study(
            other_hospital,
            patient_name="SMITH^OTHER",
            patient_id="P-100",
            AccessionNumber="ACC-1",
            StudyDate=da(today),
        ),
    }


def uids(archive: dict[str, Any], *names: str) -> set[str]:
    return {archive[name].study_uid for name in names}


def test_signed_out_visitors_go_to_the_sign_in_page(client: Client) -> None:
    response = client.get("/?q=smith")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/%3Fq%3Dsmith"


def test_the_list_shows_this_hospitals_studies_with_their_columns(
    clients: dict[str, Client], archive: dict[str, Any]
) -> None:
    response = clients["radiologist"].get("/")
    assert response.status_code == 200
    assert set(listed(response)) == uids(archive, "smith", "jones", "old")
    page = response.content.decode()
    for text in ("SMITH, JOHN", "P-100", "1970-01-01", "ACC-1", "CT CHEST", "MR BRAIN", "2 / 2"):
        assert text in page
    # Actions per row: viewer, study page, download, send (the radiologist may do them all).
    smith = archive["smith"].study_uid
    assert f"/viewer/viewer?StudyInstanceUIDs={smith}" in page
    assert f"/studies/{smith}/" in page
    assert f"/api/studies/{smith}/zip/" in page
    assert f"/studies/{smith}/send/" in page
    # The newest study date comes first by default.
    assert listed(response)[0] == smith


def test_a_physician_sees_no_download_or_send_action(
    clients: dict[str, Client], archive: dict[str, Any]
) -> None:
    page = clients["physician"].get("/").content.decode()
    assert "/viewer/viewer?StudyInstanceUIDs=" in page
    assert "/zip/" not in page
    assert "/send/" not in page


def test_another_hospitals_user_sees_none_of_it(
    clients: dict[str, Client], archive: dict[str, Any]
) -> None:
    response = clients["other_radiologist"].get("/?q=smith")
    assert set(listed(response)) == uids(archive, "elsewhere")
    assert "SMITH, JOHN" not in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("patient_name=smi", {"smith"}),  # part of the name, any case
        ("patient_name=JONES^M*", {"jones"}),  # a wild card over the whole name
        ("patient_id=P-200", {"jones"}),
        ("patient_id=P-*", {"smith", "jones", "old"}),
        ("accession=ACC-3", {"old"}),
        ("q=brain", {"jones"}),  # free text: the description…
        ("q=p-300", {"old"}),  # …the patient ID…
        ("q=acc-2", {"jones"}),  # …the accession number…
        ("q=oldman", {"old"}),  # …the name
        ("modality=MR", {"jones"}),
        ("modality=SR&modality=CR", {"jones", "old"}),
        ("period=today", {"smith"}),
        ("period=yesterday", {"jones"}),
        ("period=7d", {"smith", "jones"}),
        ("date_from=2020-01-01&date_to=2020-01-31", {"old"}),
        ("period=custom&date_to=2020-12-31", {"old"}),
        ("date_from=20200105", {"smith", "jones", "old"}),  # DICOM DA works too
    ],
)
def test_searches_find_the_expected_studies(
    clients: dict[str, Client], archive: dict[str, Any], query: str, expected: set[str]
) -> None:
    response = clients["technologist"].get(f"/?{query}")
    assert response.status_code == 200
    assert set(listed(response)) == uids(archive, *expected), query


def test_a_preset_shows_the_dates_it_stands_for(
    clients: dict[str, Client], archive: dict[str, Any]
) -> None:
    today = timezone.localdate()
    page = clients["radiologist"].get("/?period=7d").content.decode()
    first = (today - dt.timedelta(days=6)).isoformat()
    assert f"study dates {first} to {today.isoformat()}" in page


def test_a_search_without_match_says_so(
    clients: dict[str, Client], archive: dict[str, Any]
) -> None:
    page = clients["radiologist"].get("/?q=nobody-called-this").content.decode()
    assert "No study matches this search" in page


def test_an_empty_archive_says_how_studies_arrive(clients: dict[str, Client]) -> None:
    page = clients["technologist"].get("/").content.decode()
    assert "No studies yet" in page
    assert 'href="/upload/"' in page


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            "date_from=2026-02-10&date_to=2026-02-01&q=smith",
            "date_to",
            "The end date (2026-02-01) is before the start date (2026-02-10).",
        ),
        ("date_from=2026-13-45&q=smith", "date_from", "Enter a valid date."),
        ("period=custom&q=smith", "date_from", "Give a start date, an end date or both."),
        ("period=someday&q=smith", "period", "Select a valid choice."),
        ("modality=XYZ&q=smith", "modality", "Select a valid choice. XYZ is not one"),
    ],
)
def test_a_bad_search_is_explained_beside_its_field_and_keeps_the_values(
    clients: dict[str, Client], archive: dict[str, Any], query: str, field: str, message: str
) -> None:
    response = clients["radiologist"].get(f"/?{query}")
    page = response.content.decode()
    assert f'id="id_{field}-error"' in page
    assert message in page
    assert 'aria-invalid="true"' in page
    assert 'value="smith"' in page  # the other values are kept
    assert listed(response) == []


def test_an_unknown_sort_column_is_refused_with_a_message(
    clients: dict[str, Client], archive: dict[str, Any]
) -> None:
    page = clients["radiologist"].get("/?ordering=password").content.decode()
    assert "Unknown sort column &#x27;password&#x27;" in page


def test_column_headings_sort_both_ways(
    clients: dict[str, Client], archive: dict[str, Any]
) -> None:
    client = clients["radiologist"]
    ascending = client.get("/?ordering=patient_name")
    assert listed(ascending) == [archive[n].study_uid for n in ("jones", "old", "smith")]
    page = ascending.content.decode()
    assert 'aria-sort="ascending"' in page
    assert "ordering=-patient_name" in page  # the heading's link reverses it
    descending = client.get("/?ordering=-patient_name")
    assert listed(descending) == [archive[n].study_uid for n in ("smith", "old", "jones")]


def test_pages_link_to_each_other_and_count(
    clients: dict[str, Client], store_study: StoreStudy
) -> None:
    for n in range(27):
        store_study(patient_name=f"PATIENT^{n:02d}", patient_id=f"ID{n:02d}", series=[("CT", 1)])
    client = clients["radiologist"]
    first = client.get("/?size=25&ordering=patient_id")
    assert len(listed(first)) == 25
    page = first.content.decode()
    assert "Studies 1–25 of 27" in page
    assert 'rel="next"' in page
    second = client.get("/?size=25&ordering=patient_id&page=2")
    assert len(listed(second)) == 2
    assert "Studies 26–27 of 27" in second.content.decode()
    assert not set(listed(first)) & set(listed(second))


def test_the_table_refreshes_only_when_the_archive_changed(
    clients: dict[str, Client], archive: dict[str, Any], store_study: StoreStudy
) -> None:
    client = clients["radiologist"]
    partial = client.get("/?q=a", **HTMX)
    body = partial.content.decode()
    assert body.lstrip().startswith('<section id="results"')  # only the table, not the page
    assert "<html" not in body
    poll = re.search(r'hx-get="([^"]+poll=[^"]+)"', body)
    assert poll is not None and 'hx-trigger="every 10s"' in body
    poll_url = poll.group(1).replace("&amp;", "&")
    assert client.get(poll_url, **HTMX).status_code == 204  # nothing new
    new = store_study(patient_name="NEWCOMER^ANNA", patient_id="P-999")
    refreshed = client.get(poll_url, **HTMX)
    assert refreshed.status_code == 200
    assert new.study_uid in listed(refreshed)


def test_a_bad_search_through_htmx_redraws_the_form_with_its_messages(
    clients: dict[str, Client], archive: dict[str, Any]
) -> None:
    response = clients["radiologist"].get("/?date_from=2026-02-10&date_to=2026-02-01", **HTMX)
    assert response["HX-Retarget"] == "#worklist"
    assert "The end date (2026-02-01)" in response.content.decode()


def test_status_receiving_and_stored(clients: dict[str, Client], archive: dict[str, Any]) -> None:
    client = clients["radiologist"]
    page = client.get("/").content.decode()
    assert "Receiving" in page  # every study just arrived
    old = archive["old"].study_uid
    Study.objects.for_hospital(_default()).filter(study_instance_uid=old).update(
        updated_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert listed(client.get("/?status=stored")) == [old]
    assert old not in listed(client.get("/?status=receiving"))


def _default() -> Hospital:
    return Hospital.objects.get(slug="default")


def test_a_search_is_audited(clients: dict[str, Client], archive: dict[str, Any]) -> None:
    clients["radiologist"].get("/?patient_id=P-100")
    event = AuditEvent.objects.for_hospital(_default()).filter(actor="a-radiologist").last()
    assert event is not None
    assert event.action == Action.WEB_QUERY
    assert event.patient_id == "P-100"
    assert event.count == 1
    assert event.detail.startswith("UI GET /?patient_id=P-100")
