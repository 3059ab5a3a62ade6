"""Hospital isolation, route by route: every URL pattern under ``/api/`` and ``/dicomweb/`` is
called as an administrator of hospital A with the identifiers of hospital B's objects. No
answer may contain B's data, an object route must answer 404 (absent), and B's objects must
be unchanged afterwards.

The routes come from the URL configuration itself (``get_resolver().url_patterns``, walked
recursively), so a route added later is covered without touching this test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.accounts.models import Membership
from carina.api.models import Upload
from carina.api.tests.conftest import StoredStudy
from carina.archive.models import Instance, Patient, Series, Study
from carina.dimse.actions import do_add_node
from carina.dimse.models import RemoteNode
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db

PREFIXES = ("api/", "dicomweb/")
#: Answers an object route of another hospital may give: absent, or method not allowed on
#: that route.
ABSENT = {404, 405}
NOT_A_LEAK = ABSENT | {200, 204, 400, 401, 403, 406, 415}


def walk(
    patterns: list[Any], parts: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], URLPattern]]:
    """Every URL pattern with the chain of patterns leading to it."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, (*parts, entry.pattern))
        elif isinstance(entry, URLPattern):
            yield (*parts, entry.pattern), entry


def fill_regex(regex: str, value: Callable[[str], str]) -> str:
    """A concrete path for a regular-expression route, each named group replaced."""
    out: list[str] = []
    i = 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            close = regex.index(">", i)
            name = regex[i + 4 : close]
            depth, j = 1, close + 1
            while depth:
                if regex[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(regex[j], 0)
                j += 1
            out.append(value(name))
            i = j
        elif regex[i] == "\\":
            out.append(regex[i + 1])
            i += 2
        elif regex[i] in "^$?":
            i += 1
        else:
            out.append(regex[i])
            i += 1
    return "".join(out)


def fill_route(route: str, value: Callable[[str], str]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), route)


def concrete(parts: tuple[Any, ...], value: Callable[[str], str]) -> tuple[str, set[str]]:
    """The path of a pattern chain, and the names of its parameters."""
    names: set[str] = set()

    def record(name: str) -> str:
        names.add(name)
        return value(name)

    path = "".join(
        fill_route(str(p), record)
        if isinstance(p, RoutePattern)
        else fill_regex(p.regex.pattern, record)
        for p in parts
    )
    return "/" + path, names - {"format"}


def model_of(pattern: URLPattern) -> Any:
    cls = getattr(pattern.callback, "cls", None)
    model = getattr(cls, "model", None)
    if model is None:
        queryset = getattr(cls, "queryset", None)
        model = getattr(queryset, "model", None)
    return model


@pytest.fixture
def hospital_b(
    archive: dict[str, StoredStudy], users: dict[str, Any], other_hospital: Hospital
) -> dict[str, Any]:
    """Hospital B's objects of every kind, and the strings that must never reach A."""
    secret = archive["secret"]
    node, _ = do_add_node(
        other_hospital, "b-secret-node", ae_title="BSECRETAE", host="b.example", port=104
    )
    upload = Upload.objects.create(
        hospital=other_hospital, user=users["other_admin"], username="b-admin", status="done"
    )
    patient = Patient.objects.for_hospital(other_hospital).get(patient_id="PIDB01")
    membership = Membership.objects.get(user=users["other_admin"], hospital=other_hospital)
    objects = {
        Hospital: other_hospital.pk,
        Patient: patient.pk,
        get_user_model(): users["other_admin"].pk,
        Membership: membership.pk,
        RemoteNode: node.pk,
        Upload: upload.pk,
        Study: secret.study_uid,
        Series: secret.series_uids[0],
        Instance: secret.sop_uids[0],
    }
    markers = [
        secret.study_uid,
        *secret.series_uids,
        *secret.sop_uids,
        "SECRET^BOB",
        "PIDB01",
        "ACCB01",
        "CT SECRET",
        "Other hospital",
        "OTHERAE",
        "b-secret-node",
        "BSECRETAE",
        "b-admin",
        str(upload.pk),
    ]
    return {"objects": objects, "markers": markers, "secret": secret}


def value_for(b: dict[str, Any], model: Any, *, missing: bool = False) -> Callable[[str], str]:
    """Path values naming hospital B's objects (or, ``missing``, objects that exist nowhere)."""
    secret = b["secret"]
    objects = (
        {
            key: (
                uuid.uuid4()
                if key is Upload
                else 987654321
                if isinstance(v, int)
                else "1.2.3.987654321"
            )
            for key, v in b["objects"].items()
        }
        if missing
        else b["objects"]
    )
    nowhere = "1.2.3.987654321"

    def value(name: str) -> str:
        if name in {"pk", "id"}:
            return str(objects.get(model, 987654321))
        if name == "uid":
            return str(objects.get(model, nowhere if missing else secret.study_uid))
        return {
            "study_uid": nowhere if missing else secret.study_uid,
            "series_uid": nowhere if missing else secret.series_uids[0],
            "sop_uid": nowhere if missing else secret.sop_uids[0],
            "frames": "1",
            "path": "7FE00010",
            "format": "json",
        }.get(name, "x")

    return value


