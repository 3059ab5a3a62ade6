"""Queries on hospital-owned rows must be scoped; a forgotten scope fails loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from carina.archive.ingest import Origin, ingest
from carina.archive.models import Instance, Patient, Series, Source, Study
from carina.core.testing import write_series
from carina.tenancy.actions import TenancyError, do_add_hospital
from carina.tenancy.lookups import hospital_for_called_ae
from carina.tenancy.managers import UnscopedQueryError
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def test_default_hospital_exists_after_migration_and_answers_to_the_ae_title() -> None:
    hospital = Hospital.objects.get(slug="default")
    assert list(hospital.ae_titles.values_list("ae_title", flat=True)) == [settings.CARINA_AE_TITLE]
    assert hospital.unknown_calling_ae_policy == "accept"
    assert hospital.duplicate_policy == "reject"
    assert hospital_for_called_ae(settings.CARINA_AE_TITLE) == hospital


@pytest.mark.parametrize("model", [Patient, Study, Series, Instance])
@pytest.mark.parametrize(
    "query",
    [
        lambda m: list(m.objects.all()),
        lambda m: m.objects.filter(pk=1).first(),
        lambda m: m.objects.count(),
        lambda m: m.objects.exists(),
        lambda m: m.objects.get(pk=1),
        lambda m: m.objects.filter(pk=0).update(pk=0),
        lambda m: m.objects.filter(pk=0).delete(),
        lambda m: list(m.objects.values_list("pk", flat=True)),
        lambda m: list(m.objects.iterator()),
    ],
)
def test_forgotten_scope_fails(model: type, query: object) -> None:
    with pytest.raises(UnscopedQueryError, match="without a hospital scope"):
        query(model)  # type: ignore[operator]


def test_scoped_queries_see_only_their_hospital(
    tmp_path: Path, hospital: Hospital, other_hospital: Hospital
) -> None:
    for path in write_series(tmp_path / "a", 2, patient_id="A"):
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    for path in write_series(tmp_path / "b", 3, patient_id="B"):
        ingest(path, hospital=other_hospital, origin=Origin(Source.IMPORT))
    assert Instance.objects.for_hospital(hospital).count() == 2
    assert Instance.objects.for_hospital(other_hospital).count() == 3
    assert list(Patient.objects.for_hospital(hospital).values_list("patient_id", flat=True)) == [
        "A"
    ]
    other_uid = Study.objects.for_hospital(other_hospital).get().study_instance_uid
    assert not Study.objects.for_hospital(hospital).filter(study_instance_uid=other_uid).exists()
    # Relations reached from a scoped row stay inside it.
    study = Study.objects.for_hospital(hospital).get()
    assert study.series.get().instances.count() == 2


def test_ae_title_selects_one_hospital(other_hospital: Hospital) -> None:
    assert hospital_for_called_ae("OTHERAE") == other_hospital
    assert hospital_for_called_ae("NOBODY") is None
    with pytest.raises(TenancyError, match="already belongs to hospital 'other'"):
        do_add_hospital("third", "Third", ["OTHERAE"])
    with pytest.raises(TenancyError, match="not a valid DICOM AE title"):
        do_add_hospital("third", "Third", ["WAY_TOO_LONG_AE_TITLE"])
    assert not Hospital.objects.filter(slug="third").exists()


def test_adding_a_hospital_twice_is_idempotent() -> None:
    first, created = do_add_hospital("north", "North", ["NORTH"])
    again, created_again = do_add_hospital("north", "North Clinic", ["NORTH", "NORTH2"])
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    again.refresh_from_db()
    assert again.name == "North Clinic"
    assert sorted(again.ae_titles.values_list("ae_title", flat=True)) == ["NORTH", "NORTH2"]
