"""The audit trail in the Django admin: read only, for system administrators."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from carina.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Browse only: no add, change or delete (the trail is append-only)."""

    list_display = [
        "occurred_at",
        "hospital",
        "action",
        "actor",
        "actor_kind",
        "object_type",
        "object_uid",
        "patient_id",
        "source_ae",
        "source_ip",
        "outcome",
        "count",
    ]
    list_filter = ["action", "outcome", "actor_kind", "hospital"]
    search_fields = ["actor", "object_uid", "patient_id", "source_ae", "destination_ae"]
    date_hierarchy = "occurred_at"
    actions = None

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return AuditEvent.objects.all_hospitals()  # the admin site is for system administrators
