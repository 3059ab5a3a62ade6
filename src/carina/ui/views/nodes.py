"""Known DICOM nodes of the current hospital (``/manage/nodes/``): list, add, change, remove,
and "Test" — a C-ECHO (PS3.4 A.4), or a QIDO-RS probe for a DICOMweb node, showing the
outcome and the round-trip time (:func:`carina.dimse.actions.check_connection`)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render

from carina.accounts.access import Permission
from carina.audit.models import Action, ActorKind, Outcome
from carina.dimse.actions import (
    NodeError,
    NodeOptions,
    check_connection,
    do_add_node,
    do_remove_node,
)
from carina.dimse.models import RemoteNode
from carina.ui import audit
from carina.ui.access import page, tenant
from carina.ui.forms import NodeForm

OPTIONS = (
    "kind",
    "description",
    "enabled",
    "may_echo",
    "may_store",
    "may_query",
    "may_retrieve",
    "is_move_destination",
    "use_tls",
    "max_associations",
    "preferred_transfer_syntax",
    "dicomweb_url",
)


def get_node(request: HttpRequest, node_id: int) -> RemoteNode:
    node = RemoteNode.objects.for_hospital(tenant(request)).filter(pk=node_id).first()
    if node is None:
        raise Http404(f"No DICOM node {node_id} in {tenant(request).name}.")
    return node


@page(Permission.MANAGE_NODES)
def node_list(request: HttpRequest) -> HttpResponse:
    nodes = RemoteNode.objects.for_hospital(tenant(request)).order_by("name")
    return render(request, "ui/manage/nodes.html", {"nodes": list(nodes)})


def _initial(node: RemoteNode) -> dict[str, Any]:
    fields = ("name", "ae_title", "host", "port", *OPTIONS)
    return {name: getattr(node, name) for name in fields}


@page(Permission.MANAGE_NODES, methods=("GET", "HEAD", "POST"))
def node_edit(request: HttpRequest, node_id: int | None = None) -> HttpResponseBase:
    hospital = tenant(request)
    node = get_node(request, node_id) if node_id is not None else None
    if request.method == "POST":
        initial = _initial(node) if node else None
        form = NodeForm(request.POST, initial=initial, hospital=hospital, node=node)
        if form.is_valid():
            data = form.cleaned_data
            options: dict[str, Any] = {name: data.get(name) for name in OPTIONS}
            options["preferred_transfer_syntax"] = data.get("preferred_transfer_syntax") or ""
            options["dicomweb_url"] = data.get("dicomweb_url") or ""
            token = data.get("dicomweb_token")
            if token:
                options["dicomweb_token"] = token
            try:
                saved, created = do_add_node(
                    hospital,
                    node.name if node else data["name"],
                    ae_title=data.get("ae_title") or "",
                    host=data.get("host") or "",
                    port=data.get("port") or 0,
                    options=NodeOptions(**options),
                )
            except NodeError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request, f"{'Added' if created else 'Saved'} the node {saved.name}."
                )
                return redirect("ui:nodes")
        status = 400
    else:
        form = NodeForm(initial=_initial(node) if node else None, hospital=hospital, node=node)
        status = 200
    return render(request, "ui/manage/node_form.html", {"form": form, "node": node}, status=status)


@page(Permission.MANAGE_NODES, methods=("GET", "HEAD", "POST"))
def node_delete(request: HttpRequest, node_id: int) -> HttpResponseBase:
    node = get_node(request, node_id)
    if request.method == "POST":
        do_remove_node(tenant(request), node.pk)
        messages.success(request, f"Removed the node {node.name}.")
        return redirect("ui:nodes")
    return render(request, "ui/manage/node_delete.html", {"node": node})


@page(Permission.MANAGE_NODES, methods=("POST",))
def node_echo(request: HttpRequest, node_id: int) -> HttpResponseBase:
    """Test the connection now; the answer is the result line (HTMX) or the node list."""
    node = get_node(request, node_id)
    check = check_connection(node)
    audit.record(
        request,
        action=Action.ECHO,
        actor_kind=ActorKind.USER,
        destination_ae=node.ae_title,
        outcome=Outcome.SUCCESS if check.ok else Outcome.FAILURE,
        detail=audit.request_detail(request, f"test of node {node.name}: {check.message}"),
    )
    context = {"node": node, "check": check}
    if request.headers.get("HX-Request") == "true":
        return render(request, "ui/manage/_echo.html", context)
    (messages.success if check.ok else messages.error)(request, f"{node.name}: {check.message}")
    return redirect("ui:nodes")
