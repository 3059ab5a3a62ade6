"""Fixtures for reading the audit trail through the API: users of each role in two
hospitals, and events of every kind in both."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from carina.api.tests.conftest import make_user
from carina.audit.actions import do_record
from carina.audit.models import Action, ActorKind, AuditEvent, ObjectType, Outcome
from carina.ops.throttling import reset_throttles
from carina.tenancy.models import Hospital

#: When the fixture's events happened.
DAY = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _quick(settings: Any) -> None:
    """A quick password hash and fresh request counters."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    reset_throttles()


@pytest.fixture
def people(hospital: Hospital, other_hospital: Hospital) -> dict[str, Any]:
    return {
        "admin": make_user("a-admin", hospital, "hospital_admin"),
        "radiologist": make_user("a-radiologist", hospital, "radiologist"),
        "physician": make_user("a-physician", hospital, "physician"),
        "other_admin": make_user("b-admin", other_hospital, "hospital_admin"),
        "system": make_user("root", None),
    }


def event(hospital: Hospital | None, **fields: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "hospital": hospital,
        "actor": "MODALITY",
        "actor_kind": ActorKind.DICOM_NODE,
        "action": Action.STORE,
        "object_type": ObjectType.STUDY,
        "object_uid": "1.2.3",
        "patient_id": "P1",
        "source_ae": "MODALITY",
        "source_ip": "10.0.0.9",
        "count": 3,
        "occurred_at": DAY,
    }
    values.update(fields)
    return do_record(**values)


@pytest.fixture
def trail(people: dict[str, Any], hospital: Hospital, other_hospital: Hospital) -> dict[str, Any]:
    """Events in hospital A (a modality's store, the radiologist's and the physician's
    reads), in hospital B (a secret study), and of no hospital (sign-ins)."""
    return {
        "a_store": event(hospital, object_uid="1.2.840.1", patient_id="PA1"),
        "a_radiologist": event(
            hospital,
            actor="a-radiologist",
            actor_kind=ActorKind.USER,
            action=Action.API_QUERY,
            object_uid="1.2.840.1",
            patient_id="PA1",
            source_ae="",
            source_ip="10.0.0.5",
            occurred_at=DAY + dt.timedelta(hours=1),
            correlation_id="req-radiologist-1",
        ),
        "a_physician": event(
            hospital,
            actor="a-physician",
            actor_kind=ActorKind.USER,
            action=Action.WEB_RETRIEVE,
            object_uid="1.2.840.2",
            patient_id="PA2",
            source_ae="",
            outcome=Outcome.PARTIAL,
            occurred_at=DAY + dt.timedelta(days=1),
        ),
        "a_failed_node": event(
            hospital,
            actor="BADNODE",
            action=Action.ASSOCIATION_REJECTED,
            object_type=ObjectType.NONE,
            object_uid="",
            patient_id="",
            source_ae="BADNODE",
            outcome=Outcome.FAILURE,
            detail='=HYPERLINK("http://evil")',
            occurred_at=DAY + dt.timedelta(days=2),
        ),
        "b_secret": event(
            other_hospital,
            actor="b-admin",
            actor_kind=ActorKind.USER,
            action=Action.API_QUERY,
            object_uid="1.2.840.999",
            patient_id="PIDB01",
            detail="SECRET^BOB",
        ),
        "radiologist_sign_in": event(
            None,
            actor="a-radiologist",
            actor_kind=ActorKind.USER,
            action=Action.LOGIN,
            object_type=ObjectType.NONE,
            object_uid="",
            patient_id="",
            occurred_at=timezone.now(),
        ),
        "b_sign_in": event(
            None,
            actor="b-admin",
            actor_kind=ActorKind.USER,
            action=Action.LOGIN,
            object_type=ObjectType.NONE,
            object_uid="",
            patient_id="",
        ),
        # An AE title that happens to equal a user name is not that user's own event.
        "node_named_like_a_user": event(hospital, actor="a-physician"),
    }
