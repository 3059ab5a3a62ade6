"""The audit trail itself: append-only, scoped by hospital like archive rows, read-only in the
admin, and the import command's events."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from carina.audit.actions import build, do_record, do_record_many
from carina.audit.models import Action, ActorKind, AppendOnlyError, AuditEvent, ObjectType, Outcome
from carina.cli.importer import run_import
from carina.core.testing import write_series
from carina.tenancy.managers import UnscopedQueryError
from carina.tenancy.models import Hospital


def _event(hospital: Hospital | None, **fields: object) -> AuditEvent:
    values: dict[str, object] = {
        "hospital": hospital,
        "actor": "MODALITY",
        "actor_kind": ActorKind.DICOM_NODE,
        "action": Action.STORE,
        "object_type": ObjectType.STUDY,
        "object_uid": "1.2.3",
        "patient_id": "P1",
        "count": 3,
    }
    values.update(fields)
    return do_record(**values)


@pytest.mark.django_db
def test_events_cannot_be_changed_or_deleted(hospital: Hospital) -> None:
    event = _event(hospital)
    event.detail = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.for_hospital(hospital).update(detail="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all_hospitals().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.unscoped.filter(pk=event.pk).update(count=0)
    with pytest.raises(AppendOnlyError):
        AuditEvent.unscoped.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.unscoped.bulk_update([event], ["detail"])
    stored = AuditEvent.objects.for_hospital(hospital).get()
    assert stored.detail == ""
    assert stored.count == 3


@pytest.mark.django_db
def test_queries_are_scoped_to_one_hospital(hospital: Hospital, other_hospital: Hospital) -> None:
    _event(hospital, object_uid="1.1")
    _event(other_hospital, object_uid="2.2")
    _event(None, action=Action.ASSOCIATION_REJECTED, object_type="", object_uid="")
    assert [e.object_uid for e in AuditEvent.objects.for_hospital(hospital)] == ["1.1"]
    assert [e.object_uid for e in AuditEvent.objects.for_hospital(other_hospital.pk)] == ["2.2"]
    assert not AuditEvent.objects.for_hospital(hospital).filter(object_uid="2.2").exists()
    assert AuditEvent.objects.all_hospitals().count() == 3
    with pytest.raises(UnscopedQueryError):
        list(AuditEvent.objects.all())
    with pytest.raises(UnscopedQueryError):
        AuditEvent.objects.filter(object_uid="2.2").count()


@pytest.mark.django_db
def test_record_many_is_one_insert_and_cuts_long_text(hospital: Hospital) -> None:
    rows = [
        build(
            hospital=hospital,
            actor="x" * 500,
            actor_kind=ActorKind.SYSTEM,
            action=Action.IMPORT,
            detail="d" * 5000,
            outcome=Outcome.PARTIAL,
        )
        for _ in range(5)
    ]
    with CaptureQueriesContext(connection) as queries:
        do_record_many(rows)
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    saved = list(AuditEvent.objects.for_hospital(hospital))
    assert len(saved) == 5
    assert len(saved[0].actor) == 150 and len(saved[0].detail) == 1000
    assert do_record_many([]) == []


@pytest.mark.django_db
def test_admin_lists_events_but_cannot_add_change_or_delete(
    admin_client: Client, hospital: Hospital
) -> None:
    event = _event(hospital, patient_id="ADMIN-PID")
    page = admin_client.get("/admin/audit/auditevent/")
    assert page.status_code == 200
    assert "ADMIN-PID" in page.content.decode()
    assert admin_client.get("/admin/audit/auditevent/add/").status_code == 403
    change = f"/admin/audit/auditevent/{event.pk}/change/"
    assert admin_client.post(change, {"detail": "rewritten"}).status_code == 403
    delete = f"/admin/audit/auditevent/{event.pk}/delete/"
    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        "/admin/audit/auditevent/",
        {"action": "delete_selected", "_selected_action": [event.pk]},
    )
    assert bulk.status_code in (200, 302, 403)
    assert AuditEvent.objects.for_hospital(hospital).get().detail == ""


@pytest.mark.django_db(transaction=True)
def test_import_records_one_event_per_study_and_the_rejections(
    hospital: Hospital, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_series(tmp_path / "in" / "a", 3, patient_id="IMP-A")
    second = write_series(tmp_path / "in" / "b", 2, patient_id="IMP-B")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    assert run_import([str(tmp_path / "in")], "default", progress=False) == 1
    imports = list(AuditEvent.objects.for_hospital(hospital).filter(action=Action.IMPORT))
    by_study = {e.object_uid: e for e in imports if e.object_uid}
    assert len(by_study) == 2
    for paths, patient_id in ((first, "IMP-A"), (second, "IMP-B")):
        event = by_study[str(pydicom.dcmread(paths[0]).StudyInstanceUID)]
        assert event.actor_kind == ActorKind.CLI
        assert event.actor  # the OS user
        assert event.patient_id == patient_id
        assert event.count == len(paths)
        assert event.outcome == Outcome.SUCCESS
        assert f"{len(paths)} stored" in event.detail
    (rejected,) = [e for e in imports if not e.object_uid]
    assert rejected.outcome == Outcome.FAILURE
    assert rejected.count == 1
    assert "notes.txt" in rejected.detail