def body_of(response: Any) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("latin-1")


def leaks(response: Any, markers: list[str], asked: str) -> list[str]:
    """B's markers in the answer, other than those the request itself named (a 404 message
    may repeat the UID it was asked for)."""
    text = body_of(response) + " ".join(f"{k}: {v}" for k, v in response.items())
    return [marker for marker in markers if marker in text and marker not in asked]


def routes() -> list[tuple[tuple[Any, ...], URLPattern]]:
    found = []
    for parts, pattern in walk(get_resolver().url_patterns):
        first = str(parts[0]) if isinstance(parts[0], RoutePattern) else parts[0].regex.pattern
        if first.lstrip("^").startswith(PREFIXES):
            found.append((parts, pattern))
    return found


def test_the_walk_finds_the_api_and_dicomweb_routes() -> None:
    paths = {concrete(parts, lambda name: f"{{{name}}}")[0] for parts, _ in routes()}
    for expected in (
        "/api/studies/{uid}/zip/",
        "/api/instances/{uid}/file/",
        "/api/statistics/",
        "/api/nodes/{pk}/",
        "/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/metadata/",
    ):
        assert expected in paths, sorted(paths)


def test_no_route_shows_or_changes_another_hospitals_data(
    hospital_b: dict[str, Any], users: dict[str, Any], other_hospital: Hospital
) -> None:
    client = APIClient()
    client.force_login(users["admin"])  # hospital A's administrator: every permission in A
    markers = hospital_b["markers"]
    secret = hospital_b["secret"]
    filters = {
        "study_instance_uid": secret.study_uid,
        "StudyInstanceUID": secret.study_uid,
        "patient_id": "PIDB01",
        "PatientID": "PIDB01",
        "patient_name": "SECRET*",
        "q": "SECRET",
        "study": secret.study_uid,
        "series": secret.series_uids[0],
        "patient": str(hospital_b["objects"][Patient]),
        "hospital": "other",
        "username": "b-admin",
        "name": "b-secret-node",
    }
    problems: list[str] = []
    walked = 0
    for parts, pattern in routes():
        model = model_of(pattern)
        path, params = concrete(parts, value_for(hospital_b, model))
        if params:
            calls: list[tuple[str, dict[str, Any]]] = [
                ("get", {}),
                ("delete", {}),
                ("patch", {"data": {}, "format": "json"}),
            ]
        else:
            calls = [("get", {}), ("get", {"data": filters})]
        for method, extra in calls:
            response = getattr(client, method)(path, **extra)
            walked += 1
            where = f"{method.upper()} {path} → {response.status_code}"
            asked = path + " " + " ".join(str(v) for v in extra.get("data", {}).values())
            found = leaks(response, markers, asked)
            if found:
                problems.append(f"{where} shows {found}")
            if response.status_code >= 500:
                problems.append(f"{where}: server error")
            elif response.status_code not in NOT_A_LEAK:
                problems.append(f"{where}: unexpected status")
            if not params:
                continue
            # B's object is answered exactly as an object that exists nowhere…
            nowhere, _ = concrete(parts, value_for(hospital_b, model, missing=True))
            absent = getattr(client, method)(nowhere, **extra).status_code
            if response.status_code != absent:
                problems.append(f"{where}, but {absent} for an object that does not exist")
            # …and a read of it is 404.
            if method == "get" and response.status_code not in ABSENT:
                problems.append(f"{where}: another hospital's object must be absent (404)")
    assert walked > 50
    assert problems == [], "\n".join(problems)
    # Hospital B's objects are all still there, unchanged.
    assert (
        Study.objects.for_hospital(other_hospital)
        .filter(study_instance_uid=secret.study_uid)
        .exists()
    )
    assert Instance.objects.for_hospital(other_hospital).count() == len(secret.sop_uids)
    assert RemoteNode.objects.for_hospital(other_hospital).filter(name="b-secret-node").exists()
    assert Membership.objects.filter(hospital=other_hospital, user__username="b-admin").exists()
    assert get_user_model().objects.get(username="b-admin").is_active
    assert Upload.objects.for_hospital(other_hospital).count() == 1
    assert uuid.UUID(str(hospital_b["objects"][Upload]))
