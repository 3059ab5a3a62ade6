"""Uploads as JSON."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers  # type: ignore[import-untyped]

from carina.api.models import Upload
from carina.api.serializers.common import LinkField


class UploadResultSerializer(serializers.Serializer):
    """What became of one object (a file, or a member of a ZIP archive)."""

    name = serializers.CharField(help_text="File name; 'archive.zip!member' inside a ZIP.")
    status = serializers.ChoiceField(
        choices=["stored", "already_present", "replaced", "rejected", "skipped"]
    )
    reason = serializers.CharField(required=False, help_text="Why it was rejected or skipped.")
    http_status = serializers.IntegerField(
        required=False, help_text="The HTTP status of the rejection (400, 409, 415, 503)."
    )
    sop_instance_uid = serializers.CharField(required=False)
    series_instance_uid = serializers.CharField(required=False)
    study_instance_uid = serializers.CharField(required=False)
    patient_id = serializers.CharField(required=False)


class UploadSerializer(serializers.ModelSerializer):
    url = LinkField("upload-detail", "pk", kwarg="pk")
    progress = serializers.SerializerMethodField(help_text="done / total, from 0 to 1.")
    results = UploadResultSerializer(many=True, read_only=True)
    counts = serializers.DictField(
        child=serializers.IntegerField(), read_only=True, help_text="Objects per outcome."
    )

    class Meta:
        model = Upload
        fields = [
            "id",
            "url",
            "status",
            "background",
            "total",
            "done",
            "progress",
            "counts",
            "results",
            "error",
            "username",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField())
    def get_progress(self, upload: Upload) -> float:
        return round(upload.done / upload.total, 4) if upload.total else 1.0


class UploadRequestSerializer(serializers.Serializer):
    """``multipart/form-data`` with one or more ``files``."""

    files = serializers.ListField(
        child=serializers.FileField(),
        help_text="DICOM Part 10 files and/or ZIP archives of them (repeat the field).",
    )

    def to_representation(self, instance: Any) -> Any:  # pragma: no cover - schema only
        return {}
