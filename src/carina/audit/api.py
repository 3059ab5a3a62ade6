"""``/api/audit/``: read the audit trail, filtered and paginated, or export it as CSV
(docs/audit.md, "Reading the trail"; docs/api.md, "Audit trail").

Read only: the routes answer ``GET`` (and ``HEAD``/``OPTIONS``); ``POST``, ``PUT``,
``PATCH`` and ``DELETE`` are answered 405, as nothing may change or remove an event. Who sees
what is :func:`carina.audit.visibility.visible_events`.

An export is itself recorded (``audit.export``, the "Audit Log Used" message of PS3.15
A.5.3.2, event DCM 110101): it takes a copy of patient identifiers out of Carina. Reading the
trail page by page is not, as each page looked at would add an event to what is being read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.http import HttpResponseBase, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins  # type: ignore[import-untyped]
from rest_framework.decorators import action as drf_action  # type: ignore[import-untyped]
from rest_framework.exceptions import NotFound  # type: ignore[import-untyped]
from rest_framework.renderers import (  # type: ignore[import-untyped]
    BaseRenderer,
    BrowsableAPIRenderer,
    JSONRenderer,
)
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]
from rest_framework.viewsets import GenericViewSet  # type: ignore[import-untyped]

from carina.accounts.drf import request_hospital
from carina.archive.filters import has_wildcards
from carina.audit.actions import do_record
from carina.audit.export import csv_lines
from carina.audit.filters import AuditEventFilterSet
from carina.audit.models import Action, ActorKind, AuditEvent, Outcome
from carina.audit.serializers import AuditEventSerializer
from carina.audit.visibility import visible_events
from carina.tenancy.models import Hospital

_View = TypeVar("_View", bound=Callable[..., Any])

CSV_MEDIA_TYPE = "text/csv"
VISIBILITY = (
    "You see your own events (in this hospital, and your sign-ins and personal tokens); "
    "with the `view_audit` permission (hospital administrators) every event of the "
    "hospital; system administrators every event of every hospital."
)


class CSVRenderer(BaseRenderer):
    """Lets a client ask for CSV (``?format=csv`` or ``Accept: text/csv``); the file itself
    is streamed by the view (:func:`carina.audit.export.csv_lines`)."""

    media_type = CSV_MEDIA_TYPE
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return b""


#: ``action`` and ``outcome`` take several values (the schema would otherwise show one).
LIST_PARAMETERS = [
    OpenApiParameter(
        "action",
        str,
        description="What was done: one or more actions comma-separated "
        "(`api.query,api.delete`), or a family (`dicom.*`, `dicomweb.*`, `api.*`). The actions "
        "are listed in docs/audit.md.",
    ),
    OpenApiParameter(
        "outcome",
        str,
        description="`success`, `partial`, `failure`; several comma-separated (`partial,failure`).",
    ),
]


def action(**kwargs: Any) -> Callable[[_View], _View]:
    """DRF's ``@action`` (an extra route of a viewset), keeping the method's type."""
    decorate: Callable[[_View], _View] = drf_action(**kwargs)
    return decorate


def _request_line(request: Request) -> str:
    query = request.META.get("QUERY_STRING", "")
    return f"{request.method} {request.path}" + (f"?{query}" if query else "")


@extend_schema_view(
    list=extend_schema(
        summary="Audit events",
        description="Who accessed or changed what, when, from where, with what outcome; "
        f"newest first. {VISIBILITY} `?format=csv` (or `Accept: text/csv`) answers every "
        "matching event as a CSV file, as `/api/audit/export.csv` does.",
        tags=["audit"],
        parameters=LIST_PARAMETERS,
        responses={
            (200, "application/json"): AuditEventSerializer(many=True),
            (200, CSV_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.STR, description="Every matching event (with ?format=csv)."
            ),
        },
    ),
    retrieve=extend_schema(summary="An audit event", description=VISIBILITY, tags=["audit"]),
    export=extend_schema(
        summary="Export audit events as CSV",
        description="Every matching event (the filters of the list), as one CSV file "
        f"streamed row by row: UTF-8, a header line, CRLF line ends. {VISIBILITY}",
        tags=["audit"],
        operation_id="audit_export_csv",
        filters=True,
        parameters=[*LIST_PARAMETERS, OpenApiParameter("format", exclude=True)],
        responses={
            (200, CSV_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.STR, description="The CSV file (docs/audit.md lists the columns)."
            )
        },
    ),
)
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """The audit events the caller may see; read only."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]
    hospital: Hospital

    def get_renderers(self) -> list[BaseRenderer]:
        if getattr(self, "action", None) == "export":
            return [CSVRenderer(), JSONRenderer()]
        if getattr(self, "action", None) == "retrieve":
            return [JSONRenderer(), BrowsableAPIRenderer()]
        return [renderer() for renderer in self.renderer_classes]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # signed in (401), throttled (429)
        self.hospital = request_hospital(request)  # 403 for a hospital not the caller's

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        if response.status_code >= 400 and isinstance(
            getattr(request, "accepted_renderer", None), CSVRenderer
        ):
            # An error is JSON even where the client asked for CSV.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        result: HttpResponseBase = super().finalize_response(request, response, *args, **kwargs)
        return result

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return AuditEvent.unscoped.none()
        return visible_events(self.request.user, self.hospital)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        events = self.filter_queryset(self.get_queryset())
        if isinstance(request.accepted_renderer, CSVRenderer):
            return self._csv(request, events)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        pk = kwargs["pk"]
        event = self.get_queryset().filter(pk=pk).first()
        if event is None:
            raise NotFound(f"No audit event {pk} that you may see in {self.hospital.slug}.")
        return Response(self.get_serializer(event).data)

    @action(detail=False, methods=["get"], url_path="export.csv")
    def export(self, request: Request) -> HttpResponseBase:
        return self._csv(request, self.filter_queryset(self.get_queryset()))

    def _csv(self, request: Request, events: QuerySet[AuditEvent]) -> StreamingHttpResponse:
        """Every event of ``events`` as a streamed CSV file; one ``audit.export`` event when
        the stream ends (``partial`` if it was cut short)."""
        sent = 0

        def counted() -> None:
            nonlocal sent
            sent += 1

        def body() -> Iterator[bytes]:
            complete = False
            try:
                yield from csv_lines(events, on_row=counted)
                complete = True
            finally:
                self._record_export(
                    request,
                    count=sent,
                    outcome=Outcome.SUCCESS if complete else Outcome.PARTIAL,
                    note="" if complete else "the download was cut short",
                )

        stamp = f"{timezone.now():%Y%m%d-%H%M%S}"
        response = StreamingHttpResponse(body(), content_type=f"{CSV_MEDIA_TYPE}; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="audit-{self.hospital.slug}-{stamp}.csv"'
        )
        response["Cache-Control"] = "no-store"
        return response

    def _record_export(
        self, request: Request, *, count: int, outcome: Outcome, note: str = ""
    ) -> None:
        """Record the export, with its filters (the request line) and the patient they name,
        if one."""
        patient_id = str(request.query_params.get("patient_id", "")).strip()
        do_record(
            hospital=self.hospital,
            actor=request.user.get_username(),
            actor_kind=ActorKind.USER,
            action=Action.AUDIT_EXPORT,
            patient_id="" if has_wildcards(patient_id) else patient_id,
            source_ip=str(request.META.get("REMOTE_ADDR", "")),
            outcome=outcome,
            count=count,
            detail=_request_line(request) + (f" — {note}" if note else ""),
            correlation_id=getattr(request, "request_id", ""),
        )
