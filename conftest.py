"""Fixtures shared by every test: a per-test blob store and staging folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from carina.archive.storage import BlobStorage, get_storage, reset_storage
from carina.config.env import StorageLocation


@pytest.fixture(autouse=True)
def carina_storage(settings, tmp_path: Path) -> Iterator[Path]:
    """Each test gets its own blob folder and staging folder under tmp_path."""
    settings.CARINA_STORAGE = StorageLocation(scheme="file", path=tmp_path / "blobs")
    settings.CARINA_STAGING_DIR = tmp_path / "staging"
    reset_storage()
    yield tmp_path
    reset_storage()


@pytest.fixture(autouse=True)
def _fresh_request_counters() -> None:
    """Rate-limit counters live in files under CARINA_HOME and would carry from one test to
    the next: each test starts with none."""
    from carina.ops.throttling import reset_throttles

    reset_throttles()


@pytest.fixture
def storage() -> BlobStorage:
    return get_storage()


@pytest.fixture
def hospital(db):  # type: ignore[no-untyped-def]
    """The default hospital. The first migration creates it; transactional tests flush every
    table afterwards, so it is put back the way the migration makes it."""
    from django.conf import settings

    from carina.tenancy.actions import do_add_hospital
    from carina.tenancy.models import Hospital

    if not Hospital.objects.filter(slug="default").exists():
        hospital, _ = do_add_hospital("default", "Default hospital", [settings.CARINA_AE_TITLE])
        hospital.unknown_calling_ae_policy = "accept"
        hospital.save()
    return Hospital.objects.get(slug="default")


@pytest.fixture
def other_hospital(db):  # type: ignore[no-untyped-def]
    from carina.tenancy.actions import do_add_hospital

    hospital, _ = do_add_hospital("other", "Other hospital", ["OTHERAE"])
    return hospital
