"""Administration: users and roles (a hospital keeps an administrator; hospital
administrators change only their own people), the hospital's policies, hospitals and their AE
titles (system administrators), and the system status page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from carina.accounts.models import Membership, Role
from carina.tenancy.models import Hospital, HospitalAETitle

pytestmark = pytest.mark.django_db

NEW_USER = {
    "form": "new",
    "new-username": "nurse",
    "new-first_name": "Florence",
    "new-last_name": "N",
    "new-email": "f@example.org",
    "new-role": "technologist",
    "new-password": "Long-enough-pw-42",
}


def error_of(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="id_{field}-error">(.*?)</p>', page, re.S)
    assert found is not None, f"no error for {field}"
    return found.group(1).replace("&#x27;", "'")


# --- users --------------------------------------------------------------------------------


def test_the_user_list_shows_this_hospitals_members(clients: dict[str, Client]) -> None:
    page = clients["admin"].get("/manage/users/").content.decode()
    for name in ("a-admin", "a-radiologist", "a-technologist", "a-physician"):
        assert name in page
    assert "b-admin" not in page
    assert clients["radiologist"].get("/manage/users/").status_code == 403


def test_create_a_user(clients: dict[str, Client], hospital: Hospital) -> None:
    response = clients["admin"].post("/manage/users/add/", NEW_USER, follow=True)
    assert "Created the account nurse." in response.content.decode()
    membership = Membership.objects.get(user__username="nurse")
    assert (membership.hospital, membership.role) == (hospital, Role.TECHNOLOGIST)
    assert membership.user.check_password("Long-enough-pw-42")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"new-password": "short"}, "new-password", "too short"),
        ({"new-password": "12345678901"}, "new-password", "entirely numeric"),
        ({"new-username": "a-admin"}, "new-username", "The user name 'a-admin' is taken"),
        ({"new-email": "not-an-address"}, "new-email", "Enter a valid email address."),
        ({"new-role": "boss"}, "new-role", "Select a valid choice."),
    ],
)
def test_bad_user_input_is_explained_and_kept(
    clients: dict[str, Client], changes: dict[str, str], field: str, message: str
) -> None:
    response = clients["admin"].post("/manage/users/add/", {**NEW_USER, **changes})
    assert response.status_code == 400
    page = response.content.decode()
    assert message in error_of(page, field)
    assert 'value="Florence"' in page
    assert not get_user_model().objects.filter(username="nurse").exists()


def test_add_an_existing_user_from_another_hospital(
    clients: dict[str, Client], users: dict[str, Any], hospital: Hospital
) -> None:
    data = {"form": "existing", "existing-username": "b-radiologist", "existing-role": "physician"}
    response = clients["admin"].post("/manage/users/add/", data, follow=True)
    assert "Added b-radiologist to Default hospital." in response.content.decode()
    assert Membership.objects.get(user=users["other_radiologist"], hospital=hospital).role == (
        Role.PHYSICIAN
    )
    unknown = {**data, "existing-username": "nobody"}
    page = clients["admin"].post("/manage/users/add/", unknown).content.decode()
    assert "No user 'nobody'" in error_of(page, "existing-username")


def test_change_a_role_and_deactivate(clients: dict[str, Client], users: dict[str, Any]) -> None:
    tech = users["technologist"]
    url = f"/manage/users/{tech.pk}/"
    data = {"first_name": "T", "last_name": "", "email": "", "role": "radiologist"}
    assert clients["admin"].post(url, data).status_code == 302  # is_active unticked
    tech.refresh_from_db()
    assert not tech.is_active
    assert Membership.objects.get(user=tech).role == Role.RADIOLOGIST


def test_the_last_administrator_cannot_be_demoted(
    clients: dict[str, Client], users: dict[str, Any]
) -> None:
    admin = users["admin"]
    data = {"role": "radiologist", "is_active": "on"}
    response = clients["admin"].post(f"/manage/users/{admin.pk}/", data)
    assert response.status_code == 400
    assert "a-admin is the last administrator of default" in response.content.decode()
    assert Membership.objects.get(user=admin).role == Role.HOSPITAL_ADMIN


def test_a_hospital_administrator_cannot_change_a_shared_account(
    clients: dict[str, Client], users: dict[str, Any], hospital: Hospital
) -> None:
    shared = users["other_radiologist"]
    Membership.objects.create(user=shared, hospital=hospital, role=Role.PHYSICIAN)
    response = clients["admin"].post(f"/manage/users/{shared.pk}/", {"role": "radiologist"})
    assert response.status_code == 403
    assert "also belongs to Other hospital" in response.content.decode()
    # A system administrator may.
    ok = clients["system"].post(
        f"/manage/users/{shared.pk}/", {"role": "radiologist", "is_active": "on"}
    )
    assert ok.status_code == 302


def test_remove_a_user_from_the_hospital(clients: dict[str, Client], users: dict[str, Any]) -> None:
    physician = users["physician"]
    confirm = clients["admin"].get(f"/manage/users/{physician.pk}/remove/").content.decode()
    assert "Remove a-physician from Default hospital?" in confirm
    clients["admin"].post(f"/manage/users/{physician.pk}/remove/")
    assert not Membership.objects.filter(user=physician).exists()
    assert get_user_model().objects.filter(pk=physician.pk).exists()  # the account stays
    # Another hospital's user is not found here.
    other = users["other_admin"]
    assert clients["admin"].get(f"/manage/users/{other.pk}/").status_code == 404
    assert clients["admin"].post(f"/manage/users/{other.pk}/remove/").status_code == 404


# --- policies -----------------------------------------------------------------------------


def test_policies(clients: dict[str, Client], hospital: Hospital) -> None:
    page = clients["admin"].get("/manage/policies/").content.decode()
    assert "CARINA" in page  # the hospital's AE title
    data = {"duplicate_policy": "keep_newest", "unknown_calling_ae_policy": "reject"}
    assert clients["admin"].post("/manage/policies/", data).status_code == 302
    hospital.refresh_from_db()
    assert (hospital.duplicate_policy, hospital.unknown_calling_ae_policy) == (
        "keep_newest",
        "reject",
    )
    bad = clients["admin"].post("/manage/policies/", {"duplicate_policy": "whatever"})
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "Select a valid choice. whatever is not one" in error_of(page, "duplicate_policy")
    assert "This field is required." in error_of(page, "unknown_calling_ae_policy")
    assert clients["technologist"].get("/manage/policies/").status_code == 403


# --- hospitals ----------------------------------------------------------------------------


def test_only_system_administrators_manage_hospitals(clients: dict[str, Client]) -> None:
    assert clients["admin"].get("/manage/hospitals/").status_code == 403
    assert clients["admin"].post("/manage/hospitals/add/", {}).status_code == 403
    page = clients["system"].get("/manage/hospitals/").content.decode()
    assert "Default hospital" in page and "Other hospital" in page and "OTHERAE" in page


def test_add_a_hospital_and_its_ae_titles(clients: dict[str, Client]) -> None:
    system = clients["system"]
    data = {"slug": "north", "name": "North clinic", "ae_titles": "NORTH, NORTH2"}
    assert system.post("/manage/hospitals/add/", data).status_code == 302
    north = Hospital.objects.get(slug="north")
    assert set(north.ae_titles.values_list("ae_title", flat=True)) == {"NORTH", "NORTH2"}
    # The edit page renames, adds and removes AE titles (never the last one).
    edit = "/manage/hospitals/north/"
    assert system.post(edit, {"name": "North", "ae_titles": "NORTH3"}).status_code == 302
    system.post(edit, {"remove_ae_title": "NORTH"})
    system.post(edit, {"remove_ae_title": "NORTH2"})
    last = system.post(edit, {"remove_ae_title": "NORTH3"}, follow=True).content.decode()
    assert "the only AE title of North" in last
    assert list(north.ae_titles.values_list("ae_title", flat=True)) == ["NORTH3"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"slug": "default"}, "slug", "A hospital 'default' exists already."),
        ({"slug": "not a slug"}, "slug", "Enter a valid “slug”"),
        ({"ae_titles": "OTHERAE"}, "ae_titles", "AE title 'OTHERAE' already belongs to Other"),
        ({"ae_titles": "WAY-TOO-LONG-AE-TITLE"}, "ae_titles", "use 1 to 16 printable ASCII"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_bad_hospital_input_is_explained_and_kept(
    clients: dict[str, Client], data: dict[str, str], field: str, message: str
) -> None:
    posted = {"slug": "south", "name": "South clinic", "ae_titles": "SOUTH", **data}
    response = clients["system"].post("/manage/hospitals/add/", posted)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in error_of(page, field)
    assert f'value="{posted["name"]}"' in page or posted["name"] == ""
    assert not HospitalAETitle.objects.filter(ae_title="SOUTH").exists()


# --- status -------------------------------------------------------------------------------


def test_the_status_page(clients: dict[str, Client]) -> None:
    response = clients["admin"].get("/manage/status/")
    assert response.status_code == 200
    page = response.content.decode()
    for part in (
        "Database",
        "Storage",
        "DICOM listener",
        "Transfer queue",
        "Data folder",
        "Version",
    ):
        assert part in page, part
    assert "0 transfers waiting or being sent" in page
    assert re.search(r"free of .* at ", page)
    assert clients["radiologist"].get("/manage/status/").status_code == 403
