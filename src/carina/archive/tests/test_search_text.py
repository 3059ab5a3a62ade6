"""The studies' free text over ``Study.search_text`` finds exactly the studies that the name
rule (``text_q``) finds in the patient's name or ID, the accession number or the study
description — on SQLite and PostgreSQL — and the column follows the rows it is made of, as
does the copy of the patient's name the sort by name reads."""

from __future__ import annotations

import pytest
from django.db.models import Q

from carina.archive.filters import StudyFilterSet, search_text_q, text_q
from carina.archive.models import Patient, Study, search_text
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db

ROWS = [
    # patient name, patient ID, accession, description
    ("O'Brien^Jane", "p-7", "A1", "Knee left"),
    ("ÉLODIE^Marie", "P-8", "ACC%77", "IRM genou"),
    ("SMITH^JOHN", "ab_c", "X\\Y", "CT [chest] (contrast)"),
    ("", "", "", ""),
    ("van der Berg^Anna", "12345", "1234", "ÜBER Knee"),
]

QUERIES = [
    "jane",
    "JANE",
    "o'br",
    "n^jane",
    "jane p",
    "p-7",
    "P-7",
    "acc%",
    "%77",
    "_",
    "ab_c",
    "x\\y",
    "[chest]",
    "(contrast",
    "élo",
    "ÉLO",
    "über",
    "ÜBER",
    "knee",
    "e l",
    "234",
    "O'BRIEN*",
    "*KNEE",
    "*knee*",
    "k?ee*",
    "*jane*p-7*",
    "?-?",
    "*",
    "**",
    "smith^john",
    "SMITH^J*",
    "a",
    "1",
    " ",
]


def old_free_text(value: str) -> Q:
    """The free text as it was: the name rule over each value, through the patient."""
    return (
        text_q("patient__patient_name", value)
        | text_q("patient__patient_id", value)
        | text_q("accession_number", value)
        | text_q("study_description", value)
    )


@pytest.fixture
def studies(hospital: Hospital) -> list[Study]:
    made = []
    for number, (name, pid, accession, description) in enumerate(ROWS):
        patient = Patient.objects.create(
            hospital=hospital, patient_id=pid or f"noid{number}", patient_name=name
        )
        if not pid:
            patient.patient_id = ""
            patient.save()
        made.append(
            Study.objects.create(
                hospital=hospital,
                patient=patient,
                study_instance_uid=f"1.2.3.{number}",
                accession_number=accession,
                study_description=description,
            )
        )
    return made


@pytest.mark.parametrize("value", QUERIES)
def test_the_search_column_finds_what_the_four_values_find(
    studies: list[Study], hospital: Hospital, value: str
) -> None:
    rows = Study.objects.for_hospital(hospital)
    expected = set(rows.filter(old_free_text(value)).values_list("pk", flat=True))
    found = set(rows.filter(search_text_q(value)).values_list("pk", flat=True))
    assert found == expected


def test_the_column_follows_the_study_and_its_patient(studies: list[Study]) -> None:
    study = studies[0]
    study.refresh_from_db()
    assert study.search_text == search_text(["o'brien^jane", "p-7", "a1", "knee left"])
    study.study_description = "Hip"
    study.save(update_fields=["study_description"])
    study.refresh_from_db()
    assert "\x1fhip\x1f" in study.search_text
    # The ingest's count updates leave it as it is (no patient read).
    study.number_of_instances = 3
    study.save(update_fields=["number_of_instances"])
    patient = study.patient
    patient.patient_name = "Murphy^Jane"
    patient.patient_id = "Q-1"
    patient.save(update_fields=["patient_name", "patient_id"])
    study.refresh_from_db()
    assert study.search_text == search_text(["murphy^jane", "q-1", "a1", "hip"])
    assert study.sort_patient_name == "Murphy^Jane"


def test_sorting_by_patient_name_follows_the_patients(
    studies: list[Study], hospital: Hospital
) -> None:
    rows = Study.objects.for_hospital(hospital)

    def by_name(ordering: str) -> list[int]:
        return [s.pk for s in StudyFilterSet({"ordering": ordering}, queryset=rows).qs]

    def through_the_patient(*ordering: str) -> list[int]:
        return list(rows.order_by(*ordering).values_list("pk", flat=True))

    # The same order as sorting by the patient's own row (the database's collation).
    assert by_name("patient_name") == through_the_patient("patient__patient_name", "pk")
    assert by_name("-patient_name") == through_the_patient("-patient__patient_name", "-pk")
    patient = studies[2].patient
    patient.patient_name = "AAA^FIRST"
    patient.save()
    assert by_name("patient_name") == through_the_patient("patient__patient_name", "pk")
    assert by_name("patient_name")[1] == studies[2].pk  # after the empty name


def test_a_value_holding_the_separator_matches_nothing(studies: list[Study]) -> None:
    assert not Study.unscoped.filter(search_text_q("jane\x1fp-7")).exists()
