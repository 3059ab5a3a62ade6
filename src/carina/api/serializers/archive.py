"""Patients, studies, series and instances as JSON (the indexed attributes, with DICOM
keywords in snake case)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers  # type: ignore[import-untyped]

from carina.api.serializers.common import LinkField
from carina.archive.models import Instance, Patient, Series, Study
from carina.archive.status import StudyStatus


@extend_schema_field({"type": "array", "items": {"type": "string"}, "example": ["CT", "SR"]})
class ModalitiesField(serializers.Field):
    """ModalitiesInStudy as a list (stored backslash-separated)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: str) -> list[str]:
        return [m for m in value.split("\\") if m]


class PatientSummarySerializer(serializers.ModelSerializer):
    """The patient of a study, in the study's JSON."""

    class Meta:
        model = Patient
        fields = [
            "id",
            "patient_id",
            "issuer_of_patient_id",
            "patient_name",
            "patient_birth_date",
            "patient_sex",
        ]


class PatientSerializer(serializers.ModelSerializer):
    number_of_studies = serializers.IntegerField(
        read_only=True, help_text="Studies of this patient in the archive."
    )
    url = LinkField("patient-detail", "pk", kwarg="pk")
    studies_url = LinkField("patient-studies", "pk", kwarg="pk")

    class Meta:
        model = Patient
        fields = [
            "id",
            "url",
            "patient_id",
            "issuer_of_patient_id",
            "patient_name",
            "patient_birth_date",
            "patient_sex",
            "number_of_studies",
            "created_at",
            "updated_at",
            "studies_url",
        ]


class StudySerializer(serializers.ModelSerializer):
    patient = PatientSummarySerializer(read_only=True)
    modalities_in_study = ModalitiesField(
        help_text="Modalities of the study's series (ModalitiesInStudy)."
    )
    url = LinkField("study-detail", "study_instance_uid")
    series_url = LinkField("study-series", "study_instance_uid")
    images_url = LinkField("study-images", "study_instance_uid")
    zip_url = LinkField("study-zip", "study_instance_uid")
    viewer_url = serializers.SerializerMethodField(help_text="The study in the OHIF viewer.")
    status = serializers.ChoiceField(
        choices=StudyStatus.choices,
        read_only=True,
        help_text="receiving: an object of it arrived within the last 5 minutes; stored: "
        "nothing changed for longer (docs/api.md).",
    )

    class Meta:
        model = Study
        fields = [
            "study_instance_uid",
            "url",
            "study_date",
            "study_time",
            "accession_number",
            "study_id",
            "study_description",
            "referring_physician_name",
            "modalities_in_study",
            "number_of_series",
            "number_of_instances",
            "size_bytes",
            "received_at",
            "updated_at",
            "status",
            "patient",
            "series_url",
            "images_url",
            "zip_url",
            "viewer_url",
        ]

    @extend_schema_field(OpenApiTypes.STR)
    def get_viewer_url(self, study: Study) -> str:
        return f"/viewer/viewer?StudyInstanceUIDs={study.study_instance_uid}"


class SeriesSerializer(serializers.ModelSerializer):
    study_instance_uid = serializers.CharField(
        source="study.study_instance_uid", read_only=True, help_text="StudyInstanceUID."
    )
    url = LinkField("series-detail", "series_instance_uid")
    instances_url = LinkField("series-instances", "series_instance_uid")
    zip_url = LinkField("series-zip", "series_instance_uid")

    class Meta:
        model = Series
        fields = [
            "series_instance_uid",
            "url",
            "study_instance_uid",
            "modality",
            "series_number",
            "series_description",
            "body_part_examined",
            "series_date",
            "number_of_instances",
            "size_bytes",
            "received_at",
            "updated_at",
            "instances_url",
            "zip_url",
        ]


class InstanceSerializer(serializers.ModelSerializer):
    series_instance_uid = serializers.CharField(
        source="series.series_instance_uid", read_only=True, help_text="SeriesInstanceUID."
    )
    study_instance_uid = serializers.CharField(
        source="series.study.study_instance_uid", read_only=True, help_text="StudyInstanceUID."
    )
    url = LinkField("instance-detail", "sop_instance_uid")
    metadata_url = LinkField("instance-metadata", "sop_instance_uid")
    file_url = LinkField("instance-file", "sop_instance_uid")

    class Meta:
        model = Instance
        fields = [
            "sop_instance_uid",
            "url",
            "sop_class_uid",
            "transfer_syntax_uid",
            "series_instance_uid",
            "study_instance_uid",
            "instance_number",
            "rows",
            "columns",
            "number_of_frames",
            "size_bytes",
            "sha256",
            "received_at",
            "source",
            "source_detail",
            "metadata_url",
            "file_url",
        ]


class ImageSerializer(serializers.Serializer):
    """One instance in a study's images (for thumbnails and the viewer)."""

    sop_instance_uid = serializers.CharField()
    instance_number = serializers.IntegerField(allow_null=True)
    number_of_frames = serializers.IntegerField(allow_null=True)
    sop_class_uid = serializers.CharField()


class ImageSeriesSerializer(serializers.Serializer):
    """A series with its instances and its DICOMweb thumbnail (PS3.18 10.4.1.3.5)."""

    series_instance_uid = serializers.CharField()
    series_number = serializers.IntegerField(allow_null=True)
    series_description = serializers.CharField()
    modality = serializers.CharField()
    number_of_instances = serializers.IntegerField()
    thumbnail_url = serializers.CharField(help_text="The series' thumbnail (image/jpeg).")
    instances = ImageSerializer(many=True)


class StudyImagesSerializer(serializers.Serializer):
    study_instance_uid = serializers.CharField()
    thumbnail_url = serializers.CharField(help_text="The study's thumbnail (image/jpeg).")
    series = ImageSeriesSerializer(many=True)


class DicomJsonSerializer(serializers.Serializer):
    """Placeholder for the schema: the DICOM JSON model (PS3.18 F.2) of one instance."""
