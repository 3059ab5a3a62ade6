"""Sending to DICOM nodes from the UI, through :mod:`carina.routing.actions` (docs/routing.md):
the study page's send dialog (the whole study or one series, to one or more destinations)
and the transfer log (``/transfers/``: progress, outcome, retry and cancel). The worker
(``carina worker``, started by ``carina serve``) does the sending."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import F
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render

from carina.accounts.access import Permission
from carina.archive.models import Series, Study
from carina.dimse.models import RemoteNode
from carina.routing.actions import Requester, TransferError, do_cancel, do_retry, do_send
from carina.routing.models import ACTIVE, Origin, Transfer
from carina.ui.access import page, tenant
from carina.ui.pagination import paginate

LOG_PAGE_SIZE = 50


class SendForm(forms.Form):
    destinations = forms.ModelMultipleChoiceField(
        label="Destinations",
        queryset=RemoteNode.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one destination."},
    )
    what = forms.ChoiceField(label="What to send", widget=forms.RadioSelect)

    def __init__(self, *args: Any, study: Study, series: list[Series], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        nodes = (
            RemoteNode.objects.for_hospital(study.hospital_id)
            .filter(enabled=True, is_move_destination=True)
            .order_by("name")
        )
        field = self.fields["destinations"]
        field.queryset = nodes  # type: ignore[attr-defined]
        field.label_from_instance = lambda node: str(node)  # type: ignore[attr-defined]
        self.fields["what"].choices = [  # type: ignore[attr-defined]
            ("study", f"The whole study ({study.number_of_instances} instances)"),
            *(
                (
                    s.series_instance_uid,
                    f"Series {s.series_number if s.series_number is not None else '?'} "
                    f"{s.series_description} ({s.modality}, {s.number_of_instances} instances)",
                )
                for s in series
            ),
        ]
        self.fields["what"].initial = "study"


def transfers_of_study(request: HttpRequest, study: Study) -> list[Transfer]:
    return list(
        Transfer.objects.for_hospital(tenant(request))
        .filter(study_instance_uid=study.study_instance_uid)
        .order_by("-created_at", "-id")[:20]
    )


def send_study(request: HttpRequest, study: Study) -> HttpResponseBase:
    """The send dialog of ``study`` (the caller checked the send permission)."""
    series = list(
        Series.objects.for_hospital(tenant(request))
        .filter(study=study)
        .order_by(F("series_number").asc(nulls_last=True), "pk")
    )
    form = SendForm(request.POST or None, study=study, series=series)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            what = form.cleaned_data["what"]
            nodes = list(form.cleaned_data["destinations"])
            try:
                transfers = do_send(
                    tenant(request),
                    nodes,
                    requester=Requester(origin=Origin.USER, user=request.user),
                    study_uid=study.study_instance_uid if what == "study" else None,
                    series_uid=None if what == "study" else what,
                )
            except TransferError as exc:
                form.add_error(None, str(exc))
            else:
                names = ", ".join(t.destination_name for t in transfers)
                messages.success(
                    request,
                    f"Queued {len(transfers)} transfer{'s' if len(transfers) != 1 else ''} "
                    f"({transfers[0].total} instances) to {names}.",
                )
                return redirect("ui:study-send", uid=study.study_instance_uid)
        status = 400
    context = {
        "study": study,
        "form": form,
        "has_destinations": form.fields["destinations"].queryset.exists(),  # type: ignore[attr-defined]
        "transfers": transfers_of_study(request, study),
    }
    return render(request, "ui/study/send.html", context, status=status)


@page(Permission.SEND, methods=("GET", "HEAD", "POST"))
def transfer_log(request: HttpRequest) -> HttpResponseBase:
    """The current hospital's transfers, newest first; retry and cancel."""
    hospital = tenant(request)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            transfer_id = int(request.POST.get("transfer", ""))
        except ValueError:
            messages.error(request, "Choose a transfer.")
            return redirect("ui:transfers")
        try:
            if action == "retry":
                do_retry(hospital, transfer_id)
                messages.success(request, f"Transfer {transfer_id} is queued again.")
            elif action == "cancel":
                do_cancel(hospital, transfer_id, request.user.get_username())
                messages.success(request, f"Transfer {transfer_id} is cancelled.")
        except TransferError as exc:
            messages.error(request, str(exc))
        return redirect("ui:transfers")
    try:
        number = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        number = 1
    transfers = Transfer.objects.for_hospital(hospital).order_by("-created_at", "-id")
    result = paginate(transfers, number, LOG_PAGE_SIZE)
    active = any(t.status in ACTIVE for t in result.rows)
    context = {"page": result, "active": active}
    if request.headers.get("HX-Request") == "true":
        return render(request, "ui/transfers/_table.html", context)
    return render(request, "ui/transfers/page.html", context)
