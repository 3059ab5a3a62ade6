"""The worklist (``/``): the current hospital's studies, searched, filtered, sorted and
paged, refreshed by HTMX polling so that new studies appear without a reload (docs/ui.md).

* A full request renders the page; an HTMX request for ``#results`` renders only the table.
* The table polls every :data:`POLL_SECONDS` with ``poll=<archive version>``: when nothing
  arrived or went since, the answer is ``204 No Content`` and HTMX leaves the page alone.
* An invalid search (a date range that ends before it starts, an unknown sort column) shows
  each message beside its field, with every value kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from carina.accounts.access import Permission
from carina.archive.filters import has_wildcards
from carina.archive.models import Study
from carina.audit.models import Action, ObjectType
from carina.ui import audit
from carina.ui.access import can, page, tenant
from carina.ui.links import viewer_url, with_params, zip_url
from carina.ui.pagination import DEFAULT_PAGE_SIZE, paginate
from carina.ui.templatetags.carina_ui import dicom_date, dicom_time, person_name
from carina.ui.worklist import (
    COLUMNS,
    DEFAULT_ORDERING,
    WorklistForm,
    archive_version,
    status_of,
    studies,
)

POLL_SECONDS = 10


def _columns(request: HttpRequest, ordering: str) -> list[dict[str, Any]]:
    """Each column's heading, sort link and ``aria-sort`` state."""
    current, descending = ordering.lstrip("-"), ordering.startswith("-")
    columns = []
    for column in COLUMNS:
        entry: dict[str, Any] = {"label": column.label, "key": column.key}
        if column.key:
            if current == column.key:
                entry["sort"] = "descending" if descending else "ascending"
                following = column.key if descending else f"-{column.key}"
            else:
                entry["sort"] = "none"
                following = f"-{column.key}" if column.descending_first else column.key
            entry["url"] = with_params(request, drop=("page", "poll"), ordering=following)
        columns.append(entry)
    return columns


def row_of(study: Study, now: dt.datetime) -> dict[str, Any]:
    """What a worklist row shows, computed once (the template only prints it)."""
    uid = study.study_instance_uid
    patient = study.patient
    name = person_name(patient.patient_name)
    when = dicom_date(study.study_date)
    return {
        "uid": uid,
        "name": name or "(no name)",
        "label": f"{name} {when}".strip(),
        "patient_id": patient.patient_id,
        "birth_date": dicom_date(patient.patient_birth_date),
        "accession": study.accession_number,
        "date": f"{when} {dicom_time(study.study_time)}".strip(),
        "modalities": [m for m in study.modalities_in_study.split("\\") if m],
        "description": study.study_description,
        "counts": f"{study.number_of_series} / {study.number_of_instances}",
        "status": status_of(study, now),
        "received": f"{study.received_at:%Y-%m-%d %H:%M}",
        "updated": f"{study.updated_at:%Y-%m-%d %H:%M}",
        "study_url": f"/studies/{uid}/",
        "send_url": f"/studies/{uid}/send/",
        "viewer_url": viewer_url(uid),
        "zip_url": zip_url(uid),
    }


@page(Permission.VIEW)
def worklist(request: HttpRequest) -> HttpResponse:
    hospital = tenant(request)
    version = archive_version(hospital)
    htmx = request.headers.get("HX-Request") == "true"
    if htmx and request.GET.get("poll") == version:
        return HttpResponse(status=204)
    form = WorklistForm(request.GET, hospital=hospital)
    context: dict[str, Any] = {
        "form": form,
        "poll_seconds": POLL_SECONDS,
        "can_download": can(request, Permission.DOWNLOAD),
        "can_send": can(request, Permission.SEND),
    }
    if form.is_valid():
        cleaned = form.cleaned_data
        rows, filter_errors = studies(hospital, cleaned)
        number = cleaned.get("page") or 1
        result = paginate(rows, number, cleaned.get("size") or DEFAULT_PAGE_SIZE)
        now = timezone.now()
        context.update(
            page=result,
            filter_errors=filter_errors,
            rows=[row_of(study, now) for study in result.rows],
            columns=_columns(request, cleaned.get("ordering") or DEFAULT_ORDERING),
            period_range=(cleaned.get("date_from"), cleaned.get("date_to")),
            previous_url=with_params(request, drop=("poll",), page=number - 1 or None),
            next_url=with_params(request, drop=("poll",), page=number + 1),
            first_url=with_params(request, drop=("poll", "page")),
            last_url=(
                with_params(request, drop=("poll",), page=result.last_number)
                if result.last_number
                else None
            ),
            poll_url=with_params(request, poll=version),
        )
        patient_id = str(cleaned.get("patient_id") or "")
        audit.record(
            request,
            action=Action.WEB_QUERY,
            object_type=ObjectType.STUDY,
            patient_id="" if has_wildcards(patient_id) else patient_id,
            count=len(result.rows),
        )
    else:
        context.update(columns=_columns(request, DEFAULT_ORDERING), rows=[], page=None)
    if htmx and request.headers.get("HX-Target") == "results":
        if form.is_valid():
            return render(request, "ui/worklist/_results.html", context)
        # Show the messages beside the fields: redraw the whole search, values kept.
        response = render(request, "ui/worklist/_worklist.html", context)
        response["HX-Retarget"] = "#worklist"
        response["HX-Reswap"] = "outerHTML"
        return response
    return render(request, "ui/worklist/page.html", context)
