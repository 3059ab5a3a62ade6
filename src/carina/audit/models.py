"""Audit events: one row per access to or change of patient data, never changed afterwards.

The trail is append-only: a saved :class:`AuditEvent` cannot be saved again or deleted, and its
querysets refuse ``update()`` and ``delete()`` (:class:`AppendOnlyError`). Queries are scoped
like archive rows (:class:`~carina.tenancy.managers.TenantQuerySet`): ``for_hospital(h)`` or,
in system-level code, ``all_hospitals()``. An event without a hospital (an association
rejected because its called AE title names none) is seen only through ``all_hospitals()``.
See docs/audit.md.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

from django.db import models
from django.utils import timezone

from carina.tenancy.managers import TenantManager, TenantQuerySet
from carina.tenancy.models import Hospital

_M = TypeVar("_M", bound=models.Model)


class AppendOnlyError(RuntimeError):
    """An attempt to change or delete an audit event."""


def _refuse(what: str) -> NoReturn:
    raise AppendOnlyError(f"the audit trail is append-only: audit events cannot be {what}")


class ActorKind(models.TextChoices):
    """Who acted."""

    USER = "user", "User"
    DICOM_NODE = "dicom_node", "DICOM node"
    CLI = "cli", "Command line"
    SYSTEM = "system", "System"


class Action(models.TextChoices):
    """What was done. Extend the list when a new interface records events."""

    ASSOCIATION = "dicom.association", "DICOM association"
    ASSOCIATION_REJECTED = "dicom.association_rejected", "DICOM association rejected"
    ECHO = "dicom.echo", "DICOM verification (C-ECHO)"
    STORE = "dicom.store", "DICOM store (C-STORE received)"
    QUERY = "dicom.query", "DICOM query (C-FIND)"
    RETRIEVE = "dicom.retrieve", "DICOM retrieve (C-MOVE / C-GET)"
    IMPORT = "import", "Import (carina import)"
    WEB_QUERY = "dicomweb.query", "DICOMweb search (QIDO-RS)"
    WEB_RETRIEVE = "dicomweb.retrieve", "DICOMweb retrieve (WADO-RS)"
    WEB_STORE = "dicomweb.store", "DICOMweb store (STOW-RS)"
    WEB_DELETE = "dicomweb.delete", "DICOMweb delete"
    LOGIN = "login", "Sign-in"
    LOGIN_FAILED = "login_failed", "Failed sign-in"
    # The REST API (/api/…; carina.api.audit).
    API_QUERY = "api.query", "REST API search or read"
    API_RETRIEVE = "api.retrieve", "REST API retrieve (metadata, file, ZIP)"
    API_STORE = "api.store", "REST API store (upload)"
    API_DELETE = "api.delete", "REST API delete"
    API_CHANGE = "api.change", "REST API change"
    # Accounts (carina.audit.receivers).
    LOGOUT = "logout", "Sign-out"
    TOKEN_CREATED = "token.created", "Personal API token created"
    TOKEN_REVOKED = "token.revoked", "Personal API token revoked"
    # The audit trail itself (PS3.15 A.5.3.2 "Audit Log Used", DCM 110101).
    AUDIT_EXPORT = "audit.export", "Audit trail exported (CSV)"
    # Interfaces of later issues, named here so that their events need no new migration.
    TRANSFER = "routing.transfer", "Transfer to a destination (carina send, routing rules)"
    UI_QUERY = "ui.query", "Web UI search or read"
    UI_RETRIEVE = "ui.retrieve", "Web UI download"
    UI_STORE = "ui.store", "Web UI upload"
    UI_DELETE = "ui.delete", "Web UI delete"
    UI_CHANGE = "ui.change", "Web UI change"


class ObjectType(models.TextChoices):
    """The kind of object an event is about ("" when it is about none)."""

    NONE = "", "—"
    PATIENT = "patient", "Patient"
    STUDY = "study", "Study"
    SERIES = "series", "Series"
    INSTANCE = "instance", "Instance"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    PARTIAL = "partial", "Partial success"
    FAILURE = "failure", "Failure"


class AppendOnlyQuerySet(models.QuerySet[_M]):
    """A queryset that reads and inserts, but never updates or deletes."""

    def update(self, **kwargs: Any) -> int:
        _refuse("updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        _refuse("deleted")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        _refuse("updated")

    def update_or_create(self, *args: Any, **kwargs: Any) -> Any:
        _refuse("updated")


class AuditQuerySet(AppendOnlyQuerySet[_M], TenantQuerySet[_M]):  # type: ignore[override]
    """Append-only, and refusing to run until scoped to a hospital (or all hospitals)."""


class AuditManager(TenantManager[_M]):
    """``AuditEvent.objects``: scoped (as archive rows), append-only."""

    def get_queryset(self) -> AuditQuerySet[_M]:
        return AuditQuerySet(self.model, using=self._db)


class UnscopedAuditManager(models.Manager[_M]):
    """``AuditEvent.unscoped``: Django's default manager (admin, relations), append-only."""

    def get_queryset(self) -> AppendOnlyQuerySet[_M]:
        return AppendOnlyQuerySet(self.model, using=self._db)


class AuditEvent(models.Model):
    """One audited access or change: who, which hospital, what, which object, from where,
    outcome, when (docs/audit.md)."""

    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    #: Null for an event no hospital owns (an association whose called AE names none).
    hospital = models.ForeignKey(
        Hospital, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    #: User name, calling AE title or OS user name.
    actor = models.CharField(max_length=150, blank=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    action = models.CharField(max_length=40, choices=Action.choices)
    object_type = models.CharField(
        max_length=16, choices=ObjectType.choices, blank=True, default=ObjectType.NONE
    )
    object_uid = models.CharField(max_length=128, blank=True)
    patient_id = models.CharField(max_length=64, blank=True)
    source_ip = models.CharField(max_length=64, blank=True)
    source_ae = models.CharField(max_length=16, blank=True)
    #: The Move Destination of a C-MOVE (the requestor itself for a C-GET).
    destination_ae = models.CharField(max_length=16, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    detail = models.CharField(max_length=1000, blank=True)
    #: Instances involved.
    count = models.PositiveIntegerField(default=0)
    #: The ID of the request (``X-Request-ID``), DICOM association or task that caused the
    #: event (:mod:`carina.core.request_id`).
    correlation_id = models.CharField(max_length=64, blank=True)

    objects = AuditManager["AuditEvent"]()
    unscoped = UnscopedAuditManager["AuditEvent"]()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        default_manager_name = "unscoped"
        base_manager_name = "unscoped"
        indexes = [
            models.Index(fields=["hospital", "occurred_at"], name="audit_hospital_time"),
            models.Index(fields=["object_uid"], name="audit_object_uid"),
            models.Index(fields=["actor"], name="audit_actor"),
            models.Index(fields=["patient_id"], name="audit_patient_id"),
            models.Index(fields=["correlation_id"], name="audit_correlation_id"),
        ]

    def __str__(self) -> str:
        when = f"{self.occurred_at:%Y-%m-%d %H:%M:%S}"
        return f"{when} {self.action} by {self.actor} ({self.outcome})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse("changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        _refuse("deleted")
