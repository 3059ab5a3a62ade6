"""``/api/studies/?status=receiving|stored`` (the study status shared with the worklist,
:mod:`carina.archive.status`) and the free-text search ``q`` over ``Study.search_text``:
the same studies as matching each value, ignoring A–Z case only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.api.tests.conftest import StoredStudy, StoreStudy
from carina.archive.models import Patient, Study
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def uids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["study_instance_uid"] for row in response.json()["results"]]


def age(hospital: Hospital, study_uid: str, minutes: float) -> None:
    """Make the study's last arrival ``minutes`` old."""
    Study.objects.for_hospital(hospital).filter(study_instance_uid=study_uid).update(
        updated_at=timezone.now() - dt.timedelta(minutes=minutes)
    )


def test_status_filter_receiving_and_stored(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], hospital: Hospital
) -> None:
    client = clients["physician"]
    chest, brain = archive["chest"].study_uid, archive["brain"].study_uid
    # Both just arrived: receiving.
    assert uids(client.get("/api/studies/?status=receiving")) == [chest, brain]
    assert uids(client.get("/api/studies/?status=stored")) == []
    # Nothing arrived for brain for 6 minutes (the window is 5): stored.
    age(hospital, brain, 6)
    assert uids(client.get("/api/studies/?status=receiving")) == [chest]
    assert uids(client.get("/api/studies/?status=stored")) == [brain]
    # Each study says its status, in the list and on its own.
    listed = client.get("/api/studies/").json()["results"]
    assert {row["study_instance_uid"]: row["status"] for row in listed} == {
        chest: "receiving",
        brain: "stored",
    }
    assert client.get(f"/api/studies/{brain}/").json()["status"] == "stored"
    # Combined with another filter; the other hospital's study is never listed.
    assert uids(client.get("/api/studies/?status=stored&modality=CT")) == []
    age(hospital, chest, 60)
    assert uids(client.get("/api/studies/?status=stored")) == [chest, brain]


def test_a_new_object_makes_a_stored_study_receiving_again(
    clients: dict[str, APIClient], store_study: StoreStudy, hospital: Hospital
) -> None:
    study = store_study(patient_id="P-ST", StudyDate="20261101")
    age(hospital, study.study_uid, 30)
    assert uids(clients["physician"].get("/api/studies/?status=stored")) == [study.study_uid]
    store_study(patient_id="P-ST", study_uid=study.study_uid, series=[("CT", 1)])
    assert uids(clients["physician"].get("/api/studies/?status=receiving")) == [study.study_uid]


def test_an_unknown_status_is_400_naming_the_values(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    response = clients["physician"].get("/api/studies/?status=reported")
    assert response.status_code == 400
    body = response.json()
    assert "status" in body
    assert "'reported'" in str(body["status"]) and "receiving or stored" in str(body["status"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=jane", ["mixed"]),  # the name, any A–Z case
        ("q=o'br", ["mixed"]),  # punctuation is literal
        ("q=ÉLO", ["accent"]),  # non-ASCII letters keep their case
        ("q=élo", []),
        ("q=p-7", ["mixed"]),  # the patient ID, any A–Z case
        ("q=acc%2577", ["percent"]),  # % is a plain character, not SQL's wild card
        ("q=acc_", []),  # so is _
        ("q=knee", ["mixed"]),  # the description
        ("q=n^jane", ["mixed"]),
        ("q=jane p", []),  # a value never runs into the next one
        ("q=O'BRIEN*", ["mixed"]),  # a wild card over one whole value
        ("q=*LEFT", ["mixed"]),
        ("q=k?ee*", ["mixed"]),
        ("q=*jane*p-7*", []),  # a wild card never spans two values
        ("q=*", ["percent", "accent", "mixed"]),
    ],
)
def test_free_text_matches_each_value_ignoring_ascii_case(
    clients: dict[str, APIClient],
    store_study: StoreStudy,
    query: str,
    expected: list[str],
) -> None:
    studies = {
        "mixed": store_study(
            patient_id="p-7",
            patient_name="O'Brien^Jane",
            StudyDate="20261103",
            AccessionNumber="A1",
            StudyDescription="Knee left",
        ),
        "accent": store_study(
            patient_id="P-8",
            patient_name="ÉLODIE^MARIE",
            StudyDate="20261102",
            AccessionNumber="A2",
        ),
        "percent": store_study(
            patient_id="P-9",
            patient_name="X^Y",
            StudyDate="20261101",
            AccessionNumber="ACC%77",
        ),
    }
    found = uids(clients["physician"].get(f"/api/studies/?{query}&ordering=received"))
    assert sorted(found) == sorted(studies[name].study_uid for name in expected)


def test_free_text_follows_a_patient_renamed(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], hospital: Hospital
) -> None:
    patient = Patient.objects.for_hospital(hospital).get(patient_id="PID002")
    patient.patient_name = "JONES^JOHN"
    patient.save()
    client = clients["physician"]
    assert uids(client.get("/api/studies/?q=jones")) == [archive["brain"].study_uid]
    assert uids(client.get("/api/studies/?q=smith")) == []
