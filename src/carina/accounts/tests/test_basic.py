"""HTTP Basic for DICOM tools: off by default (refused with a reason), on with
CARINA_HTTP_BASIC; a personal token may stand in for the password."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client

from carina.accounts.actions import do_create_personal_token
from carina.accounts.tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def basic(username: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def test_basic_is_refused_when_turned_off(client: Client, alice: Any) -> None:
    response = client.get("/api/auth/me/", headers=basic("alice", PASSWORD))
    assert response.status_code == 401
    assert response.json()["code"] == "basic_disabled"
    assert "CARINA_HTTP_BASIC" in response.json()["detail"]
    dicomweb = client.get("/dicomweb/studies", headers=basic("alice", PASSWORD))
    assert dicomweb.status_code == 401
    assert "turned off" in dicomweb.json()["error"]


def test_basic_works_when_turned_on(client: Client, alice: Any, settings: Any) -> None:
    settings.CARINA_HTTP_BASIC = True
    for _ in range(2):  # the second request is answered from the verified-password cache
        response = client.get("/api/auth/me/", headers=basic("alice", PASSWORD))
        assert response.status_code == 200
        assert response.json()["signed_in_with"] == "basic"
    assert client.get("/dicomweb/studies", headers=basic("alice", PASSWORD)).status_code != 401


def test_basic_wrong_password_is_refused(client: Client, alice: Any, settings: Any) -> None:
    settings.CARINA_HTTP_BASIC = True
    response = client.get("/api/auth/me/", headers=basic("alice", "wrong"))
    assert response.status_code == 401
    assert response.json()["detail"] == "Wrong user name or password."
    assert response["WWW-Authenticate"] == 'Bearer realm="carina", Basic realm="carina"'


def test_cached_basic_password_stops_working_after_a_change(
    client: Client, alice: Any, settings: Any
) -> None:
    settings.CARINA_HTTP_BASIC = True
    assert client.get("/api/auth/me/", headers=basic("alice", PASSWORD)).status_code == 200
    alice.set_password("Another-good-pw-2")
    alice.save()
    assert client.get("/api/auth/me/", headers=basic("alice", PASSWORD)).status_code == 401


def test_personal_token_as_the_basic_password(
    client: Client, alice: Any, settings: Any, with_totp: Any
) -> None:
    settings.CARINA_HTTP_BASIC = True
    with_totp(alice)
    # The authenticator code cannot travel in Basic: the password alone is refused ...
    refused = client.get("/api/auth/me/", headers=basic("alice", PASSWORD))
    assert refused.status_code == 401
    assert "personal tokens" in refused.json()["detail"]
    # ... a personal token is the way.
    _, key = do_create_personal_token(alice, "weasis")
    assert client.get("/api/auth/me/", headers=basic("alice", key)).status_code == 200
    assert client.get("/api/auth/me/", headers=basic("bob", key)).status_code == 401


def test_malformed_basic_header(client: Client, alice: Any, settings: Any) -> None:
    settings.CARINA_HTTP_BASIC = True
    response = client.get("/api/auth/me/", headers={"Authorization": "Basic !!!"})
    assert response.status_code == 401
    assert "base64" in response.json()["detail"]


def test_unknown_scheme_is_named(client: Client, alice: Any) -> None:
    response = client.get("/dicomweb/studies", headers={"Authorization": "Digest abc"})
    assert response.status_code == 401
    assert "Digest" in response.json()["error"]


def test_a_very_long_user_name_is_refused_cleanly(
    client: Client, alice: Any, settings: Any
) -> None:
    settings.CARINA_HTTP_BASIC = True
    for _ in range(4):
        response = client.get("/api/auth/me/", headers=basic("x" * 300, "wrong"))
    assert response.status_code == 401
    assert response.json()["code"] == "account_locked"
