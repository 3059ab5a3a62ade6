"""Limits of the REST API: request rates answered 429 with Retry-After, and bodies over
their limit answered 413 with a message saying what to do."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.api.tests.conftest import PASSWORD, client_for, make_user
from carina.ops.throttling import reset_throttles
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings: Any) -> Iterator[None]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    reset_throttles()
    yield
    reset_throttles()


def rates(settings: Any, **rates: str) -> None:
    """Small rates for a test (read at each request)."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "1000/min", "user": "1000/min", "upload": "1000/min"}
        | rates,
    }


def test_a_user_over_the_rate_is_answered_429_with_retry_after(
    settings: Any, hospital: Hospital
) -> None:
    rates(settings, user="3/min")
    client = client_for(make_user("busy", hospital, "radiologist"))
    assert [client.get("/api/studies/").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/studies/")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith("Request was throttled. Expected available in")
    # Another user has their own count.
    other = client_for(make_user("calm", hospital, "radiologist"))
    assert other.get("/api/studies/").status_code == 200


def test_anonymous_callers_are_counted_per_address(settings: Any, hospital: Hospital) -> None:
    rates(settings, anon="2/min")
    make_user("someone", hospital, "radiologist")
    here, there = APIClient(REMOTE_ADDR="10.0.0.1"), APIClient(REMOTE_ADDR="10.0.0.2")
    wrong = {"username": "someone", "password": "wrong"}
    for _ in range(2):
        assert here.post("/api/auth/token/", wrong, format="json").status_code == 401
    refused = here.post(
        "/api/auth/token/",
        {"username": "someone", "password": PASSWORD},
        format="json",
        HTTP_X_FORWARDED_FOR="10.99.99.99",  # not trusted: REMOTE_ADDR counts
    )
    assert refused.status_code == 429 and "Retry-After" in refused
    assert there.post("/api/auth/token/", wrong, format="json").status_code == 401


def test_uploads_have_their_own_rate_for_posts_only(settings: Any, hospital: Hospital) -> None:
    rates(settings, upload="1/min")
    client = client_for(make_user("uploader", hospital, "technologist"))
    first = client.post("/api/uploads/", {"files": [io.BytesIO(b"not dicom")]}, format="multipart")
    assert first.status_code == 400  # refused object, but the request counted
    second = client.post("/api/uploads/", {"files": [io.BytesIO(b"not dicom")]}, format="multipart")
    assert second.status_code == 429 and "Retry-After" in second
    # Reading uploads (polling progress) is not an upload.
    assert [client.get("/api/uploads/").status_code for _ in range(3)] == [200, 200, 200]


def test_a_json_body_over_the_limit_is_answered_413(settings: Any, hospital: Hospital) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = client_for(make_user("writer", hospital, "hospital_admin"))
    body = json.dumps({"name": "n", "description": "x" * 2000})
    answer = client.post("/api/nodes/", body, content_type="application/json")
    assert answer.status_code == 413
    assert answer.json() == {
        "detail": "The request body (2.0 KiB) is larger than this server's limit of 1000 bytes "
        "for JSON and form data. Files go to POST /api/uploads/ (multipart/form-data) or to "
        "STOW-RS at /dicomweb/studies.",
        "limit_bytes": 1000,
    }


def test_form_fields_over_the_limit_are_answered_413(settings: Any) -> None:
    """Django's own check (the text fields of a multipart form) answers 413 as well."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    # (The test client sends multipart/form-data.)
    answer = Client().post("/accounts/login/", {"username": "u" * 3000, "password": "p"})
    assert answer.status_code == 413
    assert answer.json() == {
        "detail": "The request's data (not counting uploaded files) is larger than this "
        "server's limit of 1000 bytes; send less, or files as multipart/form-data.",
        "limit_bytes": 1000,
    }


def test_an_upload_over_its_limit_is_answered_413(settings: Any, hospital: Hospital) -> None:
    settings.CARINA_UPLOAD_MAX_BYTES = 4096
    client = client_for(make_user("big", hospital, "technologist"))
    answer = client.post(
        "/api/uploads/", {"files": [io.BytesIO(b"\0" * 10_000)]}, format="multipart"
    )
    assert answer.status_code == 413
    assert answer.json()["detail"].startswith("The upload (9.9 KiB) is larger than this server's")
    assert answer.json()["limit_bytes"] == 4096
    # Under the limit, a file far larger than the in-memory limit goes through.
    settings.CARINA_UPLOAD_MAX_BYTES = 1 << 30
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    accepted = client.post(
        "/api/uploads/", {"files": [io.BytesIO(b"\0" * 10_000)]}, format="multipart"
    )
    assert accepted.status_code == 400  # read and refused as not DICOM, not as too large
    assert "not a DICOM" in str(accepted.json())


def test_too_many_files_are_answered_413(settings: Any, hospital: Hospital) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    client = client_for(make_user("many", hospital, "technologist"))
    files = [io.BytesIO(b"x") for _ in range(3)]
    answer = client.post("/api/uploads/", {"files": files}, format="multipart")
    assert answer.status_code == 413
    assert answer.json()["detail"] == (
        "The upload has more than 2 files; send a ZIP archive of them, or several uploads."
    )


@pytest.mark.django_db
def test_a_nul_character_in_the_address_is_a_clear_400(client: Any) -> None:
    """PostgreSQL cannot store NUL: it must never reach a query (it would be a 500)."""
    for url in (
        "/api/studies/1.2.3%00/",
        "/api/series/?modality=C%00T",
        "/dicomweb/studies?PatientName=A%00",
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert "NUL" in response.json()["error"]
    response = client.post(
        "/api/auth/token/",
        data='{"username": "a\\u0000b", "password": "x"}',
        content_type="application/json",
    )
    assert response.status_code == 400 and "NUL" in response.json()["error"]
