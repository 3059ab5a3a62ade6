"""Passwords are checked by Django's validators on every path that sets one: the
``carina createadmin`` action, the API, and the admin's user forms."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from carina.accounts.actions import AccountError, do_create_admin, do_set_password
from carina.accounts.tests.conftest import PASSWORD, bearer, post, sign_in
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db

WEAK = "12345"


def test_createadmin_refuses_a_weak_password(hospital: Hospital) -> None:
    with pytest.raises(AccountError, match=r"Password refused: .*too short"):
        do_create_admin("carol", WEAK, hospital)
    assert not get_user_model().objects.filter(username="carol").exists()


def test_set_password_refuses_a_weak_one(alice: Any) -> None:
    with pytest.raises(AccountError, match=r"too common"):
        do_set_password(alice, "password")
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_api_password_change(client: Client, alice: Any) -> None:
    access = sign_in(client)["access"]
    weak = post(
        client,
        "/api/auth/password/",
        {"old_password": PASSWORD, "new_password": WEAK},
        **bearer(access),
    )
    assert weak.status_code == 400
    assert weak.json()["code"] == "password_refused"
    assert "too short" in weak.json()["detail"]

    wrong_old = post(
        client,
        "/api/auth/password/",
        {"old_password": "nope", "new_password": "Another-good-pw-2"},
        **bearer(access),
    )
    assert wrong_old.json()["code"] == "wrong_password"

    done = post(
        client,
        "/api/auth/password/",
        {"old_password": PASSWORD, "new_password": "Another-good-pw-2"},
        **bearer(access),
    )
    assert done.status_code == 200
    assert client.get("/api/auth/me/", headers=bearer(access)).status_code == 401
    new = post(client, "/api/auth/token/", {"username": "alice", "password": "Another-good-pw-2"})
    assert new.status_code == 200


def test_password_change_keeps_the_web_session(client: Client, alice: Any) -> None:
    client.login(username="alice", password=PASSWORD)
    response = client.post(
        "/api/auth/password/",
        {"old_password": PASSWORD, "new_password": "Another-good-pw-2"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert client.get("/api/auth/me/").status_code == 200


def test_admin_user_forms_refuse_a_weak_password(root: Any, alice: Any) -> None:
    admin = Client()
    admin.force_login(root)
    add = admin.post(
        "/admin/auth/user/add/",
        {"username": "dave", "usable_password": "true", "password1": WEAK, "password2": WEAK},
    )
    assert add.status_code == 200
    assert b"too short" in add.content
    assert not get_user_model().objects.filter(username="dave").exists()

    change = admin.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"usable_password": "true", "password1": WEAK, "password2": WEAK},
    )
    assert change.status_code == 200
    assert b"too short" in change.content
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
