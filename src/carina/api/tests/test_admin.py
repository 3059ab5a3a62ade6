"""Hospitals, users, memberships and DICOM nodes through the REST API: who may see and
change what."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.accounts.models import Membership
from carina.api.tests.conftest import PASSWORD, client_for
from carina.dimse.models import RemoteNode
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return list(response.json()["results"])


# -- hospitals ---------------------------------------------------------------------------


def test_everyone_sees_their_own_hospitals(clients: dict[str, APIClient]) -> None:
    mine = results(clients["physician"].get("/api/hospitals/"))
    assert [(h["slug"], h["role"]) for h in mine] == [("default", "physician")]
    assert "CARINA" in mine[0]["ae_titles"] or mine[0]["ae_titles"]
    everyone = results(clients["system"].get("/api/hospitals/"))
    assert {h["slug"] for h in everyone} == {"default", "other"}


def test_another_hospital_is_404(clients: dict[str, APIClient], other_hospital: Hospital) -> None:
    response = clients["admin"].get(f"/api/hospitals/{other_hospital.pk}/")
    assert response.status_code == 404
    assert "Other hospital" not in response.content.decode()


def test_only_system_administrators_manage_hospitals(clients: dict[str, APIClient]) -> None:
    new = {"slug": "north", "name": "North clinic", "ae_titles": ["NORTHAE"]}
    assert clients["admin"].post("/api/hospitals/", new, format="json").status_code == 403
    response = clients["system"].post("/api/hospitals/", new, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["ae_titles"] == ["NORTHAE"] and created["role"] == "hospital_admin"
    again = clients["system"].post("/api/hospitals/", new, format="json")
    assert again.status_code == 400 and "exists" in str(again.json())
    taken = {"slug": "south", "name": "South", "ae_titles": ["NORTHAE"]}
    response = clients["system"].post("/api/hospitals/", taken, format="json")
    assert response.status_code == 400 and "already belongs" in response.json()["detail"]
    response = clients["system"].patch(
        created["url"], {"name": "North", "ae_titles": ["NORTHAE", "NORTH2"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "North"
    assert sorted(response.json()["ae_titles"]) == ["NORTH2", "NORTHAE"]
    response = clients["system"].patch(created["url"], {"ae_titles": []}, format="json")
    assert response.status_code == 400


# -- users and memberships ---------------------------------------------------------------


def test_hospital_admin_manages_the_hospitals_users(
    clients: dict[str, APIClient], users: dict[str, Any], hospital: Hospital
) -> None:
    admin = clients["admin"]
    listed = results(admin.get("/api/users/"))
    assert {u["username"] for u in listed} == {
        "a-admin",
        "a-radiologist",
        "a-technologist",
        "a-physician",
    }
    response = admin.post(
        "/api/users/",
        {"username": "newdoc", "password": PASSWORD, "role": "physician", "email": "d@x.org"},
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["role"] == "physician" and "password" not in created
    assert created["memberships"] == [{"hospital": "default", "role": "physician"}]
    # The new user can sign in and read the archive.
    token = APIClient().post(
        "/api/auth/token/", {"username": "newdoc", "password": PASSWORD}, format="json"
    )
    assert token.status_code == 200
    # Role change, deactivation.
    response = admin.patch(created["url"], {"role": "radiologist"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "radiologist"
    response = admin.patch(created["url"], {"is_active": False}, format="json")
    assert response.status_code == 200 and response.json()["is_active"] is False
    # A weak password is refused with the rules.
    response = admin.patch(created["url"], {"password": "123"}, format="json")
    assert response.status_code == 400 and "Password refused" in response.json()["detail"]
    # Removing takes the user out of the hospital; the account stays.
    assert admin.delete(created["url"]).status_code == 204
    assert admin.get(created["url"]).status_code == 404
    assert get_user_model().objects.filter(username="newdoc").exists()


def test_user_management_needs_the_role(clients: dict[str, APIClient]) -> None:
    for name in ("radiologist", "technologist", "physician"):
        response = clients[name].get("/api/users/")
        assert response.status_code == 403
        assert "manage the hospital's users" in response.json()["detail"]
    response = clients["radiologist"].post(
        "/api/users/", {"username": "x", "password": PASSWORD, "role": "physician"}, format="json"
    )
    assert response.status_code == 403


def test_a_shared_user_is_changed_only_by_a_system_administrator(
    clients: dict[str, APIClient], users: dict[str, Any], other_hospital: Hospital
) -> None:
    shared = users["radiologist"]
    Membership.objects.create(user=shared, hospital=other_hospital, role="radiologist")
    response = clients["admin"].patch(
        f"/api/users/{shared.pk}/", {"is_active": False}, format="json"
    )
    assert response.status_code == 403
    assert "system administrator" in response.json()["detail"]
    # The admin sees only the memberships of the hospitals they can see.
    record = clients["admin"].get(f"/api/users/{shared.pk}/").json()
    assert record["memberships"] == [{"hospital": "default", "role": "radiologist"}]
    response = clients["system"].patch(
        f"/api/users/{shared.pk}/", {"is_active": False}, format="json"
    )
    assert response.status_code == 200


def test_the_last_administrator_stays(
    clients: dict[str, APIClient], users: dict[str, Any], hospital: Hospital
) -> None:
    membership = Membership.objects.get(user=users["admin"], hospital=hospital)
    response = clients["admin"].patch(
        f"/api/memberships/{membership.pk}/", {"role": "physician"}, format="json"
    )
    assert response.status_code == 400
    assert "last administrator" in response.json()["detail"]
    assert clients["admin"].delete(f"/api/memberships/{membership.pk}/").status_code == 400


def test_memberships(
    clients: dict[str, APIClient],
    users: dict[str, Any],
    hospital: Hospital,
    other_hospital: Hospital,
) -> None:
    admin = clients["admin"]
    listed = results(admin.get("/api/memberships/"))
    assert {m["hospital"] for m in listed} == {"default"}
    assert len(listed) == 4
    # Add the other hospital's admin to this hospital as a physician, by name.
    response = admin.post(
        "/api/memberships/", {"username": "b-admin", "role": "physician"}, format="json"
    )
    assert response.status_code == 201, response.content
    added = response.json()
    assert (added["hospital"], added["username"], added["role"]) == (
        "default",
        "b-admin",
        "physician",
    )
    again = admin.post(
        "/api/memberships/", {"username": "b-admin", "role": "physician"}, format="json"
    )
    assert again.status_code == 400 and "already a member" in again.json()["detail"]
    # A hospital administrator cannot add someone to another hospital.
    response = admin.post(
        "/api/memberships/",
        {"username": "a-physician", "role": "physician", "hospital": "other"},
        format="json",
    )
    # (the hospital named is ignored: the membership would be the current hospital's)
    assert (
        response.status_code == 400 and "already a member of default" in response.json()["detail"]
    )
    assert not Membership.objects.filter(user=users["physician"], hospital=other_hospital).exists()
    other_membership = Membership.objects.get(user=users["other_admin"], hospital=other_hospital)
    assert admin.get(f"/api/memberships/{other_membership.pk}/").status_code == 404
    # System administrators see every membership, and may name the hospital.
    response = clients["system"].post(
        "/api/memberships/",
        {"user": users["physician"].pk, "role": "physician", "hospital": "other"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["hospital"] == "other"
    everything = results(clients["system"].get("/api/memberships/?limit=100"))
    assert {m["hospital"] for m in everything} == {"default", "other"}


# -- DICOM nodes ---------------------------------------------------------------------------


def test_nodes(clients: dict[str, APIClient], hospital: Hospital, other_hospital: Hospital) -> None:
    node = {"name": "ct1", "ae_title": "CT1", "host": "10.0.0.5", "port": 104, "may_store": True}
    assert clients["radiologist"].post("/api/nodes/", node, format="json").status_code == 403
    response = clients["admin"].post("/api/nodes/", node, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["ae_title"] == "CT1" and created["enabled"] is True
    assert "store" in created["services"]
    # Everyone in the hospital sees it; the other hospital does not.
    assert [n["name"] for n in results(clients["physician"].get("/api/nodes/"))] == ["ct1"]
    assert results(clients["other_admin"].get("/api/nodes/")) == []
    assert clients["other_admin"].get(created["url"]).status_code == 404
    # Clear refusals from the actions.
    dup = clients["admin"].post("/api/nodes/", node, format="json")
    assert dup.status_code == 400 and "exists already" in str(dup.json())
    clash = {**node, "name": "ct2"}
    response = clients["admin"].post("/api/nodes/", clash, format="json")
    assert response.status_code == 400 and "already used by node" in response.json()["detail"]
    bad = {**node, "name": "x", "ae_title": "WAY TOO LONG AE TITLE"}
    assert clients["admin"].post("/api/nodes/", bad, format="json").status_code == 400
    # Change and remove.
    response = clients["admin"].patch(
        created["url"], {"port": 11112, "enabled": False}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["port"], response.json()["enabled"]) == (11112, False)
    response = clients["admin"].patch(created["url"], {"name": "renamed"}, format="json")
    assert response.status_code == 400
    assert clients["admin"].delete(created["url"]).status_code == 204
    assert not RemoteNode.objects.for_hospital(hospital).exists()


def test_a_dicomweb_destination_needs_no_ae_title_and_hides_its_token(
    clients: dict[str, APIClient], hospital: Hospital
) -> None:
    node = {
        "name": "tele",
        "kind": "dicomweb",
        "dicomweb_url": "https://tele.example.org:8443/dicomweb",
        "dicomweb_token": "s3cret-token",
        "max_associations": 2,
    }
    response = clients["admin"].post("/api/nodes/", node, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["kind"], created["host"], created["port"]) == (
        "dicomweb",
        "tele.example.org",
        8443,
    )
    assert "dicomweb_token" not in created
    assert RemoteNode.objects.for_hospital(hospital).get(name="tele").dicomweb_token == (
        "s3cret-token"
    )
    bad = {**node, "name": "tele2", "preferred_transfer_syntax": "1.2.3.4"}
    response = clients["admin"].post("/api/nodes/", bad, format="json")
    assert response.status_code == 400 and "1.2.3.4" in str(response.json())


def test_the_api_root_lists_the_resources(users: dict[str, Any]) -> None:
    body = client_for(users["physician"]).get("/api/").json()
    assert {"studies", "series", "instances", "patients", "uploads", "nodes"} <= set(body)
