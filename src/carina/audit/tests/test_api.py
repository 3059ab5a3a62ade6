"""``/api/audit/``: who sees which events, the filters, pages, the CSV export, and that no
route changes or removes an event."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.accounts.actions import do_create_personal_token, do_revoke_personal_token
from carina.api.tests.conftest import PASSWORD, client_for
from carina.audit.models import Action, AuditEvent
from carina.audit.tests.conftest import event
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def pks(trail: dict[str, Any], *names: str) -> set[int]:
    return {trail[name].pk for name in names}


def seen_by(client: APIClient, **filters: Any) -> set[int]:
    """The fixture's events a client sees (leaving out the audit.read events of its reads)."""
    response = client.get("/api/audit/", {"limit": 1000, **filters})
    assert response.status_code == 200, response.content
    return {
        row["id"] for row in response.json()["results"] if not row["action"].startswith("audit.")
    }


def test_each_role_sees_what_it_may(people: dict[str, Any], trail: dict[str, Any]) -> None:
    everything_of_a = pks(
        trail, "a_store", "a_radiologist", "a_physician", "a_failed_node", "node_named_like_a_user"
    )
    # A hospital administrator: every event of the hospital, and their own.
    assert seen_by(client_for(people["admin"])) >= everything_of_a
    assert seen_by(client_for(people["admin"])).isdisjoint(
        pks(trail, "b_secret", "b_sign_in", "radiologist_sign_in")
    )
    # A radiologist: their own, in the hospital and of no hospital (the sign-in).
    assert seen_by(client_for(people["radiologist"])) == pks(
        trail, "a_radiologist", "radiologist_sign_in"
    ) | _logins(people["radiologist"])
    # A physician: their own only, not a DICOM node's that carries the same name.
    assert seen_by(client_for(people["physician"])) == pks(trail, "a_physician") | _logins(
        people["physician"]
    )
    # The other hospital's administrator: B's events only.
    seen = seen_by(client_for(people["other_admin"]))
    assert pks(trail, "b_secret", "b_sign_in") <= seen
    assert seen.isdisjoint(everything_of_a | pks(trail, "radiologist_sign_in"))
    # A system administrator: everything, also of no hospital.
    assert seen_by(client_for(people["system"])) >= {e.pk for e in trail.values()}


def _logins(user: Any) -> set[int]:
    """The sign-ins of ``user`` recorded when the test client signed in."""
    return set(
        AuditEvent.objects.all_hospitals()
        .filter(actor=user.get_username(), action=Action.LOGIN, hospital__isnull=True)
        .values_list("pk", flat=True)
    )


def test_one_event_is_shown_to_whom_may_see_it(
    people: dict[str, Any], trail: dict[str, Any]
) -> None:
    admin = client_for(people["admin"])
    answer = admin.get(f"/api/audit/{trail['a_store'].pk}/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["action"] == "dicom.store"
    assert body["action_label"] == "DICOM store (C-STORE received)"
    assert body["hospital"] == "default"
    assert body["patient_id"] == "PA1"
    assert body["url"].endswith(f"/api/audit/{trail['a_store'].pk}/")
    # Another hospital's event is absent, exactly like one that does not exist.
    foreign = admin.get(f"/api/audit/{trail['b_secret'].pk}/")
    missing = admin.get("/api/audit/987654321/")
    assert foreign.status_code == missing.status_code == 404
    assert "SECRET" not in foreign.content.decode()
    # Someone else's event in the same hospital is absent for a radiologist.
    radiologist = client_for(people["radiologist"])
    assert radiologist.get(f"/api/audit/{trail['a_store'].pk}/").status_code == 404
    assert radiologist.get(f"/api/audit/{trail['a_radiologist'].pk}/").status_code == 200


def test_hospital_header_selects_the_trail(
    people: dict[str, Any], trail: dict[str, Any], other_hospital: Hospital
) -> None:
    admin = client_for(people["admin"])
    refused = admin.get("/api/audit/", HTTP_X_CARINA_HOSPITAL="other")
    assert refused.status_code == 403
    assert "You do not belong to a hospital called 'other'" in refused.json()["detail"]
    # A system administrator narrows to one hospital with ?hospital=.
    root = client_for(people["system"])
    assert seen_by(root, hospital="other") == pks(trail, "b_secret")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"actor": "a-radiologist"}, {"a_radiologist"}),
        ({"action": "api.query"}, {"a_radiologist"}),
        ({"action": "dicom.*"}, {"a_store", "a_failed_node", "node_named_like_a_user"}),
        (
            {"action": "dicomweb.retrieve,dicom.association_rejected"},
            {"a_physician", "a_failed_node"},
        ),
        ({"outcome": "partial,failure"}, {"a_physician", "a_failed_node"}),
        ({"object_uid": "1.2.840.1"}, {"a_store", "a_radiologist"}),
        ({"patient_id": "PA2"}, {"a_physician"}),
        ({"patient_id": "PA*"}, {"a_store", "a_radiologist", "a_physician"}),
        ({"source_ip": "10.0.0.5"}, {"a_radiologist"}),
        ({"source_ae": "BADNODE"}, {"a_failed_node"}),
        ({"correlation_id": "req-radiologist-1"}, {"a_radiologist"}),
        ({"date_from": "2026-11-21", "date_to": "20261121"}, {"a_physician"}),
        ({"date_to": "2026-11-20T10:30:00Z"}, {"a_store", "node_named_like_a_user"}),
        ({"actor_kind": "user", "date_to": "2026-11-22"}, {"a_radiologist", "a_physician"}),
        ({"q": "hyperlink"}, {"a_failed_node"}),
    ],
)
def test_filters(
    people: dict[str, Any], trail: dict[str, Any], filters: dict[str, str], expected: set[str]
) -> None:
    assert seen_by(client_for(people["admin"]), **filters) == pks(trail, *expected)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"action": "dicom.stor"}, "Unknown value(s) dicom.stor"),
        ({"outcome": "fine"}, "Unknown value(s) fine"),
        ({"date_from": "yesterday"}, "'yesterday' is not a date or time"),
        ({"date_from": "2026-11-22", "date_to": "2026-11-20"}, "date_to (2026-11-20) is before"),
    ],
)
def test_bad_filters_are_answered_400_with_the_reason(
    people: dict[str, Any], trail: dict[str, Any], filters: dict[str, str], message: str
) -> None:
    answer = client_for(people["admin"]).get("/api/audit/", filters)
    assert answer.status_code == 400
    assert message in str(answer.json())


