"""Sign-ins and refused sign-ins in the audit trail (carina.audit.receivers), with the
caller's address, on every password path. The fixtures (users, a client with a fixed address,
fast password hashing, lock-out after 3 failures) are those of the accounts tests."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client

from carina.accounts.actions import do_create_admin
from carina.accounts.tests.conftest import (
    CLIENT_IP,
    PASSWORD,
    enable_totp,
    fresh_code,
    post,
    sign_in,
)
from carina.audit.models import Action, AuditEvent, Outcome
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick(settings: Any) -> None:
    """A quick password hash; a lock after 3 failures."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CARINA_LOCKOUT_FAILURES = 3


@pytest.fixture
def client() -> Client:
    return Client(REMOTE_ADDR=CLIENT_IP)


@pytest.fixture
def alice(hospital: Hospital) -> Any:
    return do_create_admin("alice", PASSWORD, hospital, role="radiologist")[0]


@pytest.fixture
def root(db: Any) -> Any:
    return do_create_admin("root", PASSWORD)[0]


def sign_in_events(actor: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.all_hospitals()
        .filter(actor=actor, action__in=[Action.LOGIN, Action.LOGIN_FAILED])
        .order_by("id")
    )


def test_token_sign_in_and_failure_are_recorded(client: Client, alice: Any) -> None:
    post(client, "/api/auth/token/", {"username": "alice", "password": "wrong"})
    sign_in(client)
    failed, signed_in = sign_in_events("alice")
    assert failed.action == Action.LOGIN_FAILED
    assert failed.outcome == Outcome.FAILURE
    assert failed.source_ip == CLIENT_IP
    assert "wrong user name or password" in failed.detail
    assert "/api/auth/token/" in failed.detail
    assert signed_in.action == Action.LOGIN
    assert signed_in.outcome == Outcome.SUCCESS
    assert signed_in.source_ip == CLIENT_IP
    assert signed_in.detail == "Signed in with password at /api/auth/token/."


def test_sign_in_page_is_recorded(client: Client, alice: Any) -> None:
    client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    failed, signed_in = sign_in_events("alice")
    assert (failed.action, failed.source_ip) == (Action.LOGIN_FAILED, CLIENT_IP)
    assert (signed_in.action, signed_in.source_ip) == (Action.LOGIN, CLIENT_IP)
    assert "/accounts/login/" in signed_in.detail


def test_lock_and_unknown_names_are_recorded(client: Client, alice: Any) -> None:
    for _ in range(4):
        post(client, "/api/auth/token/", {"username": "alice", "password": "wrong"})
    details = [e.detail for e in sign_in_events("alice")]
    assert "the account is now locked until" in details[2]
    assert "account locked until" in details[3]
    post(client, "/api/auth/token/", {"username": "mallory", "password": "x"})
    assert sign_in_events("mallory")[0].action == Action.LOGIN_FAILED


def test_second_factor_is_recorded(client: Client, root: Any) -> None:
    device = enable_totp(root)
    post(client, "/api/auth/token/", {"username": "root", "password": PASSWORD, "otp": "000000"})
    sign_in(client, "root", otp=fresh_code(device))
    failed, signed_in = sign_in_events("root")
    assert "wrong authenticator code" in failed.detail
    assert signed_in.detail.startswith("Signed in with password and authenticator code")


def test_basic_failure_is_recorded(client: Client, alice: Any, settings: Any) -> None:
    settings.CARINA_HTTP_BASIC = True
    pair = base64.b64encode(b"alice:wrong").decode()
    client.get("/dicomweb/studies", headers={"Authorization": f"Basic {pair}"})
    (failed,) = sign_in_events("alice")
    assert failed.source_ip == CLIENT_IP
    assert "/dicomweb/studies" in failed.detail
