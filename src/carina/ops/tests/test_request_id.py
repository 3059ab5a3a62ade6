"""Correlation IDs: ``X-Request-ID`` accepted (or made) and answered on every response,
carried onto the audit events and log lines of the request; one ID per DICOM association."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from pydicom.uid import generate_uid

from carina.api.tests.conftest import client_for, make_user
from carina.archive.ingest import Origin, ingest
from carina.archive.models import Source
from carina.audit.models import Action, AuditEvent
from carina.core.request_id import HEADER
from carina.core.testing import make_ct_slice
from carina.dimse.listener import Listener, ListenerConfig
from carina.dimse.scu import echo
from carina.ops.throttling import reset_throttles
from carina.tenancy.models import Hospital


@pytest.fixture(autouse=True)
def _quick(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    reset_throttles()


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/health/live/", 200),
        ("/api/studies/", 401),
        ("/dicomweb/studies", 401),
        ("/no/such/page/", 404),
        ("/static/rest_framework/css/bootstrap.min.css", 200),
    ],
)
def test_every_answer_carries_the_callers_id(path: str, status: int) -> None:
    answer = Client().get(path, HTTP_X_REQUEST_ID="lb-7f3a.9_Z-1")
    assert answer.status_code == status
    assert answer[HEADER] == "lb-7f3a.9_Z-1"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sent",
    ["x" * 65, "has space", 'quote"', "semi;colon", "new\nline", "ünïcode"],
)
def test_an_implausible_id_is_replaced(sent: str) -> None:
    answer = Client().get("/api/health/live/", HTTP_X_REQUEST_ID=sent)
    assert is_uuid(answer[HEADER])


@pytest.mark.django_db
def test_an_id_is_made_when_none_is_sent() -> None:
    client = Client()
    first = client.get("/api/health/live/")[HEADER]
    second = client.get("/api/health/live/")[HEADER]
    assert is_uuid(first) and is_uuid(second) and first != second


@pytest.mark.django_db
def test_audit_events_carry_the_id_of_their_request(hospital: Hospital, tmp_path: Path) -> None:
    path = tmp_path / "ct.dcm"
    study_uid = generate_uid()
    make_ct_slice(study_uid=study_uid, series_uid=generate_uid(), index=0).save_as(
        path, enforce_file_format=True
    )
    ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, "test"))
    client = client_for(make_user("reader", hospital, "hospital_admin"))
    api = client.get("/api/studies/", HTTP_X_REQUEST_ID="api-list-1")
    assert api.status_code == 200 and api[HEADER] == "api-list-1"
    qido = client.get("/dicomweb/studies", HTTP_X_REQUEST_ID="qido-1")
    assert qido.status_code == 200
    # Both answers are streamed and record their event when the stream ends, after the
    # middleware has returned: the ID stays current while the body is produced.
    b"".join(qido.streaming_content)
    zipped = client.get(f"/api/studies/{study_uid}/zip/", HTTP_X_REQUEST_ID="zip-1")
    assert zipped.status_code == 200
    b"".join(zipped.streaming_content)  # the ZIP's event is recorded when the stream ends
    events = AuditEvent.objects.for_hospital(hospital)
    assert events.get(correlation_id="api-list-1").action == Action.API_QUERY
    assert events.get(correlation_id="qido-1").action == Action.WEB_QUERY
    assert events.get(correlation_id="zip-1").action == Action.API_RETRIEVE
    # Searching the trail by the ID finds the request's events.
    found = client.get("/api/audit/", {"correlation_id": "zip-1"}).json()["results"]
    assert [e["action"] for e in found] == ["api.retrieve"]


@pytest.mark.django_db
def test_log_lines_show_the_id(settings: Any, hospital: Hospital) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    request_id = f"logged-{uuid.uuid4().hex[:12]}"  # the log file outlives the test
    answer = Client().post(
        "/api/nodes/",
        '{"name": "a node with a long name"}',
        content_type="application/json",
        HTTP_X_REQUEST_ID=request_id,
    )
    assert answer.status_code == 413
    log = Path(django_settings.CARINA_LOG_DIR) / "carina.log"
    lines = [line for line in log.read_text().splitlines() if f"[{request_id}]" in line]
    assert len(lines) == 1
    assert f" INFO [{request_id}] carina.ops.limits: refused POST /api/nodes/" in lines[0]


@pytest.fixture
def listener(hospital: Hospital, tmp_path: Path) -> Iterator[Listener]:
    config = ListenerConfig.from_settings(host="127.0.0.1", port=0, spool_dir=tmp_path / "spool")
    started = Listener(config).start()
    yield started
    started.stop(grace_period=5)


@pytest.mark.django_db(transaction=True)
def test_each_dicom_association_has_its_own_id(listener: Listener, hospital: Hospital) -> None:
    for _ in range(2):
        assert echo("127.0.0.1", listener.port, "CARINA", "IDSCU").ok
    listener.stop(grace_period=5)  # waits for the associations to record their events
    events = AuditEvent.objects.for_hospital(hospital).filter(actor="IDSCU")
    by_id: dict[str, set[str]] = {}
    for event in events:
        by_id.setdefault(event.correlation_id, set()).add(event.action)
    assert len(by_id) == 2
    for correlation_id, actions in by_id.items():
        assert is_uuid(correlation_id)
        assert actions == {Action.ASSOCIATION, Action.ECHO}
