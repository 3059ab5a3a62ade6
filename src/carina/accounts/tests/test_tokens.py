"""JWT sign-in at /api/auth/token/: obtain, refresh with rotation, reuse detection, logout
(docs/accounts.md, "Tokens")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from carina.accounts.actions import do_set_password
from carina.accounts.jwt_tokens import SID_CLAIM
from carina.accounts.models import ApiSignIn
from carina.accounts.tests.conftest import PASSWORD, bearer, post, sign_in

pytestmark = pytest.mark.django_db


def me(client: Client, access: str) -> Any:
    return client.get("/api/auth/me/", headers=bearer(access))


def test_obtain_gives_tokens_that_open_the_api(client: Client, alice: Any) -> None:
    tokens = sign_in(client)
    assert set(tokens) == {"access", "refresh"}
    response = me(client, tokens["access"])
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert response.json()["signed_in_with"] == "jwt"


def test_wrong_password_is_refused_with_a_reason(client: Client, alice: Any) -> None:
    response = post(client, "/api/auth/token/", {"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Wrong user name or password.",
        "code": "wrong_credentials",
    }
    unknown = post(client, "/api/auth/token/", {"username": "nobody", "password": "nope"})
    assert unknown.json() == response.json()  # no hint whether the account exists


def test_incomplete_request_says_what_is_missing(client: Client, alice: Any) -> None:
    response = post(client, "/api/auth/token/", {"username": "alice"})
    assert response.status_code == 400
    assert "password" in response.json()["detail"]


def test_refresh_rotates_and_the_old_refresh_token_is_refused(client: Client, alice: Any) -> None:
    first = sign_in(client)
    response = post(client, "/api/auth/token/refresh/", {"refresh": first["refresh"]})
    assert response.status_code == 200
    second = response.json()
    assert second["refresh"] != first["refresh"]
    assert me(client, second["access"]).status_code == 200

    again = post(client, "/api/auth/token/refresh/", {"refresh": first["refresh"]})
    assert again.status_code == 401
    assert again.json()["code"] == "token_reused"
    assert "already used" in again.json()["detail"]
    # Reuse means a copy may be in other hands: the whole sign-in ends, the new pair too.
    assert me(client, second["access"]).status_code == 401
    latest = post(client, "/api/auth/token/refresh/", {"refresh": second["refresh"]})
    assert latest.status_code == 401
    assert latest.json()["code"] == "token_revoked"


def test_logout_revokes_the_refresh_and_the_access_token(client: Client, alice: Any) -> None:
    tokens = sign_in(client)
    other = sign_in(client)  # another sign-in (another program) stays signed in
    response = post(client, "/api/auth/logout/", {"refresh": tokens["refresh"]})
    assert response.status_code == 200
    assert "revoked" in response.json()["detail"]

    refused = me(client, tokens["access"])
    # Signing out twice, or with the access token expired or revoked alongside, still answers.
    again = post(
        client, "/api/auth/logout/", {"refresh": tokens["refresh"]}, **bearer(tokens["access"])
    )
    assert again.status_code == 200
    assert refused.status_code == 401
    assert "sign in again" in refused.json()["detail"]
    refresh = post(client, "/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert refresh.status_code == 401
    assert me(client, other["access"]).status_code == 200


def test_an_access_token_is_not_a_refresh_token(client: Client, alice: Any) -> None:
    tokens = sign_in(client)
    response = post(client, "/api/auth/token/refresh/", {"refresh": tokens["access"]})
    assert response.status_code == 401
    assert "not a refresh token" in response.json()["detail"]
    assert me(client, tokens["refresh"]).status_code == 401


def test_expired_access_token_says_how_to_get_a_new_one(client: Client, alice: Any) -> None:
    tokens = sign_in(client)
    expired = AccessToken(tokens["access"])  # type: ignore[arg-type]
    expired.set_exp(lifetime=-dt.timedelta(seconds=5))
    response = me(client, str(expired))
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "token_expired"
    assert "/api/auth/token/refresh/" in body["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_forged_token_is_refused(client: Client, alice: Any) -> None:
    tokens = sign_in(client)
    head, payload, signature = tokens["access"].split(".")
    forged = f"{head}.{payload}.{signature[::-1]}"
    response = me(client, forged)
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_password_change_ends_api_sign_ins(client: Client, alice: Any) -> None:
    tokens = sign_in(client)
    do_set_password(alice, "Another-good-pw-2")
    assert me(client, tokens["access"]).status_code == 401
    assert (
        post(client, "/api/auth/token/refresh/", {"refresh": tokens["refresh"]}).status_code == 401
    )
    assert ApiSignIn.objects.get(user=alice).revoked_reason == "password changed"


def test_deactivated_account_cannot_use_its_tokens(client: Client, alice: Any) -> None:
    tokens = sign_in(client)
    alice.is_active = False
    alice.save()
    response = me(client, tokens["access"])
    assert response.status_code == 401
    assert response.json()["detail"] == "This account is deactivated."


def test_a_deleted_account_is_named_as_the_reason(client: Client, alice: Any) -> None:
    tokens = sign_in(client)
    alice.delete()
    response = me(client, tokens["access"])
    assert response.status_code == 401
    assert response.json()["code"] == "user_not_found"
    assert "no longer exists" in response.json()["detail"]


def test_a_token_naming_another_users_sign_in_is_refused(
    client: Client, alice: Any, root: Any
) -> None:
    """A token that names root's sign-in but alice's account (only a holder of the signing
    key could make one) does not let alice in on root's sign-in, nor root on alice's token."""
    roots = AccessToken(sign_in(client, "root")["access"])  # type: ignore[arg-type]
    mixed = AccessToken.for_user(alice)
    mixed[SID_CLAIM] = roots[SID_CLAIM]
    response = me(client, str(mixed))
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"


def test_tokens_carry_their_sign_in(client: Client, alice: Any) -> None:
    tokens = sign_in(client)
    sid = AccessToken(tokens["access"])[SID_CLAIM]  # type: ignore[arg-type]
    sign_in_row = ApiSignIn.objects.get(pk=sid)
    assert sign_in_row.user == alice
    assert sign_in_row.source_ip == "10.20.30.40"


def test_session_logout_through_the_api(client: Client, alice: Any) -> None:
    client.login(username="alice", password=PASSWORD)
    assert client.get("/api/auth/me/").json()["signed_in_with"] == "session"
    response = client.post("/api/auth/logout/")
    assert response.status_code == 200
    assert client.get("/api/auth/me/").status_code in (401, 403)
