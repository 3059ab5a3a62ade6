"""``/api/transfers/``, ``/api/rules/`` and ``/api/nodes/{pk}/test/`` (docs/routing.md, "API").

* Transfers: whoever may send (``send``) asks for transfers and sees, cancels and retries
  their own; whoever may see the hospital's audit trail (``view_audit``: its administrators)
  sees and acts on every transfer of the hospital.
* Rules: those who manage the hospital's nodes (``manage_nodes``).
* Test connection: ``manage_nodes``; C-ECHO or a DICOMweb probe, with the round trip.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status  # type: ignore[import-untyped]
from rest_framework.exceptions import (  # type: ignore[import-untyped]
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]

from carina.accounts.access import Permission, has_permission
from carina.api.base import CarinaAPIView, CarinaViewSet, action
from carina.api.serializers.common import ErrorSerializer
from carina.core.request_id import current_request_id
from carina.dimse.actions import check_connection
from carina.dimse.models import RemoteNode
from carina.routing.actions import (
    Requester,
    RuleError,
    RuleFields,
    TransferError,
    do_cancel,
    do_delete_rule,
    do_retry,
    do_save_rule,
    do_send,
)
from carina.routing.filters import TransferFilter
from carina.routing.models import PREFETCHED_DESTINATIONS, ForwardingRule, Origin, Transfer
from carina.routing.serializers import (
    ConnectionCheckSerializer,
    RuleSerializer,
    TransferDetailSerializer,
    TransferRequestSerializer,
    TransferSerializer,
)
from carina.tenancy.models import Hospital


def correlation_id(request: Request) -> str:
    """The request's correlation ID (set by carina.core.request_id's middleware)."""
    return current_request_id()


def resolve_nodes(hospital: Hospital, names_or_ids: list[str]) -> list[RemoteNode]:
    """The hospital's nodes named (or numbered) so; raises a 400 naming the unknown ones."""
    nodes = RemoteNode.objects.for_hospital(hospital)
    found: list[RemoteNode] = []
    unknown: list[str] = []
    for value in dict.fromkeys(v.strip() for v in names_or_ids):
        node = nodes.filter(name=value).first()
        if node is None and value.isdigit():
            node = nodes.filter(pk=int(value)).first()
        if node is None:
            unknown.append(value)
        else:
            found.append(node)
    if unknown:
        raise ValidationError(
            {"destinations": [f"No node {', '.join(map(repr, unknown))} in {hospital.slug}."]}
        )
    return found


def _error(exc: TransferError) -> Exception:
    return NotFound(str(exc)) if exc.not_found else ValidationError({"detail": str(exc)})