def test_pages_newest_first(people: dict[str, Any], trail: dict[str, Any]) -> None:
    admin = client_for(people["admin"])
    first = admin.get("/api/audit/", {"limit": 2, "action": "dicom.*,api.*,dicomweb.*"})
    body = first.json()
    assert body["count"] == 5 and body["count_exact"] is True
    times = [row["occurred_at"] for row in body["results"]]
    assert times == sorted(times, reverse=True)
    second = admin.get(body["next"]).json()
    third = admin.get(second["next"]).json()
    assert third["next"] is None
    walked = [row["id"] for page in (body, second, third) for row in page["results"]]
    assert len(walked) == len(set(walked)) == 5
    oldest = admin.get("/api/audit/", {"ordering": "occurred_at", "action": "dicom.*,api.*"})
    assert oldest.json()["results"][0]["id"] == trail["a_store"].pk


def test_reading_pages_is_not_recorded(people: dict[str, Any], trail: dict[str, Any]) -> None:
    """Each page looked at would add an event to what is being read (the export is)."""
    admin = client_for(people["admin"])
    before = AuditEvent.objects.all_hospitals().count()
    assert admin.get("/api/audit/", {"patient_id": "PA1"}).status_code == 200
    assert admin.get(f"/api/audit/{trail['a_store'].pk}/").status_code == 200
    assert AuditEvent.objects.all_hospitals().count() == before


def test_no_route_changes_or_removes_an_event(
    people: dict[str, Any], trail: dict[str, Any]
) -> None:
    root = client_for(people["system"])
    pk = trail["a_store"].pk
    for method, path in [
        ("post", "/api/audit/"),
        ("put", f"/api/audit/{pk}/"),
        ("patch", f"/api/audit/{pk}/"),
        ("delete", f"/api/audit/{pk}/"),
        ("delete", "/api/audit/"),
        ("post", "/api/audit/export.csv"),
    ]:
        answer = getattr(root, method)(path, {"detail": "rewritten"}, format="json")
        assert answer.status_code == 405, (method, path)
        assert "not allowed" in answer.json()["detail"]
    unchanged = AuditEvent.objects.all_hospitals().get(pk=pk)
    assert unchanged.detail == "" and unchanged.count == 3


def read_csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-default-')
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.endswith("\r\n")
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export(people: dict[str, Any], trail: dict[str, Any]) -> None:
    admin = client_for(people["admin"])
    rows = read_csv(
        admin.get("/api/audit/export.csv", {"action": "dicom.*", "ordering": "occurred_at"})
    )
    assert [int(r["id"]) for r in rows] == [
        trail["a_store"].pk,
        trail["node_named_like_a_user"].pk,
        trail["a_failed_node"].pk,
    ]
    first = rows[0]
    assert first == {
        "id": str(trail["a_store"].pk),
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "hospital": "default",
        "actor": "MODALITY",
        "actor_kind": "dicom_node",
        "action": "dicom.store",
        "object_type": "study",
        "object_uid": "1.2.840.1",
        "patient_id": "PA1",
        "source_ip": "10.0.0.9",
        "source_ae": "MODALITY",
        "destination_ae": "",
        "outcome": "success",
        "count": "3",
        "detail": "",
        "correlation_id": "",
    }
    # A value a spreadsheet would run as a formula is neutralised.
    assert rows[2]["detail"] == '\'=HYPERLINK("http://evil")'
    # The same file from the list with ?format=csv; the export itself is recorded.
    same = read_csv(
        admin.get(
            "/api/audit/",
            {"action": "dicom.*", "ordering": "occurred_at", "format": "csv"},
            HTTP_X_REQUEST_ID="export-1",
        )
    )
    assert same == rows
    export = AuditEvent.objects.all_hospitals().get(correlation_id="export-1")
    assert (export.action, export.count, export.outcome) == ("audit.export", 3, "success")


