"""Read-only look-ups of remote nodes (always within one hospital)."""

from __future__ import annotations

from carina.dimse.models import RemoteNode
from carina.tenancy.models import Hospital


def node_for_ae(hospital: Hospital, ae_title: str) -> RemoteNode | None:
    """The node of ``hospital`` with AE title ``ae_title`` (padding ignored), if any."""
    return RemoteNode.objects.for_hospital(hospital).filter(ae_title=ae_title.strip()).first()


def node_by_name(hospital: Hospital, name: str) -> RemoteNode | None:
    """The node of ``hospital`` called ``name``, if any."""
    return RemoteNode.objects.for_hospital(hospital).filter(name=name).first()


def nodes_of(hospital: Hospital) -> list[RemoteNode]:
    """Every node of ``hospital``, by name."""
    return list(RemoteNode.objects.for_hospital(hospital).order_by("name"))
