"""Personal API tokens: made by the signed-in user, shown once, usable by scripts on the API
and DICOMweb, revocable; refused with a reason when revoked or expired."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from carina.accounts.actions import do_create_admin, do_create_personal_token
from carina.accounts.models import PersonalToken
from carina.accounts.tests.conftest import PASSWORD, bearer, post, sign_in
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def make_token(client: Client, access: str, name: str = "nightly export", **extra: Any) -> Any:
    return post(client, "/api/auth/personal-tokens/", {"name": name, **extra}, **bearer(access))


def test_create_shows_the_key_once_and_lists_without_it(client: Client, alice: Any) -> None:
    access = sign_in(client)["access"]
    response = make_token(client, access, expires_in_days=30)
    assert response.status_code == 201
    body = response.json()
    assert body["key"].startswith("carina_")
    assert body["key"].startswith(body["prefix"])
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(days=29) < expires - timezone.now() <= dt.timedelta(days=30)

    listing = client.get("/api/auth/personal-tokens/", headers=bearer(access)).json()
    assert [t["name"] for t in listing] == ["nightly export"]
    assert "key" not in listing[0]
    # Only the digest is stored.
    assert not PersonalToken.objects.filter(key_hash=body["key"]).exists()


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
def test_a_personal_token_signs_a_script_in(client: Client, alice: Any, scheme: str) -> None:
    _, key = do_create_personal_token(alice, "script")
    headers = {"Authorization": f"{scheme} {key}"}
    response = client.get("/api/auth/me/", headers=headers)
    assert response.status_code == 200
    assert response.json()["signed_in_with"] == "personal_token"
    assert response.json()["hospitals"][0]["role"] == "radiologist"
    # DICOMweb takes it too (200, or 501 while a service is unfinished: never 401).
    assert client.get("/dicomweb/studies", headers=headers).status_code != 401
    assert PersonalToken.objects.get(user=alice).last_used_at is not None


def test_revoked_token_is_refused_with_the_reason(client: Client, alice: Any) -> None:
    access = sign_in(client)["access"]
    made = make_token(client, access).json()
    revoke = client.delete(f"/api/auth/personal-tokens/{made['id']}/", headers=bearer(access))
    assert revoke.status_code == 204

    headers = {"Authorization": f"Token {made['key']}"}
    response = client.get("/api/auth/me/", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert "was revoked" in response.json()["detail"]
    dicomweb = client.get("/dicomweb/studies", headers=headers)
    assert dicomweb.status_code == 401
    assert "was revoked" in dicomweb.json()["error"]


def test_expired_token_is_refused_with_the_reason(client: Client, alice: Any) -> None:
    token, key = do_create_personal_token(alice, "old script", expires_in_days=1)
    PersonalToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    response = client.get("/api/auth/me/", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"
    assert "expired on" in response.json()["detail"]


def test_unknown_token_is_refused(client: Client, alice: Any) -> None:
    response = client.get("/api/auth/me/", headers={"Authorization": "Token carina_nope"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_a_personal_token_cannot_make_more_tokens(client: Client, alice: Any) -> None:
    _, key = do_create_personal_token(alice, "script")
    headers = {"Authorization": f"Token {key}"}
    response = post(client, "/api/auth/personal-tokens/", {"name": "more"}, **headers)
    assert response.status_code == 403
    assert "Sign in with your password" in response.json()["detail"]
    assert client.get("/api/auth/totp/", headers=headers).status_code == 403


def test_tokens_of_others_are_not_found(client: Client, alice: Any, hospital: Hospital) -> None:
    bob, _ = do_create_admin("bob", PASSWORD, hospital, role="technologist")
    token, _ = do_create_personal_token(bob, "bob's")
    access = sign_in(client)["access"]
    assert client.get("/api/auth/personal-tokens/", headers=bearer(access)).json() == []
    response = client.delete(f"/api/auth/personal-tokens/{token.pk}/", headers=bearer(access))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_token_needs_a_name_and_a_sensible_lifetime(client: Client, alice: Any) -> None:
    access = sign_in(client)["access"]
    assert make_token(client, access, name="  ").status_code == 400
    too_long = make_token(client, access, expires_in_days=100_000)
    assert too_long.status_code == 400
    assert "expires_in_days" in too_long.json()["detail"]


def test_deactivated_account_cannot_use_its_token(client: Client, alice: Any) -> None:
    _, key = do_create_personal_token(alice, "script")
    alice.is_active = False
    alice.save()
    response = client.get("/api/auth/me/", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 401
