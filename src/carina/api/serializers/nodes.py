"""Known DICOM nodes of a hospital as JSON."""

from __future__ import annotations

from rest_framework import serializers  # type: ignore[import-untyped]

from carina.api.serializers.common import LinkField
from carina.dimse.models import RemoteNode


class NodeSerializer(serializers.ModelSerializer):
    services = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The DIMSE services the node may use, and move-destination.",
    )
    url = LinkField("node-detail", "pk", kwarg="pk")

    class Meta:
        model = RemoteNode
        fields = [
            "id",
            "url",
            "name",
            "ae_title",
            "host",
            "port",
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
            "services",
            "created_at",
            "updated_at",
        ]
        # Uniqueness (name, AE title) is checked by carina.dimse.actions with a clear message.
        validators: list[object] = []
        # A DICOMweb node needs no AE title, host or port; the token is never shown again.
        extra_kwargs: dict[str, dict[str, object]] = {
            "ae_title": {"required": False},
            "host": {"required": False},
            "port": {"required": False},
            "dicomweb_token": {"write_only": True},
        }
