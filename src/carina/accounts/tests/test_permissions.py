"""The permission matrix: the documented table is the one the code enforces, and
HasHospitalPermission applies it to REST API views (the caller's hospital, the role there,
another hospital's objects answering 404)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.test.client import RequestFactory
from rest_framework.response import Response  # type: ignore[import-untyped]
from rest_framework.views import APIView  # type: ignore[import-untyped]

from carina.accounts.access import MATRIX, Permission
from carina.accounts.actions import do_create_admin, do_create_personal_token
from carina.accounts.drf import HasHospitalPermission
from carina.accounts.models import Membership, Role
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[4] / "docs" / "accounts.md"
ROLE_COLUMNS = [Role.HOSPITAL_ADMIN, Role.RADIOLOGIST, Role.TECHNOLOGIST, Role.PHYSICIAN]


def documented_matrix() -> dict[Role, set[Permission]]:
    text = DOC.read_text()
    table = text[text.index("<!-- matrix") : text.index("<!-- /matrix -->")]
    granted: dict[Role, set[Permission]] = {role: set() for role in ROLE_COLUMNS}
    for line in table.splitlines():
        match = re.match(r"\| `(\w+)` \|", line)
        if not match:
            continue
        marks = [cell.strip() for cell in line.strip().strip("|").split("|")][2:]
        assert len(marks) == len(ROLE_COLUMNS), line
        for role, mark in zip(ROLE_COLUMNS, marks, strict=True):
            assert mark in {"✓", "—"}, line
            if mark == "✓":
                granted[role].add(Permission(match.group(1)))
    return granted


def test_the_documented_matrix_is_the_enforced_one() -> None:
    assert documented_matrix() == {role: set(MATRIX[role]) for role in ROLE_COLUMNS}
    assert set(MATRIX) == set(Role)


class StudiesView(APIView):
    """A REST view as the API uses them: reading needs VIEW, deleting needs DELETE."""

    permission_classes = [HasHospitalPermission]
    hospital_permission = {"GET": Permission.VIEW, "DELETE": Permission.DELETE}

    def get(self, request: Any) -> Response:
        return Response({"hospital": request.tenant.slug})

    def delete(self, request: Any) -> Response:
        membership = Membership.objects.get(pk=int(request.query_params["membership"]))
        self.check_object_permissions(request, membership)
        return Response(status=204)

    def post(self, request: Any) -> Response:  # declares no permission: refused
        return Response(status=201)


class SendView(APIView):
    permission_classes = [HasHospitalPermission.requiring(Permission.SEND)]

    def post(self, request: Any) -> Response:
        return Response({"sent": request.tenant.slug})


def call(view: Any, method: str, key: str, path: str = "/", **headers: Any) -> Any:
    request = getattr(RequestFactory(), method)(
        path, headers={"Authorization": f"Token {key}", **headers}
    )
    response = view.as_view()(request)
    response.render()
    return response


def key_for(username: str, hospital: Hospital, role: str) -> str:
    user, _ = do_create_admin(username, "Carina-test-pw-1", hospital, role=role)
    return do_create_personal_token(user, "test")[1]


def test_each_role_gets_what_the_matrix_says(hospital: Hospital) -> None:
    admin = key_for("ada", hospital, "hospital_admin")
    physician = key_for("phil", hospital, "physician")
    own = Membership.objects.get(user__username="phil")

    assert call(StudiesView, "get", physician).status_code == 200
    refused = call(StudiesView, "delete", physician, f"/?membership={own.pk}")
    assert refused.status_code == 403
    detail = json.loads(refused.content)["detail"]
    assert "Physician / viewer" in detail and "'delete'" in detail
    assert call(StudiesView, "delete", admin, f"/?membership={own.pk}").status_code == 204
    assert call(SendView, "post", physician).status_code == 403
    assert call(SendView, "post", key_for("rita", hospital, "radiologist")).status_code == 200


def test_an_undeclared_unsafe_method_is_refused(hospital: Hospital) -> None:
    admin = key_for("ada", hospital, "hospital_admin")
    assert call(StudiesView, "post", admin).status_code == 403


def test_other_hospitals_objects_answer_404(hospital: Hospital, other_hospital: Hospital) -> None:
    admin = key_for("ada", hospital, "hospital_admin")
    foreign = key_for("otto", other_hospital, "physician")
    foreign_row = Membership.objects.get(user__username="otto")
    response = call(StudiesView, "delete", admin, f"/?membership={foreign_row.pk}")
    assert response.status_code == 404
    # The other hospital's physician works in their own hospital.
    assert json.loads(call(StudiesView, "get", foreign).content) == {"hospital": "other"}


def test_the_hospital_header_chooses_among_ones_own(
    hospital: Hospital, other_hospital: Hospital
) -> None:
    key = key_for("multi", hospital, "radiologist")
    Membership.objects.create(
        user=Membership.objects.get(user__username="multi").user,
        hospital=other_hospital,
        role=Role.PHYSICIAN,
    )
    chosen = call(StudiesView, "get", key, **{"X-Carina-Hospital": "other"})
    assert json.loads(chosen.content) == {"hospital": "other"}
    assert call(StudiesView, "get", key).status_code == 200

    stranger = key_for("stranger", other_hospital, "radiologist")
    refused = call(StudiesView, "get", stranger, **{"X-Carina-Hospital": "default"})
    assert refused.status_code == 403
    assert (
        "You do not belong to a hospital called 'default'" in json.loads(refused.content)["detail"]
    )


def test_me_lists_hospitals_roles_and_permissions(
    client: Any, hospital: Hospital, other_hospital: Hospital
) -> None:
    key = key_for("tess", hospital, "technologist")
    response = client.get("/api/auth/me/", headers={"Authorization": f"Token {key}"})
    body = response.json()
    assert body["current_hospital"] == "default"
    assert body["hospitals"] == [
        {
            "slug": "default",
            "name": hospital.name,
            "role": "technologist",
            "role_label": "Technologist",
            "permissions": ["view", "download", "store", "send", "edit"],
        }
    ]


def test_a_system_administrator_has_every_hospital(
    client: Any, root: Any, hospital: Hospital, other_hospital: Hospital
) -> None:
    key = do_create_personal_token(root, "admin script")[1]
    body = client.get("/api/auth/me/", headers={"Authorization": f"Token {key}"}).json()
    assert body["system_administrator"] is True
    assert [h["slug"] for h in body["hospitals"]] == ["default", "other"]
    assert {h["role"] for h in body["hospitals"]} == {"system_admin"}
    assert "manage_hospitals" in body["hospitals"][0]["permissions"]
    assert body["current_hospital"] == "default"
