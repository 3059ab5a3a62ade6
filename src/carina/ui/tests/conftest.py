"""Fixtures for the web application's tests: a user of each role in two hospitals, Django test
clients signed in as them, and studies stored through the ingest pipeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from pydicom.uid import generate_uid

from carina.accounts.actions import do_create_admin
from carina.archive.ingest.pipeline import Origin, ingest
from carina.archive.models import Source
from carina.core.testing import make_ct_slice
from carina.tenancy.models import Hospital

PASSWORD = "Carina-test-pw-1"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """Hash test passwords cheaply (the tests create many users)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(username: str, hospital: Hospital | None, role: str | None = None) -> Any:
    user, _ = do_create_admin(username, PASSWORD, hospital, role=role)
    return user


@pytest.fixture
def users(hospital: Hospital, other_hospital: Hospital) -> dict[str, Any]:
    """One user per role in the default hospital, an administrator and a radiologist of the
    other hospital, and a system administrator."""
    return {
        "admin": make_user("a-admin", hospital, "hospital_admin"),
        "radiologist": make_user("a-radiologist", hospital, "radiologist"),
        "technologist": make_user("a-technologist", hospital, "technologist"),
        "physician": make_user("a-physician", hospital, "physician"),
        "other_admin": make_user("b-admin", other_hospital, "hospital_admin"),
        "other_radiologist": make_user("b-radiologist", other_hospital, "radiologist"),
        "system": make_user("root", None),
    }


@pytest.fixture
def clients(users: dict[str, Any]) -> dict[str, Client]:
    """A test client signed in (session cookie) as each user."""
    signed_in = {}
    for name, user in users.items():
        client = Client()
        client.force_login(user)
        signed_in[name] = client
    return signed_in


@dataclass
class StoredStudy:
    study_uid: str
    series_uids: list[str]
    sop_uids: list[str]
    patient_id: str
    patient_name: str
    files: list[Path] = field(default_factory=list)


StoreStudy = Callable[..., StoredStudy]


@pytest.fixture
def store_study(tmp_path: Path, hospital: Hospital) -> StoreStudy:
    """``store_study(hospital=…, series=[("CT", 2)], patient_name=…, StudyDate=…)``: a study
    of small synthetic images, ingested as an import would."""
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
                    extra={
                        "SeriesNumber": number,
                        "SeriesDescription": f"{modality} series {number}",
                        **attributes,
                    },
                )
                path = tmp_path / f"obj{next(counter):06d}.dcm"
                ds.save_as(path, enforce_file_format=True)
                ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, "ui test"))
                stored.sop_uids.append(str(ds.SOPInstanceUID))
                stored.files.append(path)
        return stored

    return _store


def da(day: dt.date) -> str:
    """A date as DICOM DA."""
    return day.strftime("%Y%m%d")