def test_csv_export_shows_only_what_the_caller_may_see(
    people: dict[str, Any], trail: dict[str, Any]
) -> None:
    rows = read_csv(client_for(people["physician"]).get("/api/audit/export.csv"))
    assert {r["actor"] for r in rows} == {"a-physician"}
    assert {r["actor_kind"] for r in rows} == {"user"}
    assert "PIDB01" not in str(rows)
    refused = APIClient().get("/api/audit/export.csv")
    assert refused.status_code == 401
    assert refused["Content-Type"] == "application/json"
    bad = client_for(people["admin"]).get("/api/audit/export.csv", {"outcome": "fine"})
    assert bad.status_code == 400 and "fine" in bad.json()["outcome"][0]


def test_api_requests_are_recorded_with_api_actions(
    people: dict[str, Any], hospital: Hospital
) -> None:
    admin = client_for(people["admin"])
    assert admin.get("/api/studies/", HTTP_X_REQUEST_ID="studies-1").status_code == 200
    recorded = AuditEvent.objects.for_hospital(hospital).get(correlation_id="studies-1")
    assert (recorded.action, recorded.actor, recorded.object_type) == (
        "api.query",
        "a-admin",
        "study",
    )


def test_sign_out_and_personal_tokens_are_recorded(people: dict[str, Any]) -> None:
    user = people["radiologist"]
    tokens = APIClient().post(
        "/api/auth/token/", {"username": "a-radiologist", "password": PASSWORD}, format="json"
    )
    logout = APIClient().post(
        "/api/auth/logout/",
        {"refresh": tokens.json()["refresh"]},
        format="json",
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_REQUEST_ID="logout-1",
    )
    assert logout.status_code == 200
    signed_out = AuditEvent.objects.all_hospitals().get(action="logout")
    assert (signed_out.actor, signed_out.source_ip, signed_out.correlation_id) == (
        "a-radiologist",
        "10.9.9.9",
        "logout-1",
    )
    token, _ = do_create_personal_token(user, "nightly export", 30)
    do_revoke_personal_token(token)
    do_revoke_personal_token(token)  # already revoked: nothing more to record
    created = AuditEvent.objects.all_hospitals().get(action="token.created")
    revoked = AuditEvent.objects.all_hospitals().get(action="token.revoked")
    assert created.actor == revoked.actor == "a-radiologist"
    assert "personal API token 'nightly export'" in created.detail
    assert revoked.detail.startswith("Revoked the personal API token 'nightly export'")
    # The owner sees them as their own.
    seen = seen_by(client_for(user), action="logout,token.*")
    assert seen == {signed_out.pk, created.pk, revoked.pk}


def test_an_event_of_another_hospital_never_shows(
    people: dict[str, Any], trail: dict[str, Any], other_hospital: Hospital
) -> None:
    """Whatever the filters, hospital A's administrator never receives B's events."""
    # Even an event of B with A's administrator as its actor.
    event(
        other_hospital,
        patient_id="PIDB01",
        object_uid="1.2.840.1",
        actor="a-admin",
        actor_kind="user",
    )
    admin = client_for(people["admin"])
    for filters in [
        {},
        {"patient_id": "PIDB01"},
        {"hospital": "other"},
        {"actor": "b-admin"},
        {"object_uid": "1.2.840.999"},
        {"q": "SECRET"},
        {"patient_id": "PA1"},
    ]:
        answer = admin.get("/api/audit/", filters)
        assert answer.status_code == 200
        # (Leaving out the administrator's own exports, which name the filters typed.)
        rows = [r for r in answer.json()["results"] if r["action"] != "audit.export"]
        assert "SECRET" not in str(rows) and "PIDB01" not in str(rows)
        assert {row["hospital"] for row in rows} <= {"default", None}
        exported = read_csv(admin.get("/api/audit/export.csv", filters))
        exported = [r for r in exported if r["action"] != "audit.export"]
        assert "PIDB01" not in str(exported) and "SECRET" not in str(exported)
        assert {row["hospital"] for row in exported} <= {"default", ""}
