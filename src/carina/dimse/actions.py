"""State changes of remote nodes (``do_*``), each atomic."""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.db import IntegrityError, transaction

from carina.config.env import ConfigError, validate_ae_title
from carina.dimse.models import RemoteNode
from carina.tenancy.models import Hospital


class NodeError(ValueError):
    """A node change that cannot be made, with the reason."""


@dataclass(frozen=True)
class NodeOptions:
    """Optional node settings; ``None`` keeps the stored value (or the default on creation)."""

    description: str | None = None
    enabled: bool | None = None
    may_echo: bool | None = None
    may_store: bool | None = None
    may_query: bool | None = None
    may_retrieve: bool | None = None
    is_move_destination: bool | None = None


def _clean(name: str, ae_title: str, host: str, port: int) -> tuple[str, str, str]:
    name = name.strip()
    if not name or len(name) > 64:
        raise NodeError(f"node name {name!r}: use 1 to 64 characters.")
    try:
        ae_title = validate_ae_title(ae_title, f"AE title of node {name!r}")
    except ConfigError as exc:
        raise NodeError(str(exc)) from None
    host = host.strip()
    if not host or len(host) > 255 or any(c.isspace() for c in host):
        raise NodeError(f"host {host!r} of node {name!r}: give a host name or an IP address.")
    if not 0 < port < 65536:
        raise NodeError(f"port {port} of node {name!r}: a port is between 1 and 65535.")
    return name, ae_title, host


def do_add_node(
    hospital: Hospital,
    name: str,
    *,
    ae_title: str,
    host: str,
    port: int,
    options: NodeOptions | None = None,
) -> tuple[RemoteNode, bool]:
    """Create node ``name`` of ``hospital`` or bring it up to date (idempotent).

    Returns the node and whether it was created. An AE title already used by another node of
    the same hospital is refused: a calling AE title must identify one node.
    """
    name, ae_title, host = _clean(name, ae_title, host, port)
    changes = {
        f.name: getattr(options, f.name)
        for f in fields(NodeOptions)
        if options is not None and getattr(options, f.name) is not None
    }
    try:
        with transaction.atomic():
            nodes = RemoteNode.objects.for_hospital(hospital)
            clash = nodes.filter(ae_title=ae_title).exclude(name=name).first()
            if clash is not None:
                raise NodeError(
                    f"AE title {ae_title!r} is already used by node {clash.name!r} of hospital "
                    f"{hospital.slug!r}; each calling AE title identifies one node."
                )
            node = nodes.select_for_update().filter(name=name).first()
            if node is None:
                node = RemoteNode.objects.create(
                    hospital=hospital,
                    name=name,
                    ae_title=ae_title,
                    host=host,
                    port=port,
                    **changes,
                )
                return node, True
            wanted = {"ae_title": ae_title, "host": host, "port": port, **changes}
            changed = [k for k, v in wanted.items() if getattr(node, k) != v]
            if changed:
                for key in changed:
                    setattr(node, key, wanted[key])
                node.save(update_fields=[*changed, "updated_at"])
            return node, False
    except IntegrityError as exc:  # a concurrent add of the same name or AE title
        raise NodeError(f"node {name!r} could not be saved: {exc}") from None
