"""The audit trail (``/audit/``): the current hospital's events — all of them for whoever may
``view_audit``, one's own for everyone else — filtered by date, action, outcome, actor,
patient and object, paged, and exported as CSV with the same filters."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from carina.audit.models import AuditEvent
from carina.ui.access import page, tenant
from carina.ui.forms import AuditFilterForm
from carina.ui.links import with_params
from carina.ui.pagination import paginate
from carina.ui.trail import sees_whole_trail, visible_events

PAGE_SIZE = 50
CSV_COLUMNS = (
    "occurred_at",
    "actor",
    "actor_kind",
    "action",
    "outcome",
    "object_type",
    "object_uid",
    "patient_id",
    "count",
    "source_ip",
    "source_ae",
    "destination_ae",
    "correlation_id",
    "detail",
)


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def filtered(request: HttpRequest, cleaned: dict[str, Any]) -> QuerySet[AuditEvent]:
    events = visible_events(request)
    if cleaned.get("date_from"):
        events = events.filter(occurred_at__gte=_day_start(cleaned["date_from"]))
    if cleaned.get("date_to"):
        end = _day_start(cleaned["date_to"] + dt.timedelta(days=1))
        events = events.filter(occurred_at__lt=end)
    for name in ("action", "outcome", "patient_id", "object_uid"):
        value = str(cleaned.get(name) or "").strip()
        if value:
            events = events.filter(**{name: value})
    actor = str(cleaned.get("actor") or "").strip()
    if actor:
        events = events.filter(actor=actor)
    return events


@page(permission=None)
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    context: dict[str, Any] = {"form": form, "whole_trail": sees_whole_trail(request)}
    if form.is_valid():
        number = form.cleaned_data.get("page") or 1
        result = paginate(filtered(request, form.cleaned_data), number, PAGE_SIZE)
        context.update(
            page=result,
            previous_url=with_params(request, page=number - 1 or None),
            next_url=with_params(request, page=number + 1),
            export_url=with_params(request, drop=("page",)).replace(
                request.path, f"{request.path}export.csv", 1
            ),
        )
    status = 200 if form.is_valid() else 400
    return render(request, "ui/audit/page.html", context, status=status)


def _rows(events: QuerySet[AuditEvent]) -> Iterator[str]:
    class Line:
        value = ""

        def write(self, text: str) -> None:
            self.value = text

    line = Line()
    writer = csv.writer(line)
    writer.writerow(CSV_COLUMNS)
    yield line.value
    for event in events.iterator(chunk_size=2000):
        writer.writerow(
            [
                event.occurred_at.isoformat() if name == "occurred_at" else getattr(event, name)
                for name in CSV_COLUMNS
            ]
        )
        yield line.value


@page(permission=None)
def export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered events as CSV (UTF-8, one header row), streamed."""
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return render(
            request,
            "ui/audit/page.html",
            {"form": form, "whole_trail": sees_whole_trail(request)},
            status=400,
        )
    events = filtered(request, form.cleaned_data)
    response = StreamingHttpResponse(_rows(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{tenant(request).slug}-{stamp}.csv"'
    )
    return response
