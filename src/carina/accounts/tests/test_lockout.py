"""Lock-out: CARINA_LOCKOUT_FAILURES failed password sign-ins within CARINA_LOCKOUT_MINUTES
lock the account on every password path, until the time passes or an administrator
unlocks it. (The tests set the number to 3.)"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from carina.accounts.actions import do_register_sign_in_failure, do_unlock
from carina.accounts.lockout import locked_until
from carina.accounts.models import SignInLock
from carina.accounts.tests.conftest import PASSWORD, post

pytestmark = pytest.mark.django_db


def token_attempt(client: Client, password: str) -> Any:
    return post(client, "/api/auth/token/", {"username": "alice", "password": password})


def page_attempt(client: Client, password: str) -> Any:
    return client.post("/accounts/login/", {"username": "alice", "password": password})


def basic_attempt(client: Client, password: str) -> Any:
    pair = base64.b64encode(f"alice:{password}".encode()).decode()
    return client.get("/api/auth/me/", headers={"Authorization": f"Basic {pair}"})


def test_token_endpoint_locks_after_repeated_failures(client: Client, alice: Any) -> None:
    for _ in range(2):
        assert token_attempt(client, "wrong").json()["code"] == "wrong_credentials"
    third = token_attempt(client, "wrong")
    assert third.status_code == 401
    assert third.json()["code"] == "account_locked"

    # Even the right password is refused now, with the time the lock ends.
    response = token_attempt(client, PASSWORD)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "account_locked"
    until = dt.datetime.fromisoformat(body["locked_until"])
    assert dt.timedelta(minutes=14) < until - timezone.now() <= dt.timedelta(minutes=15)
    assert "locked after too many failed sign-ins, until" in body["detail"]
    assert "administrator" in body["detail"]

    assert do_unlock("alice") is True
    assert token_attempt(client, PASSWORD).status_code == 200


def test_sign_in_page_locks_after_repeated_failures(client: Client, alice: Any) -> None:
    for _ in range(3):
        response = page_attempt(client, "wrong")
        assert response.status_code == 200  # the form again, with the message
    response = page_attempt(client, PASSWORD)
    assert response.status_code == 200
    assert b"locked after too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session

    do_unlock("alice")
    response = page_attempt(client, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_basic_locks_after_repeated_failures(client: Client, alice: Any, settings: Any) -> None:
    settings.CARINA_HTTP_BASIC = True
    for _ in range(3):
        assert basic_attempt(client, "wrong").status_code == 401
    response = basic_attempt(client, PASSWORD)
    assert response.status_code == 401
    assert response.json()["code"] == "account_locked"
    do_unlock("alice")
    assert basic_attempt(client, PASSWORD).status_code == 200


def test_failures_on_different_paths_add_up(client: Client, alice: Any, settings: Any) -> None:
    settings.CARINA_HTTP_BASIC = True
    page_attempt(client, "wrong")
    token_attempt(client, "wrong")
    basic_attempt(client, "wrong")
    assert locked_until("alice") is not None


def test_a_success_forgets_earlier_failures(client: Client, alice: Any) -> None:
    token_attempt(client, "wrong")
    token_attempt(client, "wrong")
    assert token_attempt(client, PASSWORD).status_code == 200
    token_attempt(client, "wrong")
    token_attempt(client, "wrong")
    assert locked_until("alice") is None


def test_failures_spread_beyond_the_window_do_not_lock(alice: Any) -> None:
    do_register_sign_in_failure("alice")
    do_register_sign_in_failure("alice")
    SignInLock.objects.filter(username="alice").update(
        first_failure_at=timezone.now() - dt.timedelta(minutes=16)
    )
    assert do_register_sign_in_failure("alice") is None
    assert SignInLock.objects.get(username="alice").failures == 1


def test_the_lock_ends_by_itself(client: Client, alice: Any) -> None:
    for _ in range(3):
        token_attempt(client, "wrong")
    SignInLock.objects.filter(username="alice").update(
        locked_until=timezone.now() - dt.timedelta(seconds=1),
        first_failure_at=timezone.now() - dt.timedelta(minutes=16),
    )
    assert token_attempt(client, PASSWORD).status_code == 200


def test_unknown_names_lock_the_same_way(client: Client, db: Any) -> None:
    for _ in range(3):
        post(client, "/api/auth/token/", {"username": "ghost", "password": "x"})
    response = post(client, "/api/auth/token/", {"username": "ghost", "password": "x"})
    assert response.json()["code"] == "account_locked"


def test_personal_tokens_keep_working_while_the_password_is_locked(
    client: Client, alice: Any
) -> None:
    from carina.accounts.actions import do_create_personal_token

    _, key = do_create_personal_token(alice, "script")
    for _ in range(3):
        token_attempt(client, "wrong")
    assert client.get("/api/auth/me/", headers={"Authorization": f"Token {key}"}).status_code == 200


def test_administrator_unlocks_in_the_admin(client: Client, alice: Any, root: Any) -> None:
    for _ in range(3):
        token_attempt(client, "wrong")
    lock = SignInLock.objects.get(username="alice")
    admin = Client()
    admin.force_login(root)
    response = admin.post(
        "/admin/accounts/signinlock/",
        {"action": "unlock", "_selected_action": [lock.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"Unlocked: alice." in response.content
    assert locked_until("alice") is None
    assert token_attempt(client, PASSWORD).status_code == 200