@extend_schema_view(
    list=extend_schema(
        summary="Transfer log",
        description="Your transfers (a hospital administrator sees the hospital's), newest "
        "first; filter by status, destination, user, date, patient.",
        tags=["transfers"],
    ),
    retrieve=extend_schema(
        summary="A transfer", description="Its progress and each failure.", tags=["transfers"]
    ),
)
class TransferViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, CarinaViewSet):
    """Transfers of the current hospital to its destination nodes."""

    model = Transfer
    noun = "transfer"
    serializer_class = TransferSerializer
    read_permission = Permission.SEND
    write_permission = Permission.SEND
    filterset_class = TransferFilter

    def get_serializer_class(self) -> Any:
        if getattr(self, "action", None) == "retrieve":
            return TransferDetailSerializer
        return TransferSerializer

    def sees_all(self) -> bool:
        return has_permission(self.request.user, self.hospital, Permission.VIEW_AUDIT)

    def scope(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.sees_all():
            queryset = queryset.filter(requested_by=self.request.user)
        return queryset.order_by("-created_at", "-id")

    @extend_schema(
        summary="Send a study, a series or instances",
        description="One transfer per destination, queued at once and sent in the "
        "background; answered 202 with the transfers.",
        request=TransferRequestSerializer,
        responses={202: TransferSerializer(many=True)},
        tags=["transfers"],
    )
    def create(self, request: Request) -> Response:
        given = TransferRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        nodes = resolve_nodes(self.hospital, data["destinations"])
        requester = Requester(
            origin=Origin.USER, user=request.user, correlation_id=correlation_id(request)
        )
        try:
            transfers = do_send(
                self.hospital,
                nodes,
                requester=requester,
                study_uid=data.get("study_instance_uid"),
                series_uid=data.get("series_instance_uid"),
                sop_instance_uids=data.get("sop_instance_uids"),
            )
        except TransferError as exc:
            raise _error(exc) from None
        body = TransferSerializer(transfers, many=True, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    def _act(self, request: Request, pk: str, act: Any) -> Response:
        transfer: Transfer = self.get_object()
        if not self.sees_all() and transfer.requested_by_id != request.user.pk:
            raise PermissionDenied("Only its requester or a hospital administrator may do this.")
        try:
            changed = act(transfer)
        except TransferError as exc:
            raise _error(exc) from None
        return Response(TransferDetailSerializer(changed, context={"request": request}).data)

    @extend_schema(
        summary="Cancel a transfer",
        description="Nothing more is sent (an instance already on the wire finishes).",
        request=None,
        responses={
            200: TransferDetailSerializer,
            400: OpenApiResponse(ErrorSerializer, description="The transfer has ended."),
        },
        tags=["transfers"],
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        by = request.user.get_username()
        return self._act(request, pk, lambda t: do_cancel(self.hospital, t.pk, by))

    @extend_schema(
        summary="Retry a transfer",
        description="A failed, partly failed or cancelled transfer is queued again; only "
        "its instances not yet delivered are sent.",
        request=None,
        responses={
            200: TransferDetailSerializer,
            400: OpenApiResponse(
                ErrorSerializer, description="The transfer is not failed or cancelled."
            ),
        },
        tags=["transfers"],
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        return self._act(request, pk, lambda t: do_retry(self.hospital, t.pk))


def _rule_fields(data: dict[str, Any], current: ForwardingRule | None) -> RuleFields:
    def pick(name: str, default: Any) -> Any:
        if name in data:
            return data[name]
        return getattr(current, name) if current is not None else default

    return RuleFields(
        enabled=pick("enabled", True),
        trigger=pick("trigger", "stable"),
        stable_seconds=pick("stable_seconds", 60),
        calling_ae=pick("calling_ae", ""),
        modality=pick("modality", ""),
        body_part=pick("body_part", ""),
        study_description=pick("study_description", ""),
        keys=pick("keys", {}),
    )


@extend_schema_view(
    list=extend_schema(summary="Forwarding rules", tags=["rules"]),
    retrieve=extend_schema(summary="A forwarding rule", tags=["rules"]),
    create=extend_schema(summary="Add a forwarding rule", tags=["rules"]),
    update=extend_schema(summary="Change a forwarding rule", tags=["rules"]),
    partial_update=extend_schema(summary="Change a forwarding rule", tags=["rules"]),
    destroy=extend_schema(summary="Remove a forwarding rule", tags=["rules"]),
)
class RuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    CarinaViewSet,
):
    """Automatic forwarding rules of the current hospital."""

    model = ForwardingRule
    noun = "rule"
    serializer_class = RuleSerializer
    read_permission = Permission.MANAGE_NODES
    write_permission = Permission.MANAGE_NODES
    filterset_fields: ClassVar[list[str]] = ["enabled", "trigger"]

    def scope(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        destinations = Prefetch(
            "destinations",
            queryset=RemoteNode.objects.for_hospital(self.hospital).order_by("name"),
            to_attr=PREFETCHED_DESTINATIONS,
        )
        return queryset.prefetch_related(destinations).order_by("name")

    def _save(self, serializer: RuleSerializer, current: ForwardingRule | None) -> None:
        data = serializer.validated_data
        name = data.get("name", current.name if current else "")
        if "destinations" in data:
            nodes = resolve_nodes(self.hospital, data["destinations"])
        else:
            nodes = current.destination_nodes() if current else []
        try:
            serializer.instance = do_save_rule(
                self.hospital,
                name,
                _rule_fields(data, current),
                nodes,
                by=self.request.user.get_username(),
                rule_id=current.pk if current else None,
            )
        except RuleError as exc:
            raise ValidationError({"detail": str(exc)}) from None

    def perform_create(self, serializer: RuleSerializer) -> None:
        self._save(serializer, None)

    def perform_update(self, serializer: RuleSerializer) -> None:
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance: ForwardingRule) -> None:
        if not do_delete_rule(self.hospital, instance.pk):
            raise NotFound(f"No rule {instance.pk} in {self.hospital.slug}.")


class NodeTestView(CarinaAPIView):
    """Test the connection to a node: C-ECHO (PS3.4 A.4), or for a DICOMweb node an
    authenticated QIDO-RS search (PS3.18 10.6)."""

    model = RemoteNode
    read_permission = Permission.MANAGE_NODES
    write_permission = Permission.MANAGE_NODES

    @extend_schema(
        summary="Test the connection to a node",
        description="C-ECHO (or a DICOMweb QIDO-RS probe): whether it answered, the round "
        "trip, and what happened. 200 either way; `ok` says.",
        request=None,
        responses={200: ConnectionCheckSerializer},
        tags=["nodes"],
    )
    def post(self, request: Request, pk: str) -> Response:
        node = (
            RemoteNode.objects.for_hospital(self.hospital).filter(pk=int(pk)).first()
            if pk.isdigit()
            else None
        )
        if node is None:
            raise NotFound(f"No DICOM node {pk} in {self.hospital.slug}.")
        result = check_connection(node)
        body = {
            "ok": result.ok,
            "rtt_ms": None if result.rtt is None else round(result.rtt * 1000, 1),
            "message": result.message,
        }
        return Response(ConnectionCheckSerializer(body).data)


__all__ = ["NodeTestView", "RuleViewSet", "TransferViewSet", "correlation_id"]
