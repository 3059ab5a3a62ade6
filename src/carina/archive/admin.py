"""Read-only browsing of the archive in the Django admin (system administrators).

Objects enter only through the ingest pipeline, so the admin cannot add or edit them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from carina.archive.models import DemographicsMismatch, Instance, Patient, Series, Study


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Browse only: the archive changes through the ingest pipeline and actions."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return self.model.objects.all_hospitals()  # the admin site is for system administrators


@admin.register(Patient)
class PatientAdmin(ReadOnlyAdmin):
    list_display = [
        "patient_name",
        "patient_id",
        "issuer_of_patient_id",
        "patient_birth_date",
        "patient_sex",
        "hospital",
    ]
    list_filter = ["hospital", "patient_sex"]
    search_fields = ["patient_name", "patient_id"]


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = [
        "study_date",
        "patient",
        "accession_number",
        "study_description",
        "modalities_in_study",
        "number_of_series",
        "number_of_instances",
        "hospital",
        "open_in_viewer",
    ]
    readonly_fields = ["open_in_viewer"]
    list_filter = ["hospital", "study_date"]
    search_fields = [
        "study_instance_uid",
        "accession_number",
        "study_description",
        "patient__patient_name",
        "patient__patient_id",
    ]
    list_select_related = ["patient", "hospital"]
    date_hierarchy = "study_date"

    @admin.display(description="Viewer")
    def open_in_viewer(self, study: Study) -> SafeString:
        """Links to the study in OHIF (``/viewer/viewer?StudyInstanceUIDs=…``) and in its MPR
        layout (``&hangingprotocolId=mpr``); the viewer opens in a new tab."""
        viewer = reverse("viewer:app", kwargs={"path": "viewer"})
        uids = {"StudyInstanceUIDs": study.study_instance_uid}
        mpr = {**uids, "hangingprotocolId": "mpr"}
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">Open in viewer</a> · '
            '<a href="{}" target="_blank" rel="noopener">MPR</a>',
            f"{viewer}?{urlencode(uids)}",
            f"{viewer}?{urlencode(mpr)}",
        )


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = [
        "series_instance_uid",
        "modality",
        "series_number",
        "series_description",
        "body_part_examined",
        "number_of_instances",
        "hospital",
    ]
    list_filter = ["hospital", "modality"]
    search_fields = ["series_instance_uid", "series_description"]


@admin.register(Instance)
class InstanceAdmin(ReadOnlyAdmin):
    list_display = [
        "sop_instance_uid",
        "sop_class_uid",
        "transfer_syntax_uid",
        "instance_number",
        "size_bytes",
        "source",
        "source_detail",
        "received_at",
        "hospital",
    ]
    list_filter = ["hospital", "source", "transfer_syntax_uid"]
    search_fields = ["sop_instance_uid"]


@admin.register(DemographicsMismatch)
class DemographicsMismatchAdmin(ReadOnlyAdmin):
    list_display = [
        "recorded_at",
        "patient",
        "attribute",
        "archived_value",
        "received_value",
        "sop_instance_uid",
        "hospital",
    ]
    list_filter = ["hospital", "attribute"]
