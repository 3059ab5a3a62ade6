"""The audit trail (``/audit/``): the events the user may read (:mod:`carina.ui.trail`) —
their own, the current hospital's for its administrators, every event for a system
administrator — filtered by date, action, outcome, actor, patient, object and text, paged,
and exported as CSV with the same filters.

The page's form offers lists and date pickers; its values are handed to the audit trail's
own :class:`~carina.audit.filters.AuditEventFilterSet`, so a filter means the same here, in
``/api/audit/`` and in its CSV export (:func:`carina.audit.export.csv_lines`, which guards
against spreadsheet formulas in cells).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from carina.audit.export import csv_lines
from carina.audit.filters import AuditEventFilterSet
from carina.audit.models import AuditEvent
from carina.ui.access import page, tenant
from carina.ui.forms import AuditFilterForm
from carina.ui.links import with_params
from carina.ui.pagination import paginate
from carina.ui.trail import scope, sees_whole_trail, visible_events

PAGE_SIZE = 50
FIELDS = ("action", "outcome", "actor", "patient_id", "object_uid", "q")


def filtered(request: HttpRequest, cleaned: dict[str, Any]) -> tuple[QuerySet[AuditEvent], str]:
    """The visible events matching a valid form (newest first), or none and the reason."""
    data = {name: str(cleaned.get(name) or "").strip() for name in FIELDS}
    for name in ("date_from", "date_to"):
        day = cleaned.get(name)
        data[name] = day.isoformat() if day else ""
    filterset = AuditEventFilterSet(
        {k: v for k, v in data.items() if v}, queryset=visible_events(request)
    )
    if not filterset.is_valid():
        reason = " ".join(" ".join(messages) for messages in filterset.errors.values())
        return AuditEvent.objects.none(), reason
    return filterset.qs, ""


def _context(request: HttpRequest, form: AuditFilterForm) -> dict[str, Any]:
    return {
        "form": form,
        "whole_trail": sees_whole_trail(request),
        "scope": scope(request),
        "every_hospital": request.user.is_superuser,
    }


@page(permission=None)
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    context = _context(request, form)
    status = 400
    if form.is_valid():
        events, reason = filtered(request, form.cleaned_data)
        if reason:
            form.add_error(None, reason)
        else:
            status = 200
            number = form.cleaned_data.get("page") or 1
            result = paginate(events, number, PAGE_SIZE)
            context.update(
                page=result,
                previous_url=with_params(request, page=number - 1 or None),
                next_url=with_params(request, page=number + 1),
                export_url=with_params(request, drop=("page",)).replace(
                    request.path, f"{request.path}export.csv", 1
                ),
            )
    return render(request, "ui/audit/page.html", context, status=status)


@page(permission=None)
def export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered events as CSV (UTF-8, one header row), streamed."""
    form = AuditFilterForm(request.GET)
    reason = ""
    if form.is_valid():
        events, reason = filtered(request, form.cleaned_data)
        if not reason:
            response = StreamingHttpResponse(
                csv_lines(events), content_type="text/csv; charset=utf-8"
            )
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            response["Content-Disposition"] = (
                f'attachment; filename="audit-{tenant(request).slug}-{stamp}.csv"'
            )
            return response
        form.add_error(None, reason)
    return render(request, "ui/audit/page.html", _context(request, form), status=400)
