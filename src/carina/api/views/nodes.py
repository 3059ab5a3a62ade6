"""The current hospital's known DICOM nodes (docs/dimse.md): everyone in the hospital sees
them; those who may manage nodes add, change and remove them, through
:mod:`carina.dimse.actions`."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins  # type: ignore[import-untyped]
from rest_framework.exceptions import NotFound, ValidationError  # type: ignore[import-untyped]

from carina.accounts.access import Permission
from carina.api.base import CarinaViewSet
from carina.api.serializers.nodes import NodeSerializer
from carina.dimse.actions import NodeError, NodeOptions, do_add_node, do_remove_node
from carina.dimse.models import RemoteNode

OPTIONS = (
    "description",
    "enabled",
    "may_echo",
    "may_store",
    "may_query",
    "may_retrieve",
    "is_move_destination",
    "kind",
    "use_tls",
    "preferred_transfer_syntax",
    "max_associations",
    "dicomweb_url",
    "dicomweb_token",
)


@extend_schema_view(
    list=extend_schema(summary="Known DICOM nodes", tags=["nodes"]),
    retrieve=extend_schema(summary="A DICOM node", tags=["nodes"]),
    create=extend_schema(summary="Add a DICOM node", tags=["nodes"]),
    update=extend_schema(
        summary="Change a DICOM node",
        description="Every field but the name can change (the name identifies the node for "
        "`carina send --to`; remove the node and add it again to rename it).",
        tags=["nodes"],
    ),
    partial_update=extend_schema(summary="Change a DICOM node", tags=["nodes"]),
    destroy=extend_schema(summary="Forget a DICOM node", tags=["nodes"]),
)
class NodeViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    CarinaViewSet,
):
    """Remote DICOM nodes of the current hospital."""

    model = RemoteNode
    noun = "DICOM node"
    serializer_class = NodeSerializer
    write_permission = Permission.MANAGE_NODES
    filterset_fields: ClassVar[list[str]] = ["name", "ae_title", "enabled"]

    def scope(self, queryset: Any) -> Any:
        return queryset.order_by("name")

    def _save(self, name: str, data: dict[str, Any]) -> RemoteNode:
        options = NodeOptions(**{key: data[key] for key in OPTIONS if key in data})
        try:
            node, _ = do_add_node(
                self.hospital,
                name,
                ae_title=data.get("ae_title", ""),
                host=data.get("host", ""),
                port=data.get("port", 0),
                options=options,
            )
        except NodeError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return node

    def perform_create(self, serializer: NodeSerializer) -> None:
        data = serializer.validated_data
        name = data["name"].strip()
        if RemoteNode.objects.for_hospital(self.hospital).filter(name=name).exists():
            raise ValidationError(
                {"name": [f"A node called {name!r} exists already in {self.hospital.slug}."]}
            )
        serializer.instance = self._save(name, data)

    def perform_update(self, serializer: NodeSerializer) -> None:
        node: RemoteNode = serializer.instance
        data = serializer.validated_data
        if data.get("name", node.name).strip() != node.name:
            raise ValidationError(
                {"name": ["A node's name cannot change; remove the node and add it again."]}
            )
        current = {"ae_title": node.ae_title, "host": node.host, "port": node.port}
        serializer.instance = self._save(node.name, {**current, **data})

    def perform_destroy(self, instance: RemoteNode) -> None:
        if not do_remove_node(self.hospital, instance.pk):
            raise NotFound(f"No DICOM node {instance.pk} in {self.hospital.slug}.")
