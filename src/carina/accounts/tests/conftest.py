"""Fixtures for account tests: users with roles, JSON helpers for the Django test client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from django.test import Client
from django.test.client import RequestFactory

from carina.accounts import authentication
from carina.accounts.actions import do_confirm_totp, do_create_admin, do_start_totp
from carina.accounts.models import TOTPDevice
from carina.tenancy.models import Hospital

PASSWORD = "Carina-test-pw-1"
#: The address every request of these tests comes from (REMOTE_ADDR).
CLIENT_IP = "10.20.30.40"


@pytest.fixture(autouse=True)
def _fresh(settings: Any) -> Iterator[None]:
    """A quick password hash (the cost is not what these tests look at), the lock-out
    numbers spelled out, and an empty HTTP Basic cache."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CARINA_LOCKOUT_FAILURES = 3
    settings.CARINA_LOCKOUT_MINUTES = 15
    settings.CARINA_HTTP_BASIC = False
    authentication._basic_cache.clear()
    yield
    authentication._basic_cache.clear()


@pytest.fixture
def client() -> Client:
    return Client(REMOTE_ADDR=CLIENT_IP)


@pytest.fixture
def alice(hospital: Hospital) -> Any:
    """A radiologist of the default hospital."""
    user, _ = do_create_admin("alice", PASSWORD, hospital, role="radiologist")
    return user


@pytest.fixture
def root(db: Any) -> Any:
    """A system administrator."""
    user, _ = do_create_admin("root", PASSWORD)
    return user


def post(client: Client, path: str, data: dict[str, Any] | None = None, /, **headers: Any) -> Any:
    return client.post(
        path, json.dumps(data or {}), content_type="application/json", headers=headers
    )


def sign_in(client: Client, username: str = "alice", **extra: Any) -> dict[str, str]:
    """``{access, refresh}`` from /api/auth/token/ (asserting success)."""
    response = post(
        client, "/api/auth/token/", {"username": username, "password": PASSWORD, **extra}
    )
    assert response.status_code == 200, response.content
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fresh_code(device: TOTPDevice) -> str:
    """A code the device has not used yet: the oldest one still accepted (the previous step)
    or the one after the last used, so that a test may sign in up to three times."""
    device.refresh_from_db()
    current = int(time.time() // 30)
    step = max(current - 1, device.last_used_step + 1)
    assert step <= current + 1, "more codes asked for than the accepted window holds"
    return pyotp.TOTP(device.secret).at(step * 30)


def enable_totp(user: Any) -> TOTPDevice:
    """Give a user a confirmed authenticator app."""
    device = do_start_totp(user)
    do_confirm_totp(user, fresh_code(device))
    device.refresh_from_db()
    return device


@pytest.fixture
def with_totp() -> Callable[[Any], TOTPDevice]:
    return enable_totp


@pytest.fixture
def rf() -> RequestFactory:
    return RequestFactory(REMOTE_ADDR=CLIENT_IP)
