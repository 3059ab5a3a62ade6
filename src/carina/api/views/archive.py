"""The archive through the REST API: patients, studies, series and instances, their DICOM
metadata, files and ZIP downloads, and deletes (docs/api.md).

Every list and object comes from ``Model.objects.for_hospital(request.tenant)``: another
hospital's UID is answered 404 like an unknown one. Reads of patient data leave one audit
event per request (``dicomweb.query`` for lists and records, ``dicomweb.retrieve`` for
metadata, files and ZIP archives, ``dicomweb.delete`` for deletes; docs/audit.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins  # type: ignore[import-untyped]
from rest_framework.exceptions import APIException, NotFound  # type: ignore[import-untyped]
from rest_framework.renderers import JSONRenderer  # type: ignore[import-untyped]
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]

from carina.accounts.access import Permission
from carina.api import audit
from carina.api.base import CarinaViewSet, DicomRenderer, ZipRenderer, action
from carina.api.serializers.archive import (
    InstanceSerializer,
    PatientSerializer,
    SeriesSerializer,
    StudyImagesSerializer,
    StudySerializer,
)
from carina.api.serializers.common import ErrorSerializer
from carina.api.zipstream import ZipSource, archive_name, stream_zip_with_dicomdir
from carina.archive.actions import (
    ArchiveNotFoundError,
    Removed,
    do_delete_instances,
    do_delete_series,
    do_delete_study,
)
from carina.archive.filters import (
    InstanceFilterSet,
    PatientFilterSet,
    SeriesFilterSet,
    StudyFilterSet,
    has_wildcards,
)
from carina.archive.models import Instance, Patient, Series, Study
from carina.archive.storage import BlobStorageError, get_storage
from carina.audit.actions import do_record
from carina.audit.models import Action, ObjectType, Outcome
from carina.dicomweb.metadata_json import wado_metadata
from carina.tenancy.models import Hospital

UID_PATTERN = r"[^/]+"


class StorageUnavailable(APIException):
    status_code = 503
    default_detail = "The archive storage could not be read; try again later."
    default_code = "storage_unavailable"


ZIP_RESPONSE = {
    (200, "application/zip"): OpenApiResponse(
        OpenApiTypes.BINARY,
        description="A ZIP archive, streamed: a DICOM file-set (PS3.10) whose DICOMDIR "
        "(the last entry) indexes every file.",
    )
}


def _by_number(field: str) -> list[Any]:
    return [F(field).asc(nulls_last=True), "pk"]


class ArchiveViewSet(CarinaViewSet):
    """Common behaviour of the four archive resources."""

    lookup_url_kwarg = "uid"
    lookup_value_regex = UID_PATTERN
    object_type: ClassVar[ObjectType]
    write_permission = Permission.DELETE
    action_permissions: ClassVar[dict[str, Permission | None]] = {
        "zip": Permission.DOWNLOAD,
        "file": Permission.DOWNLOAD,
    }

    def patient_id_of(self, obj: Any) -> str:
        return ""

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = self.get_serializer(page, many=True).data
        exact_patient = request.query_params.get("patient_id", "")
        self.audit(
            action=Action.WEB_QUERY,
            object_type=self.object_type,
            patient_id="" if has_wildcards(exact_patient) else exact_patient,
            count=len(page),
        )
        return self.get_paginated_response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        obj = self.get_object()
        self.audit(
            action=Action.WEB_QUERY,
            object_type=self.object_type,
            object_uid=kwargs.get(self.lookup_url_kwarg, ""),
            patient_id=self.patient_id_of(obj),
            count=1,
        )
        return Response(self.get_serializer(obj).data)

    def delete_with(
        self, request: Request, uid: str, remove: Callable[[Hospital], Removed]
    ) -> Response:
        """Delete through an archive action; the audit event is written in the same
        transaction (docs/audit.md)."""
        try:
            with transaction.atomic():
                removed = remove(self.hospital)
                do_record(
                    **audit.event_fields(
                        request,
                        action=Action.WEB_DELETE,
                        object_type=self.object_type,
                        object_uid=uid,
                        patient_id=removed.patient_id,
                        count=removed.instances,
                        detail=f"DELETE {request.path}: {removed.instances} instance(s), "
                        f"{removed.size_bytes} bytes"
                        + ("; the study went with it" if removed.study_removed else "")
                        + ("; the patient went with it" if removed.patient_removed else ""),
                    )
                )
        except ArchiveNotFoundError as exc:
            raise NotFound(exc.message) from None
        return Response(status=204)

    def zip_response(
        self, request: Request, source: ZipSource, filename: str
    ) -> StreamingHttpResponse:
        """A streamed ZIP with a DICOMDIR; one audit event when the stream ends."""
        hospital = self.hospital

        def finished(sent: int, complete: bool) -> None:
            audit.record(
                request,
                action=Action.WEB_RETRIEVE,
                object_type=self.object_type,
                object_uid=source.uid,
                patient_id=source.patient_id,
                count=sent,
                outcome=Outcome.SUCCESS if complete else Outcome.PARTIAL,
                detail=audit.request_detail(
                    request, "" if complete else "the download was cut short"
                ),
            )

        body = stream_zip_with_dicomdir(hospital, source, finished=finished)
        response = StreamingHttpResponse(body, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ZipDownloadMixin:
    """``GET …/{uid}/zip/``: the object's instances as a streamed ZIP archive with a
    DICOMDIR (studies and series)."""

    def zip_instances(self, obj: Any) -> QuerySet[Instance]:
        raise NotImplementedError

    @extend_schema(
        summary="Download as a ZIP archive (with a DICOMDIR)",
        tags=["downloads"],
        responses=ZIP_RESPONSE,
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="zip",
        url_name="zip",
        renderer_classes=[JSONRenderer, ZipRenderer],
        pagination_class=None,
        filter_backends=[],
    )
    def zip(self, request: Request, uid: str, **kwargs: Any) -> StreamingHttpResponse:
        view: Any = self
        obj = view.get_object()
        source = ZipSource(
            uid=uid, patient_id=view.patient_id_of(obj), instances=self.zip_instances(obj)
        )
        return view.zip_response(request, source, archive_name(view.noun, uid))


@extend_schema_view(
    list=extend_schema(summary="Search patients", tags=["archive"]),
    retrieve=extend_schema(summary="A patient", tags=["archive"]),
)
class PatientViewSet(ArchiveViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Patients of the caller's hospital."""

    model = Patient
    noun = "patient"
    object_type = ObjectType.PATIENT
    serializer_class = PatientSerializer
    filterset_class = PatientFilterSet
    lookup_field = "pk"
    lookup_url_kwarg = "pk"
    lookup_value_regex = r"[^/]+"

    def scope(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        studies = (
            Study.unscoped.filter(patient=OuterRef("pk"))
            .order_by()
            .values("patient")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return queryset.annotate(
            number_of_studies=Coalesce(Subquery(studies, output_field=IntegerField()), 0)
        ).order_by(F("patient_name").asc(nulls_last=True), "pk")

    def patient_id_of(self, obj: Any) -> str:
        return str(obj.patient_id)

    @extend_schema(
        summary="The patient's studies",
        tags=["archive"],
        responses=StudySerializer(many=True),
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="studies", url_name="studies")
    def studies(self, request: Request, pk: str, **kwargs: Any) -> Response:
        patient = self.get_object()
        rows = (
            Study.objects.for_hospital(self.hospital)
            .filter(patient=patient)
            .select_related("patient")
            .order_by(
                F("study_date").desc(nulls_last=True), F("study_time").desc(nulls_last=True), "-pk"
            )
        )
        page = self.paginate_queryset(rows)
        self.audit(
            action=Action.WEB_QUERY,
            object_type=ObjectType.STUDY,
            patient_id=patient.patient_id,
            count=len(page),
        )
        return self.get_paginated_response(
            StudySerializer(page, many=True, context=self.get_serializer_context()).data
        )


@extend_schema_view(
    list=extend_schema(summary="Search studies", tags=["archive"]),
    retrieve=extend_schema(summary="A study", tags=["archive"]),
    destroy=extend_schema(
        summary="Delete a study",
        description="Deletes the study with its series, instances and files (and its patient "
        "when no other study remains). Needs the delete permission.",
        tags=["archive"],
    ),
)
class StudyViewSet(
    ZipDownloadMixin,
    ArchiveViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
):
    """Studies of the caller's hospital, found by StudyInstanceUID."""

    model = Study
    noun = "study"
    object_type = ObjectType.STUDY
    serializer_class = StudySerializer
    filterset_class = StudyFilterSet
    lookup_field = "study_instance_uid"

    def scope(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("patient").order_by(
            F("study_date").desc(nulls_last=True), F("study_time").desc(nulls_last=True), "-pk"
        )

    def patient_id_of(self, obj: Any) -> str:
        return str(obj.patient.patient_id)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        uid = kwargs["uid"]
        return self.delete_with(request, uid, lambda h: do_delete_study(h, uid))

    @extend_schema(
        summary="The study's series",
        tags=["archive"],
        responses=SeriesSerializer(many=True),
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="series", url_name="series")
    def series(self, request: Request, uid: str, **kwargs: Any) -> Response:
        study = self.get_object()
        rows = (
            Series.objects.for_hospital(self.hospital)
            .filter(study=study)
            .select_related("study")
            .order_by(*_by_number("series_number"))
        )
        page = self.paginate_queryset(rows)
        self.audit(
            action=Action.WEB_QUERY,
            object_type=ObjectType.SERIES,
            object_uid=uid,
            patient_id=study.patient.patient_id,
            count=len(page),
        )
        return self.get_paginated_response(
            SeriesSerializer(page, many=True, context=self.get_serializer_context()).data
        )

    @extend_schema(
        summary="The study's images, by series",
        description="Every series of the study with its instances (UIDs and numbers) and the "
        "DICOMweb thumbnail of the series, for thumbnails and the viewer. Not paginated.",
        tags=["archive"],
        responses=StudyImagesSerializer,
        filters=False,
    )
    @action(
        detail=True, methods=["get"], url_path="images", url_name="images", pagination_class=None
    )
    def images(self, request: Request, uid: str, **kwargs: Any) -> Response:
        study = self.get_object()
        hospital = self.hospital
        series_rows = list(
            Series.objects.for_hospital(hospital)
            .filter(study=study)
            .order_by(*_by_number("series_number"))
            .values(
                "pk",
                "series_instance_uid",
                "series_number",
                "series_description",
                "modality",
                "number_of_instances",
            )
        )
        images: dict[int, list[dict[str, Any]]] = {row["pk"]: [] for row in series_rows}
        for row in (
            Instance.objects.for_hospital(hospital)
            .filter(series__study=study)
            .order_by(*_by_number("instance_number"))
            .values(
                "series_id",
                "sop_instance_uid",
                "instance_number",
                "number_of_frames",
                "sop_class_uid",
            )
            .iterator(chunk_size=2000)
        ):
            entry: dict[str, Any] = dict(row)
            images[entry.pop("series_id")].append(entry)
        base = request.build_absolute_uri(f"/dicomweb/studies/{uid}")
        data = {
            "study_instance_uid": uid,
            "thumbnail_url": f"{base}/thumbnail",
            "series": [
                {
                    "series_instance_uid": row["series_instance_uid"],
                    "series_number": row["series_number"],
                    "series_description": row["series_description"],
                    "modality": row["modality"],
                    "number_of_instances": row["number_of_instances"],
                    "thumbnail_url": f"{base}/series/{row['series_instance_uid']}/thumbnail",
                    "instances": images[row["pk"]],
                }
                for row in series_rows
            ],
        }
        self.audit(
            action=Action.WEB_QUERY,
            object_type=ObjectType.STUDY,
            object_uid=uid,
            patient_id=study.patient.patient_id,
            count=sum(len(v) for v in images.values()),
        )
        return Response(StudyImagesSerializer(data).data)

    def zip_instances(self, obj: Any) -> QuerySet[Instance]:
        return Instance.objects.for_hospital(self.hospital).filter(series__study=obj)


@extend_schema_view(
    list=extend_schema(summary="Search series", tags=["archive"]),
    retrieve=extend_schema(summary="A series", tags=["archive"]),
    destroy=extend_schema(
        summary="Delete a series",
        description="Deletes the series with its instances and files; a study left empty goes "
        "too. Needs the delete permission.",
        tags=["archive"],
    ),
)
class SeriesViewSet(
    ZipDownloadMixin,
    ArchiveViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
):
    """Series of the caller's hospital, found by SeriesInstanceUID."""

    model = Series
    noun = "series"
    object_type = ObjectType.SERIES
    serializer_class = SeriesSerializer
    filterset_class = SeriesFilterSet
    lookup_field = "series_instance_uid"

    def scope(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("study", "study__patient").order_by(
            "study_id", *_by_number("series_number")
        )

    def patient_id_of(self, obj: Any) -> str:
        return str(obj.study.patient.patient_id)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        series = self.get_object()
        study_uid = series.study.study_instance_uid
        uid = kwargs["uid"]
        return self.delete_with(request, uid, lambda h: do_delete_series(h, study_uid, uid))

    @extend_schema(
        summary="The series' instances",
        tags=["archive"],
        responses=InstanceSerializer(many=True),
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="instances", url_name="instances")
    def instances(self, request: Request, uid: str, **kwargs: Any) -> Response:
        series = self.get_object()
        rows = (
            Instance.objects.for_hospital(self.hospital)
            .filter(series=series)
            .select_related("series", "series__study")
            .order_by(*_by_number("instance_number"))
        )
        page = self.paginate_queryset(rows)
        self.audit(
            action=Action.WEB_QUERY,
            object_type=ObjectType.INSTANCE,
            object_uid=uid,
            patient_id=self.patient_id_of(series),
            count=len(page),
        )
        return self.get_paginated_response(
            InstanceSerializer(page, many=True, context=self.get_serializer_context()).data
        )

    def zip_instances(self, obj: Any) -> QuerySet[Instance]:
        return Instance.objects.for_hospital(self.hospital).filter(series=obj)


@extend_schema_view(
    list=extend_schema(summary="Search instances", tags=["archive"]),
    retrieve=extend_schema(summary="An instance", tags=["archive"]),
    destroy=extend_schema(
        summary="Delete an instance",
        description="Deletes the instance and its file; a series or study left empty goes too. "
        "Needs the delete permission.",
        tags=["archive"],
    ),
)
class InstanceViewSet(
    ArchiveViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin
):
    """Instances of the caller's hospital, found by SOPInstanceUID."""

    model = Instance
    noun = "instance"
    object_type = ObjectType.INSTANCE
    serializer_class = InstanceSerializer
    filterset_class = InstanceFilterSet
    lookup_field = "sop_instance_uid"

    def scope(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related(
            "series", "series__study", "series__study__patient"
        ).order_by("series_id", *_by_number("instance_number"))

    def patient_id_of(self, obj: Any) -> str:
        return str(obj.series.study.patient.patient_id)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        uid = kwargs["uid"]
        study_uid = instance.series.study.study_instance_uid
        series_uid = instance.series.series_instance_uid
        return self.delete_with(
            request, uid, lambda h: do_delete_instances(h, study_uid, series_uid, [uid])
        )

    @extend_schema(
        summary="The instance's DICOM metadata",
        description="The DICOM JSON model (PS3.18 F.2) of the instance, without bulk data: "
        "bulk values (Pixel Data, long values) are BulkDataURIs of the DICOMweb bulkdata "
        "resource, as in WADO-RS metadata.",
        tags=["archive"],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="DICOM JSON.")},
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="metadata",
        url_name="metadata",
        pagination_class=None,
    )
    def metadata(self, request: Request, uid: str, **kwargs: Any) -> Response:
        instance = self.get_object()
        data = wado_metadata(
            instance.metadata,
            study_uid=instance.series.study.study_instance_uid,
            series_uid=instance.series.series_instance_uid,
            sop_uid=instance.sop_instance_uid,
            transfer_syntax_uid=instance.transfer_syntax_uid,
        )
        self.audit(
            action=Action.WEB_RETRIEVE,
            object_type=ObjectType.INSTANCE,
            object_uid=uid,
            patient_id=self.patient_id_of(instance),
            count=1,
        )
        return Response(data)

    @extend_schema(
        summary="Download the instance's DICOM file",
        description="The stored DICOM Part 10 file, byte for byte, streamed. Needs the "
        "download permission.",
        tags=["downloads"],
        responses={
            (200, "application/dicom"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file."
            ),
            503: OpenApiResponse(
                ErrorSerializer, description="The archive storage could not be read."
            ),
        },
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="file",
        url_name="file",
        renderer_classes=[JSONRenderer, DicomRenderer],
        pagination_class=None,
        filter_backends=[],
    )
    def file(self, request: Request, uid: str, **kwargs: Any) -> FileResponse:
        instance = self.get_object()
        try:
            stream = get_storage().open(instance.blob_key)
        except (BlobStorageError, OSError) as exc:
            raise StorageUnavailable(
                f"The file of instance {uid} could not be read from the archive storage: {exc}"
            ) from None
        response = FileResponse(
            stream,
            content_type="application/dicom",
            as_attachment=True,
            filename=f"{uid}.dcm",
        )
        response["Content-Length"] = str(instance.size_bytes)
        self.audit(
            action=Action.WEB_RETRIEVE,
            object_type=ObjectType.INSTANCE,
            object_uid=uid,
            patient_id=self.patient_id_of(instance),
            count=1,
        )
        return response
