"""Fixtures for archive tests: a snapshot of everything the archive holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from carina.archive.models import DemographicsMismatch, Instance, Patient, Series, Study
from carina.archive.storage import get_storage

Snapshot = dict[str, object]


def archive_snapshot() -> Snapshot:
    """Rows, counts and blobs of every hospital, and what is left in the staging folder."""
    staging = Path(settings.CARINA_STAGING_DIR)
    return {
        "patients": sorted(Patient.objects.all_hospitals().values_list("pk", "patient_name")),
        "studies": sorted(
            Study.objects.all_hospitals().values_list(
                "pk",
                "number_of_series",
                "number_of_instances",
                "size_bytes",
                "modalities_in_study",
            )
        ),
        "series": sorted(Series.objects.all_hospitals().values_list("pk", "number_of_instances")),
        "instances": sorted(Instance.objects.all_hospitals().values_list("pk", "sha256")),
        "mismatches": DemographicsMismatch.objects.all_hospitals().count(),
        "blobs": sorted(get_storage().iter_keys()),
        "staging": sorted(p.name for p in staging.glob("*")) if staging.exists() else [],
    }


@pytest.fixture
def snapshot() -> Callable[[], Snapshot]:
    return archive_snapshot
