"""The embedded database's planner statistics (carina.archive.planner): once refreshed,
SQLite reads a series' images and a patient's studies through their own indexes instead of
walking every row of the hospital (what made an exact PatientID search and a series
thumbnail slow at 100,000 studies)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from carina.archive.ingest import Origin, ingest
from carina.archive.models import Instance, Series, Source, Study
from carina.archive.planner import refresh_planner_statistics
from carina.core.testing import write_series
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def test_after_a_refresh_a_series_and_a_patient_are_read_by_their_own_index(
    tmp_path: Path, hospital: Hospital
) -> None:
    for n in range(4):
        for path in write_series(tmp_path / str(n), 3, patient_id=f"P{n}"):
            ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    series = Series.objects.for_hospital(hospital).order_by("id").first()
    images = Instance.objects.for_hospital(hospital).filter(series=series, rows__isnull=False)
    studies = Study.objects.for_hospital(hospital).filter(patient__patient_id="P2")

    refreshed = refresh_planner_statistics()

    if connection.vendor != "sqlite":
        assert refreshed is False  # PostgreSQL keeps its own statistics (autovacuum)
        return
    assert refreshed is True
    assert "series" in images.explain()  # archive_ins_series__…_idx, not the hospital's
    plan = studies.explain()
    # The patient is found by its ID first, then its studies by their patient column.
    assert "archive_patient USING" in plan and "patient_id=?" in plan
    assert images.count() == 3 and studies.count() == 1
