"""The authenticator app (TOTP, RFC 6238) as second factor: set up, confirm, sign in with
it on the token endpoint and the sign-in page, turn it off."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from django.test import Client

from carina.accounts.models import TOTPDevice
from carina.accounts.tests.conftest import PASSWORD, bearer, fresh_code, post, sign_in

pytestmark = pytest.mark.django_db


def test_an_administrator_turns_the_authenticator_app_on(client: Client, root: Any) -> None:
    access = sign_in(client, "root")["access"]
    assert client.get("/api/auth/totp/", headers=bearer(access)).json()["enabled"] is False

    started = post(client, "/api/auth/totp/", **bearer(access))
    assert started.status_code == 201
    secret = started.json()["secret"]
    assert started.json()["otpauth_uri"].startswith("otpauth://totp/Carina%20PACS:root?")
    # Not confirmed yet: sign-in does not ask for a code.
    sign_in(client, "root")

    wrong = post(client, "/api/auth/totp/confirm/", {"otp": "000000"}, **bearer(access))
    assert wrong.status_code == 400
    confirmed = post(
        client, "/api/auth/totp/confirm/", {"otp": pyotp.TOTP(secret).now()}, **bearer(access)
    )
    assert confirmed.status_code == 200
    assert client.get("/api/auth/totp/", headers=bearer(access)).json()["enabled"] is True
    again = post(client, "/api/auth/totp/", **bearer(access))
    assert again.status_code == 409


def test_token_sign_in_asks_for_the_code(client: Client, root: Any, with_totp: Any) -> None:
    device = with_totp(root)
    missing = post(client, "/api/auth/token/", {"username": "root", "password": PASSWORD})
    assert missing.status_code == 401
    assert missing.json()["code"] == "otp_required"
    assert "6-digit code" in missing.json()["detail"]

    wrong = post(
        client, "/api/auth/token/", {"username": "root", "password": PASSWORD, "otp": "123456"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "wrong_otp"

    code = fresh_code(device)
    tokens = sign_in(client, "root", otp=code)
    me = client.get("/api/auth/me/", headers=bearer(tokens["access"])).json()
    assert me["authenticator_app"] is True
    # The same code a second time is refused (someone looking over the shoulder).
    replay = post(
        client, "/api/auth/token/", {"username": "root", "password": PASSWORD, "otp": code}
    )
    assert replay.json()["code"] == "wrong_otp"


def test_wrong_codes_count_towards_the_lock(client: Client, root: Any, with_totp: Any) -> None:
    with_totp(root)
    for _ in range(3):
        post(client, "/api/auth/token/", {"username": "root", "password": PASSWORD, "otp": "1"})
    response = post(
        client, "/api/auth/token/", {"username": "root", "password": PASSWORD, "otp": "1"}
    )
    assert response.json()["code"] == "account_locked"


def test_sign_in_page_has_a_second_step(client: Client, root: Any, with_totp: Any) -> None:
    device = with_totp(root)
    response = client.post(
        "/accounts/login/", {"username": "root", "password": PASSWORD, "next": "/viewer/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/code/"
    assert "_auth_user_id" not in client.session  # not signed in yet

    page = client.get("/accounts/login/code/")
    assert page.status_code == 200
    assert b"authenticator app" in page.content

    wrong = client.post("/accounts/login/code/", {"otp": "000000"})
    assert wrong.status_code == 200
    assert b"wrong or was already used" in wrong.content
    assert "_auth_user_id" not in client.session

    right = client.post("/accounts/login/code/", {"otp": fresh_code(device)})
    assert right.status_code == 302
    assert right["Location"] == "/viewer/"
    assert client.session["_auth_user_id"] == str(root.pk)


def test_code_page_without_a_password_first_goes_back(client: Client, root: Any) -> None:
    response = client.get("/accounts/login/code/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


def test_the_admin_sign_in_goes_through_the_same_page(client: Client, root: Any) -> None:
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/?next=%2Fadmin%2F"
    # The admin's own form (which knows no second factor) is not reachable.
    posted = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert posted.status_code == 302
    assert "_auth_user_id" not in client.session


def test_turn_off_needs_a_current_code(client: Client, root: Any, with_totp: Any) -> None:
    device = with_totp(root)
    access = sign_in(client, "root", otp=fresh_code(device))["access"]
    refused = post(client, "/api/auth/totp/disable/", {"otp": "000000"}, **bearer(access))
    assert refused.status_code == 400
    done = post(client, "/api/auth/totp/disable/", {"otp": fresh_code(device)}, **bearer(access))
    assert done.status_code == 200
    assert not TOTPDevice.objects.filter(user=root).exists()
    sign_in(client, "root")  # the password alone again
