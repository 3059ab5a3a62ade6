"""Transfers, their failures and forwarding rules as JSON (docs/routing.md, "API")."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers  # type: ignore[import-untyped]

from carina.api.serializers.common import LinkField
from carina.routing.models import ForwardingRule, Transfer, TransferItem, Trigger


class TransferFailureSerializer(serializers.ModelSerializer):
    class Meta:
        model = TransferItem
        fields = ["sop_instance_uid", "sop_class_uid", "status", "dimse_status", "reason"]


class TransferSerializer(serializers.ModelSerializer):
    url = LinkField("transfer-detail", "pk", kwarg="pk")
    requested_by = serializers.CharField(source="requested_by_name", read_only=True)
    duration = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Seconds since the first attempt began."
    )
    progress = serializers.SerializerMethodField(help_text='"sent / total".')

    class Meta:
        model = Transfer
        fields = [
            "id",
            "url",
            "status",
            "destination",
            "destination_name",
            "destination_ae",
            "level",
            "object_uid",
            "study_instance_uid",
            "patient_id",
            "patient_name",
            "origin",
            "requested_by",
            "rule",
            "total",
            "sent",
            "failed",
            "progress",
            "bytes_sent",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "last_error",
            "correlation_id",
            "created_at",
            "started_at",
            "finished_at",
            "duration",
        ]
        read_only_fields = fields

    def get_progress(self, transfer: Transfer) -> str:
        return f"{transfer.sent} / {transfer.total}"


class TransferDetailSerializer(TransferSerializer):
    failures = serializers.SerializerMethodField(
        help_text="The instances that failed (at most 1,000) and why; instances the "
        "destination was unreachable for are listed with status pending until sent."
    )

    class Meta(TransferSerializer.Meta):
        fields = [*TransferSerializer.Meta.fields, "failures"]
        read_only_fields = fields

    @extend_schema_field(TransferFailureSerializer(many=True))
    def get_failures(self, transfer: Transfer) -> list[dict[str, Any]]:
        items = transfer.items.exclude(status="sent").exclude(reason="").order_by("id")[:1000]
        return list(TransferFailureSerializer(items, many=True).data)


class TransferRequestSerializer(serializers.Serializer):
    """What to send where: exactly one of a study, a series or a list of instances."""

    destinations = serializers.ListField(
        child=serializers.CharField(),
        allow_empty=False,
        help_text="The destination nodes, by name or ID; one transfer each.",
    )
    study_instance_uid = serializers.CharField(required=False, max_length=64)
    series_instance_uid = serializers.CharField(required=False, max_length=64)
    sop_instance_uids = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, allow_empty=False
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [
            k
            for k in ("study_instance_uid", "series_instance_uid", "sop_instance_uids")
            if attrs.get(k)
        ]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Give exactly one of study_instance_uid, series_instance_uid, sop_instance_uids."
            )
        return attrs


@extend_schema_field(OpenApiTypes.OBJECT)
class KeysField(serializers.DictField):
    """Matching keys: DICOM keyword → value, as in a QIDO-RS search."""


class RuleSerializer(serializers.ModelSerializer):
    url = LinkField("rule-detail", "pk", kwarg="pk")
    keys = KeysField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text='Further matching keys, e.g. {"AccessionNumber": "ACC*"}.',
    )
    destinations = serializers.ListField(
        child=serializers.CharField(),
        allow_empty=False,
        write_only=True,
        help_text="The destination nodes, by name or ID (answered as their names).",
    )
    trigger = serializers.ChoiceField(choices=Trigger.choices, default=Trigger.STABLE)

    class Meta:
        model = ForwardingRule
        fields = [
            "id",
            "url",
            "name",
            "enabled",
            "trigger",
            "stable_seconds",
            "calling_ae",
            "modality",
            "body_part",
            "study_description",
            "keys",
            "destinations",
            "created_by_name",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "url", "created_by_name", "created_at", "updated_at"]
        validators: list[object] = []  # the name's uniqueness: do_save_rule says it clearly

    def to_representation(self, rule: ForwardingRule) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(rule)
        data["destinations"] = [node.name for node in rule.destination_nodes()]
        return data


class ConnectionCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    rtt_ms = serializers.FloatField(
        allow_null=True, help_text="Round trip of the C-ECHO or the DICOMweb request."
    )
    message = serializers.CharField()
