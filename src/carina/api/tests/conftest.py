"""Fixtures for REST API tests: users of each role in two hospitals, clients signed in as
them (session cookie, or a Bearer JWT), and a small archive in each hospital stored through
the ingest pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.accounts.actions import do_create_admin
from carina.archive.ingest.pipeline import IngestResult, Origin, ingest
from carina.archive.models import Source
from carina.core.testing import make_ct_slice
from carina.tenancy.models import Hospital

# The shared resource test cases assert in a module that is not itself a test module.
pytest.register_assert_rewrite("carina.api.tests.resource_cases")

PASSWORD = "Carina-test-pw-1"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """Hash test passwords cheaply (the tests create many users)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(username: str, hospital: Hospital | None, role: str | None = None) -> Any:
    """A user with ``role`` in ``hospital`` (no hospital: a system administrator)."""
    user, _ = do_create_admin(username, PASSWORD, hospital, role=role)
    return user


def client_for(user: Any, *, bearer: bool = False) -> APIClient:
    """An API client signed in as ``user``: with the session cookie, or a Bearer JWT from
    ``/api/auth/token/``."""
    client = APIClient()
    if bearer:
        answer = APIClient().post(
            "/api/auth/token/",
            {"username": user.get_username(), "password": PASSWORD},
            format="json",
        )
        assert answer.status_code == 200, answer.content
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {answer.json()['access']}")
    else:
        client.force_login(user)
    return client


@pytest.fixture
def users(hospital: Hospital, other_hospital: Hospital) -> dict[str, Any]:
    """One user per role in the default hospital, an administrator of the other hospital,
    and a system administrator."""
    return {
        "admin": make_user("a-admin", hospital, "hospital_admin"),
        "radiologist": make_user("a-radiologist", hospital, "radiologist"),
        "technologist": make_user("a-technologist", hospital, "technologist"),
        "physician": make_user("a-physician", hospital, "physician"),
        "other_admin": make_user("b-admin", other_hospital, "hospital_admin"),
        "system": make_user("root", None),
    }


@pytest.fixture
def clients(users: dict[str, Any]) -> dict[str, APIClient]:
    return {name: client_for(user) for name, user in users.items()}


@dataclass
class StoredStudy:
    """A study stored for a test, with its files."""

    study_uid: str
    series_uids: list[str]
    sop_uids: list[str]
    patient_id: str
    patient_name: str
    files: list[Path] = field(default_factory=list)
    results: list[IngestResult] = field(default_factory=list)


StoreStudy = Callable[..., StoredStudy]


@pytest.fixture
def store_study(tmp_path: Path, hospital: Hospital) -> StoreStudy:
    """``store_study(hospital=…, series=[("CT", 3), ("SR", 1)], **attributes)``: a study of
    synthetic images ingested as an import would."""
    counter = iter(range(1_000_000))

    def _store(
        hospital: Hospital = hospital,
        *,
        series: list[tuple[str, int]] | None = None,
        patient_id: str = "PID001",
        patient_name: str = "DOE^JANE",
        study_uid: str | None = None,
        **attributes: Any,
    ) -> StoredStudy:
        from pydicom.uid import generate_uid

        study = study_uid or generate_uid()
        stored = StoredStudy(study, [], [], patient_id, patient_name)
        for number, (modality, count) in enumerate(series or [("CT", 2)], start=1):
            series_uid = generate_uid()
            stored.series_uids.append(series_uid)
            for index in range(count):
                ds = make_ct_slice(
                    study_uid=study,
                    series_uid=series_uid,
                    index=index,
                    size=16,
                    patient_id=patient_id,
                    patient_name=patient_name,
                    modality=modality,
                    extra={"SeriesNumber": number, **attributes},
                )
                path = tmp_path / f"obj{next(counter):06d}.dcm"
                ds.save_as(path, enforce_file_format=True)
                result = ingest(
                    path, hospital=hospital, origin=Origin(Source.IMPORT, "test"), name=path.name
                )
                stored.sop_uids.append(result.sop_instance_uid)
                stored.files.append(path)
                stored.results.append(result)
        return stored

    return _store


@pytest.fixture
def archive(
    store_study: StoreStudy, hospital: Hospital, other_hospital: Hospital
) -> dict[str, StoredStudy]:
    """Two studies in the default hospital, one in the other hospital."""
    return {
        "chest": store_study(
            hospital,
            series=[("CT", 3), ("CT", 2)],
            patient_id="PID001",
            patient_name="DOE^JANE",
            StudyDate="20261120",
            AccessionNumber="ACC001",
            StudyDescription="CT CHEST",
        ),
        "brain": store_study(
            hospital,
            series=[("MR", 2)],
            patient_id="PID002",
            patient_name="SMITH^JOHN",
            StudyDate="20261001",
            AccessionNumber="ACC002",
            StudyDescription="MR BRAIN",
        ),
        "secret": store_study(
            other_hospital,
            series=[("CT", 2)],
            patient_id="PIDB01",
            patient_name="SECRET^BOB",
            StudyDate="20261115",
            AccessionNumber="ACCB01",
            StudyDescription="CT SECRET",
        ),
    }


__all__ = ["PASSWORD", "StoredStudy", "client_for", "make_user"]
