"""Who may read /dicomweb: 401 JSON (never a login redirect) without valid credentials; a
session cookie or a Bearer token; the hospital is the user's own."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from carina.dicomweb.tests.conftest import PASSWORD, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_no_credentials_is_401_json_not_a_redirect(live_server: Any, reader: Any) -> None:
    response = requests.get(
        f"{live_server.url}/dicomweb/studies", allow_redirects=False, timeout=30
    )
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert "Sign in" in response.json()["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_forged_token_is_401_with_the_reason(live_server: Any, reader: Any) -> None:
    response = requests.get(
        f"{live_server.url}/dicomweb/studies",
        headers={"Authorization": "Bearer not.a.token"},
        timeout=30,
    )
    assert response.status_code == 401
    assert "not valid or has expired" in response.json()["error"]


def test_wrong_password_gets_no_token(live_server: Any, reader: Any) -> None:
    response = requests.post(
        f"{live_server.url}/api/auth/token/",
        json={"username": "reader", "password": "wrong"},
        timeout=30,
    )
    assert response.status_code == 401
    assert "access" not in response.json()


def test_session_sign_in_reaches_dicomweb(live_server: Any, reader: Any) -> None:
    session = requests.Session()
    page = session.get(f"{live_server.url}/accounts/login/", timeout=30)
    assert page.status_code == 200
    signed_in = session.post(
        f"{live_server.url}/accounts/login/",
        data={
            "username": "reader",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{live_server.url}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert signed_in.status_code == 302
    response = session.get(f"{live_server.url}/dicomweb/studies", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/dicom+json")


def test_a_hospital_the_user_does_not_belong_to_is_refused(
    live_server: Any, reader: Any, other_hospital: Any
) -> None:
    token = token_for(live_server.url, "reader")
    response = requests.get(
        f"{live_server.url}/dicomweb/studies",
        headers={"Authorization": f"Bearer {token}", "X-Carina-Hospital": "other"},
        timeout=30,
    )
    assert response.status_code == 403
    assert "'other'" in response.json()["error"]


def test_unsupported_method_is_405_with_allow(live_server: Any, reader: Any) -> None:
    token = token_for(live_server.url, "reader")
    response = requests.put(
        f"{live_server.url}/dicomweb/studies",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
