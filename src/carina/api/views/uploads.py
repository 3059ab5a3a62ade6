"""``/api/uploads/``: upload DICOM files or ZIP archives; read an upload's status and
per-object results (docs/api.md, "Uploads")."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status  # type: ignore[import-untyped]
from rest_framework.exceptions import ValidationError  # type: ignore[import-untyped]
from rest_framework.parsers import FormParser, MultiPartParser  # type: ignore[import-untyped]
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]

from carina.accounts.access import Permission, role_in
from carina.accounts.models import Role
from carina.api.audit import client_ip
from carina.api.base import CarinaViewSet
from carina.api.models import Upload, UploadStatus
from carina.api.schema import VALIDATION_ERRORS
from carina.api.serializers.common import ErrorSerializer
from carina.api.serializers.uploads import UploadRequestSerializer, UploadSerializer
from carina.api.uploads import UploadError, create_upload, mark_if_interrupted

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


@extend_schema_view(
    list=extend_schema(summary="Uploads", tags=["uploads"]),
    retrieve=extend_schema(
        summary="An upload's status and results",
        description="Status (queued, running, done, failed), progress (done of total) and "
        "the result of every object so far.",
        tags=["uploads"],
    ),
)
class UploadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CarinaViewSet):
    """Uploads into the current hospital: your own (a hospital administrator sees all)."""

    model = Upload
    noun = "upload"
    serializer_class = UploadSerializer
    read_permission = Permission.STORE
    write_permission = Permission.STORE
    parser_classes: ClassVar[list[type]] = [MultiPartParser, FormParser]
    throttle_scope = "upload"  # the "upload" rate for POST (carina.ops.throttling)
    filterset_fields: ClassVar[list[str]] = ["status"]

    def scope(self, queryset: Any) -> Any:
        user = self.request.user
        if not user.is_superuser and role_in(user, self.hospital) != Role.HOSPITAL_ADMIN:
            queryset = queryset.filter(user=user)
        return queryset.order_by("-created_at")

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        upload = mark_if_interrupted(self.get_object())
        return Response(self.get_serializer(upload).data)

    @extend_schema(
        summary="Upload DICOM files or ZIP archives",
        description="Each file is a DICOM Part 10 file or a ZIP archive of them; every object "
        "goes through the ingest pipeline. A small upload is ingested at once: 201 with "
        "every object's result (400, 409, 415 or 503 when every object was rejected). A "
        "large one — or any with `background=true` — is answered 202 at once with its "
        "status URL (Location), and ingested in the background.",
        tags=["uploads"],
        request={"multipart/form-data": UploadRequestSerializer},
        parameters=[
            OpenApiParameter(
                "background",
                bool,
                description="true: always in the background; false: never (default: by size).",
            )
        ],
        responses={
            201: UploadSerializer,
            202: OpenApiResponse(UploadSerializer, description="Queued; poll the Location URL."),
            400: OpenApiResponse(
                VALIDATION_ERRORS,  # the upload's results, or the invalid parameter
                description="Nothing was stored (no file, or every object rejected), or "
                "`background` is not true or false.",
            ),
            409: OpenApiResponse(
                UploadSerializer, description="Every object conflicts with a stored one."
            ),
            415: OpenApiResponse(
                UploadSerializer, description="Every object has an unknown transfer syntax."
            ),
            503: OpenApiResponse(
                ErrorSerializer, description="The archive storage is unavailable."
            ),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raw = str(request.query_params.get("background", "")).lower()
        if raw and raw not in TRUE | FALSE:
            raise ValidationError({"background": ["Give true or false."]})
        background = True if raw in TRUE else False if raw in FALSE else None
        try:
            upload = create_upload(
                self.hospital,
                request.user,
                request.FILES.getlist("files"),
                background=background,
                source_ip=client_ip(request),
            )
        except UploadError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        data = dict(self.get_serializer(upload).data)
        headers = {"Location": data["url"]}
        if upload.status != UploadStatus.DONE:
            return Response(data, status=status.HTTP_202_ACCEPTED, headers=headers)
        rejected = [r for r in upload.results if r["status"] == "rejected"]
        if upload.results and len(rejected) == len(upload.results):
            codes = {int(r.get("http_status", 400)) for r in rejected}
            data["detail"] = "Nothing was stored: " + "; ".join(
                f"{r['name']}: {r['reason']}" for r in rejected[:5]
            )
            return Response(data, status=codes.pop() if len(codes) == 1 else 400, headers=headers)
        return Response(data, status=status.HTTP_201_CREATED, headers=headers)
