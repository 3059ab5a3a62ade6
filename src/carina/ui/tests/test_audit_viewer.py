"""The audit trail viewer: administrators read the hospital's whole trail, everyone else
their own events; filters narrow it, a bad filter is explained beside its field, and the CSV
export holds exactly the filtered events."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client
from django.utils import timezone

from carina.audit.actions import do_record
from carina.audit.models import Action, ActorKind, Outcome
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(hospital: Hospital, other_hospital: Hospital) -> None:
    now = timezone.now()
    common = {"actor_kind": ActorKind.USER, "hospital": hospital}
    do_record(**common, actor="a-radiologist", action=Action.WEB_QUERY, patient_id="P-1", count=3)
    do_record(
        **common,
        actor="a-technologist",
        action=Action.WEB_DELETE,
        object_uid="1.2.3",
        patient_id="P-2",
        occurred_at=now - dt.timedelta(days=3),
    )
    do_record(
        hospital=hospital,
        actor="MODALITY1",
        actor_kind=ActorKind.DICOM_NODE,
        action=Action.STORE,
        outcome=Outcome.FAILURE,
        detail="rejected",
    )
    do_record(
        hospital=other_hospital,
        actor="b-admin",
        actor_kind=ActorKind.USER,
        action=Action.WEB_QUERY,
        patient_id="SECRET",
    )


def rows(page: str) -> int:
    return page.split('id="audit-table"')[-1].count("<tr>") - 1 if 'id="audit-table"' in page else 0


def test_an_administrator_sees_the_hospitals_whole_trail(
    clients: dict[str, Client], events: None
) -> None:
    page = clients["admin"].get("/audit/").content.decode()
    assert rows(page) == 4  # the hospital's three events, and the admin's own sign-in
    assert "Sign-in" in page
    for text in ("a-radiologist", "a-technologist", "MODALITY1"):
        assert text in page
    assert "SECRET" not in page and "b-admin" not in page


def test_everyone_else_sees_their_own_events(clients: dict[str, Client], events: None) -> None:
    page = clients["radiologist"].get("/audit/").content.decode()
    assert rows(page) == 2  # their search, and their own sign-in
    assert "a-technologist" not in page and "MODALITY1" not in page
    assert "your own events (a-radiologist)" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action=dicomweb.delete", 1),
        ("outcome=failure", 1),
        ("actor=MODALITY1", 1),
        ("patient_id=P-1", 1),
        ("object_uid=1.2.3", 1),
        (f"date_from={timezone.localdate().isoformat()}", 3),  # with the sign-in
        ("q=REJECT", 1),  # text in the detail, ignoring case
        (f"date_to={(timezone.localdate() - dt.timedelta(days=1)).isoformat()}", 1),
    ],
)
def test_filters(clients: dict[str, Client], events: None, query: str, expected: int) -> None:
    assert rows(clients["admin"].get(f"/audit/?{query}").content.decode()) == expected


def test_a_bad_filter_is_explained_and_kept(clients: dict[str, Client], events: None) -> None:
    response = clients["admin"].get("/audit/?date_from=2026-03-10&date_to=2026-03-01&actor=x")
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_date_to-error"' in page
    assert "The end date (2026-03-01) is before the start date (2026-03-10)." in page
    assert 'value="x"' in page
    bad_action = clients["admin"].get("/audit/?action=dance").content.decode()
    assert "Select a valid choice. dance is not one" in bad_action


def test_csv_export_holds_the_filtered_events(clients: dict[str, Client], events: None) -> None:
    page = clients["admin"].get("/audit/?outcome=success").content.decode()
    assert 'href="/audit/export.csv?outcome=success"' in page
    response = clients["admin"].get("/audit/export.csv?outcome=success")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-default-')
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    table = list(csv.DictReader(io.StringIO(body)))
    assert {r["actor"] for r in table} == {"a-radiologist", "a-technologist", "a-admin"}
    query = next(r for r in table if r["action"] == "dicomweb.query")
    assert (query["actor"], query["count"], query["hospital"]) == ("a-radiologist", "3", "default")
    # A radiologist's export is their own events only.
    mine = clients["radiologist"].get("/audit/export.csv")
    own = list(csv.DictReader(io.StringIO(b"".join(mine.streaming_content).decode())))  # type: ignore[attr-defined]
    assert {r["actor"] for r in own} == {"a-radiologist"}
    assert "b-admin" not in body and "SECRET" not in body


def test_the_export_refuses_a_bad_filter(clients: dict[str, Client], events: None) -> None:
    response = clients["admin"].get("/audit/export.csv?date_from=yesterday")
    assert response.status_code == 400
    assert "Enter a valid date." in response.content.decode()


def test_the_export_never_hands_a_spreadsheet_a_formula(
    clients: dict[str, Client], hospital: Hospital
) -> None:
    do_record(
        hospital=hospital,
        actor="a-admin",
        actor_kind=ActorKind.USER,
        action=Action.WEB_QUERY,
        patient_id="=HYPERLINK(1)",
    )
    response = clients["admin"].get("/audit/export.csv?action=dicomweb.query")
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    (row,) = list(csv.DictReader(io.StringIO(body)))
    assert row["patient_id"] == "'=HYPERLINK(1)"


def test_a_system_administrator_sees_every_hospital(
    clients: dict[str, Client], events: None
) -> None:
    page = clients["system"].get("/audit/").content.decode()
    assert "b-admin" in page and "a-radiologist" in page
    assert '<th scope="col">Hospital</th>' in page
    assert "Showing every hospital." in page
