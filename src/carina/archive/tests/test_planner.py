"""The embedded database's planner statistics (carina.archive.planner): once refreshed,
SQLite reads a series' images and a patient's studies through their own indexes instead of
walking every row of the hospital (what made an exact PatientID search and a series
thumbnail slow at 100,000 studies)."""

from __future__ import annotations

import sqlite3
import uuid
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


@pytest.mark.django_db(transaction=True)
def test_a_connection_opened_before_the_refresh_plans_with_the_new_statistics(
    tmp_path: Path, hospital: Hospital
) -> None:
    """The web server keeps its connections for minutes: they must not go on planning
    without the statistics a refresh (hourly, or after an import) has just gathered."""
    if connection.vendor != "sqlite":
        assert refresh_planner_statistics() is False
        return
    for n in range(4):
        for path in write_series(tmp_path / str(n), 3, patient_id=f"P{n}"):
            ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    patient_pk = Study.objects.for_hospital(hospital).values_list("patient_id", flat=True)[0]
    # The studies of one patient, newest first: by the patient index once SQLite knows that a
    # patient has few studies, by the hospital's date index (every study) before.
    query = (
        "SELECT id FROM archive_study WHERE hospital_id = ? AND patient_id IN (?)"
        " ORDER BY study_date DESC, study_time DESC, id DESC"
    )
    refresh_planner_statistics()
    with connection.cursor() as cursor:  # statistics emptied: a change of data, not schema
        cursor.execute("DELETE FROM sqlite_stat1")
    other = sqlite3.connect(connection.settings_dict["NAME"])
    try:

        def plan() -> str:
            # A statement that reads the database first, as the server's queries do: that is
            # when a connection notices a changed schema. The plan is then asked for with a
            # text of its own each time, so that no statement prepared before is reused.
            other.execute(query, (hospital.pk, patient_pk)).fetchall()
            explain = f"EXPLAIN QUERY PLAN {query} -- {uuid.uuid4().hex}"
            rows = other.execute(explain, (hospital.pk, patient_pk))
            return " ".join(str(row[-1]) for row in rows)

        assert "(patient_id=?)" not in plan()  # read the schema, without statistics
        assert refresh_planner_statistics() is True
        assert "(patient_id=?)" in plan()
    finally:
        other.close()
