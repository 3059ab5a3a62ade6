"""Audit events as JSON for ``/api/audit/`` (read only: nothing in the API writes them)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers  # type: ignore[import-untyped]
from rest_framework.reverse import reverse  # type: ignore[import-untyped]

from carina.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This event in the API.")
    hospital = serializers.SlugRelatedField(
        slug_field="slug",
        read_only=True,
        allow_null=True,
        help_text="The hospital's slug; null for an event of no hospital (sign-ins, personal "
        "tokens, an association whose called AE title names no hospital).",
    )
    action_label = serializers.CharField(
        source="get_action_display", read_only=True, help_text="The action in words."
    )

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "url",
            "occurred_at",
            "hospital",
            "actor",
            "actor_kind",
            "action",
            "action_label",
            "object_type",
            "object_uid",
            "patient_id",
            "source_ip",
            "source_ae",
            "destination_ae",
            "outcome",
            "count",
            "detail",
            "correlation_id",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, event: AuditEvent) -> str:
        return str(
            reverse("audit:event", kwargs={"pk": event.pk}, request=self.context.get("request"))
        )
