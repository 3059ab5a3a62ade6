"""State changes the REST API needs that no domain app offers yet (``do_*``, atomic).

``do_remove_node`` belongs with ``do_add_node`` in :mod:`carina.dimse.actions`; it lives here
until that module gains it (then this module goes).
"""

from __future__ import annotations

from django.db import transaction

from carina.dimse.models import RemoteNode
from carina.tenancy.models import Hospital


def do_remove_node(hospital: Hospital, node_id: int) -> bool:
    """Forget the node ``node_id`` of ``hospital``; returns whether it existed (another
    hospital's node counts as absent)."""
    with transaction.atomic():
        deleted, _ = RemoteNode.objects.for_hospital(hospital).filter(pk=node_id).delete()
    return deleted > 0
