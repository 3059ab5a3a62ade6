"""Signing in and out in the UI's frame, the hospital switcher, password change, the
authenticator app, error pages, and pages for people without a hospital."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from carina.accounts.access import SESSION_HOSPITAL
from carina.accounts.models import Membership, Role, TOTPDevice
from carina.tenancy.models import Hospital

from .conftest import PASSWORD, StoreStudy

pytestmark = pytest.mark.django_db


def test_sign_in_lands_on_the_worklist_and_sign_out_ends_it(
    client: Client, users: dict[str, Any]
) -> None:
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in to Carina PACS" in page
    assert "/static/ui/carina.css" in page  # the UI's frame
    wrong = client.post("/accounts/login/", {"username": "a-radiologist", "password": "nope"})
    assert "Please enter a correct user name and password" in wrong.content.decode().replace(
        "username", "user name"
    )
    assert 'value="a-radiologist"' in wrong.content.decode()  # kept
    done = client.post(
        "/accounts/login/", {"username": "a-radiologist", "password": PASSWORD}, follow=True
    )
    assert done.redirect_chain[-1][0] == "/"
    assert "Worklist" in done.content.decode()
    out = client.post("/accounts/logout/")
    assert out["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_the_hospital_switcher(
    client: Client, users: dict[str, Any], other_hospital: Hospital, store_study: StoreStudy
) -> None:
    both = users["radiologist"]
    Membership.objects.create(user=both, hospital=other_hospital, role=Role.PHYSICIAN)
    mine = store_study(patient_name="HERE^ONE")
    theirs = store_study(other_hospital, patient_name="THERE^TWO")
    client.force_login(both)
    page = client.get("/").content.decode()
    assert 'id="switch-hospital"' in page
    assert mine.study_uid in page and theirs.study_uid not in page
    switched = client.post("/switch-hospital/", {"hospital": "other", "next": "/?q=t"}, follow=True)
    assert switched.redirect_chain[-1][0] == "/?q=t"
    page = switched.content.decode()
    assert "You now work in Other hospital." in page
    assert theirs.study_uid in page and mine.study_uid not in page
    assert client.session[SESSION_HOSPITAL] == "other"
    # As a physician there, no upload.
    assert client.get("/upload/").status_code == 403
    # A hospital one does not belong to is refused; the choice stays.
    Hospital.objects.create(slug="third", name="Third")
    refused = client.post("/switch-hospital/", {"hospital": "third"}, follow=True)
    assert "You do not belong to a hospital &#x27;third&#x27;." in refused.content.decode()
    assert client.session[SESSION_HOSPITAL] == "other"
    # Never redirected off the site.
    away = client.post("/switch-hospital/", {"hospital": "default", "next": "https://evil/"})
    assert away["Location"] == "/"


def test_a_single_hospital_user_sees_no_switcher(clients: dict[str, Client]) -> None:
    page = clients["radiologist"].get("/").content.decode()
    assert 'id="switch-hospital"' not in page
    assert "Default hospital" in page


def test_change_password(client: Client, users: dict[str, Any]) -> None:
    user = users["physician"]
    client.force_login(user)
    bad = client.post(
        "/account/password/",
        {"old_password": "wrong", "new_password1": "New-pw-12345", "new_password2": "New-pw-12345"},
    )
    assert bad.status_code == 400
    assert "Your old password was entered incorrectly" in bad.content.decode()
    mismatch = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": "New-pw-12345", "new_password2": "Other-1"},
    )
    assert "The two password fields didn’t match." in mismatch.content.decode()
    weak = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": "password", "new_password2": "password"},
    )
    assert "This password is too common." in weak.content.decode()
    ok = client.post(
        "/account/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "New-pw-12345",
            "new_password2": "New-pw-12345",
        },
        follow=True,
    )
    assert "Your password is changed." in ok.content.decode()
    assert client.get("/").status_code == 200  # still signed in
    user.refresh_from_db()
    assert user.check_password("New-pw-12345")


def test_set_up_and_turn_off_the_authenticator_app(client: Client, users: dict[str, Any]) -> None:
    user = users["radiologist"]
    client.force_login(user)
    assert "Set it up" in client.get("/account/authenticator/").content.decode()
    client.post("/account/authenticator/", {"action": "start"})
    page = client.get("/account/authenticator/").content.decode()
    assert "<svg" in page  # the QR code
    device = TOTPDevice.objects.get(user=user)
    assert device.secret[:4] in page
    wrong = client.post("/account/authenticator/", {"action": "confirm", "code": "000000"})
    assert wrong.status_code == 400
    assert "That code does not match" in wrong.content.decode()
    code = pyotp.TOTP(device.secret).now()
    client.post("/account/authenticator/", {"action": "confirm", "code": code})
    device.refresh_from_db()
    assert device.confirmed
    # Signing in now asks for the code.
    fresh = Client()
    step = fresh.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert step["Location"] == "/accounts/login/code/"
    # Turning it off needs a current code (not the one used already).
    refused = client.post("/account/authenticator/", {"action": "disable", "code": code})
    assert "does not match" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=user).exists()


def test_pages_for_someone_without_a_hospital(client: Client, db: None) -> None:
    lonely = get_user_model().objects.create_user("lonely", password=PASSWORD)
    client.force_login(lonely)
    response = client.get("/")
    assert response.status_code == 403
    assert "belongs to no hospital yet" in response.content.decode()


def test_error_pages(clients: dict[str, Client]) -> None:
    page = clients["radiologist"].get("/no/such/page/")
    assert page.status_code == 404
    assert "There is no page at /no/such/page/." in page.content.decode()
    assert "Back to the worklist" in page.content.decode()
    api = clients["radiologist"].get("/api/no-such-resource/")
    assert api.status_code == 404
    assert api.json() == {"detail": "There is no page at /api/no-such-resource/."}


def test_every_page_names_its_landmarks_and_labels(clients: dict[str, Client]) -> None:
    for path in ("/", "/dashboard/", "/upload/", "/audit/", "/manage/nodes/", "/account/"):
        page = clients["admin"].get(path).content.decode()
        assert '<a class="skip-link" href="#main">' in page, path
        assert '<main id="main"' in page, path
        assert '<nav class="mainnav" aria-label="Main">' in page, path
        assert 'aria-current="page"' in page or path == "/account/", path
