"""``carina nodes add`` and ``carina nodes list``: the known remote DICOM nodes of a hospital
(idempotent set-up, DESIGN.md §1)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from carina.cli.setup import fail
from carina.dimse.actions import NodeError, NodeOptions, do_add_node
from carina.dimse.nodes import nodes_of
from carina.tenancy.lookups import hospital_by_slug
from carina.tenancy.models import Hospital


def node_options(args: argparse.Namespace) -> NodeOptions:
    """The optional node settings given on the command line (absent ones stay unchanged)."""
    return NodeOptions(**{f.name: getattr(args, f.name, None) for f in fields(NodeOptions)})


def nodes_add(
    name: str, slug: str, ae_title: str, host: str, port: int, options: NodeOptions
) -> int:
    hospital = hospital_by_slug(slug)
    if hospital is None:
        return fail(f"no hospital {slug!r}; add it with: carina hospitals add {slug} …")
    try:
        node, created = do_add_node(
            hospital, name, ae_title=ae_title, host=host, port=port, options=options
        )
    except NodeError as exc:
        return fail(str(exc))
    state = "" if node.enabled else " (disabled)"
    where = node.dicomweb_url if node.is_dicomweb else f"{node.ae_title} at {node.host}:{node.port}"
    print(
        f"{'Added' if created else 'Updated'} node {node.name!r} of hospital {slug!r}: "
        f"{where}{state}; "
        f"services: {', '.join(node.services) or 'none'}."
    )
    return 0


def nodes_list(slug: str | None) -> int:
    if slug is None:
        hospitals = list(Hospital.objects.all())
    else:
        hospital = hospital_by_slug(slug)
        if hospital is None:
            return fail(f"no hospital {slug!r}")
        hospitals = [hospital]
    for hospital in hospitals:
        for node in nodes_of(hospital):
            print(
                "\t".join(
                    [
                        hospital.slug,
                        node.name,
                        node.ae_title or "-",
                        node.dicomweb_url if node.is_dicomweb else f"{node.host}:{node.port}",
                        "enabled" if node.enabled else "disabled",
                        ",".join(node.services) or "-",
                    ]
                )
            )
    return 0
