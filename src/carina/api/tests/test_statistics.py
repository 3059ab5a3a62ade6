"""``/api/statistics/``: the current hospital's figures, and nothing of another hospital's."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.api.tests.conftest import StoredStudy
from carina.archive.models import Study
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def test_statistics_of_the_callers_hospital(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy], hospital: Hospital
) -> None:
    # One study arrived three days ago.
    Study.objects.for_hospital(hospital).filter(
        study_instance_uid=archive["brain"].study_uid
    ).update(received_at=timezone.now() - dt.timedelta(days=3))
    body = clients["physician"].get("/api/statistics/?days=7&recent=5").json()
    files = archive["chest"].files + archive["brain"].files
    size = sum(path.stat().st_size for path in files)
    assert body["hospital"] == "default"
    assert body["totals"] == {
        "patients": 2,
        "studies": 2,
        "series": 3,
        "instances": 7,
        "bytes": size,
    }
    per_day = body["studies_per_day"]
    assert len(per_day) == 7
    today = timezone.now().astimezone(dt.UTC).date()
    assert per_day[-1] == {"date": today.isoformat(), "studies": 1}
    assert per_day[-4] == {"date": (today - dt.timedelta(days=3)).isoformat(), "studies": 1}
    assert sum(day["studies"] for day in per_day) == 2
    assert body["modalities"] == [
        {
            "modality": "CT",
            "studies": 1,
            "series": 2,
            "instances": 5,
            "bytes": sum(p.stat().st_size for p in archive["chest"].files),
        },
        {
            "modality": "MR",
            "studies": 1,
            "series": 1,
            "instances": 2,
            "bytes": sum(p.stat().st_size for p in archive["brain"].files),
        },
    ]
    assert body["storage"] == {"bytes": size, "bytes_last_30_days": size}
    recent = body["recent_studies"]
    assert [s["study_instance_uid"] for s in recent] == [
        archive["chest"].study_uid,
        archive["brain"].study_uid,
    ]
    assert recent[0]["patient_name"] == "DOE^JANE"
    assert "SECRET" not in str(body) and archive["secret"].study_uid not in str(body)


def test_statistics_defaults_and_limits(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    body = clients["physician"].get("/api/statistics/").json()
    assert body["days"] == 30 and len(body["studies_per_day"]) == 30
    for query in ("days=0", "days=367", "days=many", "recent=101"):
        response = clients["physician"].get(f"/api/statistics/?{query}")
        assert response.status_code == 400, query
        assert query.split("=")[0] in response.json()
    assert (
        len(clients["physician"].get("/api/statistics/?days=366").json()["studies_per_day"]) == 366
    )


def test_other_hospital_sees_its_own_figures(
    clients: dict[str, APIClient], archive: dict[str, StoredStudy]
) -> None:
    body = clients["other_admin"].get("/api/statistics/").json()
    assert body["hospital"] == "other"
    assert body["totals"]["studies"] == 1 and body["totals"]["instances"] == 2
    assert [m["modality"] for m in body["modalities"]] == ["CT"]
