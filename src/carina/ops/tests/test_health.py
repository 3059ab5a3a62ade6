"""Health endpoints answer without a login and tell which dependency is down."""

from __future__ import annotations

import pytest
from django.test import Client

from carina.archive.storage import get_storage

pytestmark = pytest.mark.django_db


def test_live_and_ready(client: Client) -> None:
    assert client.get("/api/health/live/").json() == {"status": "ok"}
    ready = client.get("/api/health/ready/")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["ok"] is True
    assert client.get("/api/health/").json()["status"] == "ok"


def test_ready_reports_broken_storage(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(get_storage(), "probe", broken)
    response = client.get("/api/health/ready/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["storage"] == {
        "ok": False,
        "detail": "storage unavailable: read-only file system",
    }


def test_health_only_answers_get() -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post("/api/health/live/").status_code == 405
