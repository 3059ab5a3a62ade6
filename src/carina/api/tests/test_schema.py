"""The OpenAPI schema (``/api/schema/``): it generates without warnings for the API's views,
validates against the OpenAPI 3 specification, documents every operation's errors; Swagger
UI and ReDoc load everything from our own origin."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    GENERATOR_STATS.reset()
    GENERATOR_STATS.enable_trace_lineno()
    generator = SchemaGenerator()  # type: ignore[no-untyped-call]
    generated: dict[str, Any] = generator.get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    return generated


def test_schema_generates_without_warnings_and_validates(schema: dict[str, Any]) -> None:
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert problems == []
    validate_schema(schema)  # type: ignore[no-untyped-call]  # raises on a schema that breaks the OpenAPI 3 specification


def api_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith("/api/") and not path.startswith("/api/auth/")
        for method, operation in item.items()
    ]


def test_every_operation_is_described_with_its_errors(schema: dict[str, Any]) -> None:
    operations = api_operations(schema)
    paths = {path for path, _, _ in operations}
    for expected in (
        "/api/hospitals/",
        "/api/users/",
        "/api/memberships/",
        "/api/patients/",
        "/api/studies/",
        "/api/studies/{uid}/",
        "/api/studies/{uid}/series/",
        "/api/studies/{uid}/images/",
        "/api/studies/{uid}/zip/",
        "/api/series/{uid}/instances/",
        "/api/series/{uid}/zip/",
        "/api/instances/{uid}/",
        "/api/instances/{uid}/metadata/",
        "/api/instances/{uid}/file/",
        "/api/uploads/",
        "/api/uploads/{id}/",
        "/api/nodes/",
        "/api/statistics/",
        "/api/audit/",
        "/api/audit/{id}/",
        "/api/audit/export.csv",
    ):
        assert expected in paths
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation.get("summary") or operation.get("description"), where
        codes = set(operation["responses"])
        assert {"401", "403"} <= codes, where
        if "{" in path:
            assert "404" in codes, where
        if method in {"post", "put", "patch"}:
            assert "400" in codes, where
        for code, answer in operation["responses"].items():
            assert answer.get("description"), f"{where} {code}"


def test_study_search_parameters_are_documented(schema: dict[str, Any]) -> None:
    parameters = {p["name"] for p in schema["paths"]["/api/studies/"]["get"]["parameters"]}
    assert {
        "patient_id",
        "patient_name",
        "accession",
        "modality",
        "date_from",
        "date_to",
        "q",
        "ordering",
        "limit",
        "offset",
    } <= parameters


@pytest.mark.django_db
def test_schema_is_served() -> None:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/studies/" in response.json()["paths"]


URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_documentation_pages_load_from_our_own_origin(page: str) -> None:
    client = Client()
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn" not in html.lower()
    urls = [a or b for a, b in URL.findall(html)]
    assert urls, "the page refers to its scripts and styles"
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), url
        if url.startswith("/static/"):
            asset = client.get(url)
            assert asset.status_code == 200, url
            parts = getattr(asset, "streaming_content", None) if asset.streaming else None
            body = b"".join(parts) if parts is not None else asset.content
            assert body
    scripts = re.findall(r"https?://[^\s\"'<>]+", html)
    assert [s for s in scripts if "testserver" not in s] == []


@pytest.mark.django_db
def test_sign_in_errors_of_the_framework_carry_a_code_as_documented(
    schema: dict[str, Any],
) -> None:
    """Malformed JSON and a body type the route does not read are refused by Django REST
    Framework itself; on the sign-in routes they still carry the documented ``code``."""
    refusal = schema["components"]["schemas"]["Refusal"]
    assert set(refusal["required"]) == {"detail", "code"}
    client = Client()
    malformed = client.post("/api/auth/token/", "{not json", content_type="application/json")
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "parse_error" and malformed.json()["detail"]
    unsupported = client.post("/api/auth/token/refresh/", "x", content_type="text/plain")
    assert unsupported.status_code == 415
    assert unsupported.json()["code"] == "unsupported_media_type"
    answers = schema["paths"]["/api/auth/token/refresh/"]["post"]["responses"]
    assert {"400", "401", "413", "415", "429"} <= set(answers)


@pytest.mark.django_db
def test_a_nul_character_is_a_documented_400_on_every_operation(schema: dict[str, Any]) -> None:
    for path, method, operation in api_operations(schema):
        assert "400" in operation["responses"], f"{method.upper()} {path}"
    response = Client().get("/api/studies/%00/")
    assert response.status_code == 400
    refused = schema["components"]["schemas"]["RequestRefused"]
    assert set(response.json()) == set(refused["required"])
