"""Every page answers each role as the permission matrix says (docs/accounts.md): 200 where
the role may, 403 with the reason where it may not; signed-out visitors go to the sign-in
page."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

CLINICAL = {
    "/",
    "/dashboard/",
    "/audit/",
    "/account/",
    "/account/password/",
    "/account/authenticator/",
}
STORE = {"/upload/", "/transfers/"}  # store and send go together in the matrix
MANAGE = {
    "/manage/nodes/",
    "/manage/nodes/add/",
    "/manage/users/",
    "/manage/users/add/",
    "/manage/policies/",
    "/manage/status/",
}
SYSTEM = {"/manage/hospitals/", "/manage/hospitals/add/", "/manage/hospitals/default/"}
PAGES = sorted(CLINICAL | STORE | MANAGE | SYSTEM)

ALLOWED = {
    "system": CLINICAL | STORE | MANAGE | SYSTEM,
    "admin": CLINICAL | STORE | MANAGE,
    "radiologist": CLINICAL | STORE,
    "technologist": CLINICAL | STORE,
    "physician": CLINICAL,
    "other_radiologist": CLINICAL | STORE,
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_pages_per_role(clients: dict[str, Client], role: str) -> None:
    client = clients[role]
    for path in PAGES:
        response = client.get(path)
        expected = 200 if path in ALLOWED[role] else 403
        assert response.status_code == expected, (role, path)
        if expected == 403:
            assert "ask a hospital administrator" in response.content.decode(), path


def test_signed_out_visitors_are_asked_to_sign_in(client: Client) -> None:
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/?next="), path
