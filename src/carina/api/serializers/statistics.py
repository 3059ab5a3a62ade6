"""Statistics as JSON (the schema of ``/api/statistics/``)."""

from __future__ import annotations

from rest_framework import serializers  # type: ignore[import-untyped]

from carina.api.statistics import DEFAULT_DAYS, DEFAULT_RECENT, MAX_DAYS, MAX_RECENT


class StatisticsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_DAYS,
        default=DEFAULT_DAYS,
        help_text=f"Days of studies per day (1 to {MAX_DAYS}).",
    )
    recent = serializers.IntegerField(
        min_value=0,
        max_value=MAX_RECENT,
        default=DEFAULT_RECENT,
        help_text=f"How many of the latest studies (0 to {MAX_RECENT}).",
    )


class TotalsSerializer(serializers.Serializer):
    patients = serializers.IntegerField()
    studies = serializers.IntegerField()
    series = serializers.IntegerField()
    instances = serializers.IntegerField()
    bytes = serializers.IntegerField()


class DaySerializer(serializers.Serializer):
    date = serializers.DateField()
    studies = serializers.IntegerField(help_text="Studies received that day (UTC).")


class ModalitySerializer(serializers.Serializer):
    modality = serializers.CharField()
    studies = serializers.IntegerField()
    series = serializers.IntegerField()
    instances = serializers.IntegerField()
    bytes = serializers.IntegerField()


class StorageSerializer(serializers.Serializer):
    bytes = serializers.IntegerField(help_text="Bytes of the stored DICOM files.")
    bytes_last_30_days = serializers.IntegerField()


class RecentStudySerializer(serializers.Serializer):
    study_instance_uid = serializers.CharField()
    received_at = serializers.DateTimeField()
    study_date = serializers.DateField(allow_null=True)
    study_description = serializers.CharField()
    modalities_in_study = serializers.ListField(child=serializers.CharField())
    number_of_instances = serializers.IntegerField()
    patient_id = serializers.CharField()
    patient_name = serializers.CharField()


class StatisticsSerializer(serializers.Serializer):
    hospital = serializers.CharField(help_text="The hospital's slug.")
    totals = TotalsSerializer()
    days = serializers.IntegerField()
    studies_per_day = DaySerializer(many=True)
    modalities = ModalitySerializer(many=True)
    storage = StorageSerializer()
    recent_studies = RecentStudySerializer(many=True)
