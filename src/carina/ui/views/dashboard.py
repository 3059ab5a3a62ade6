"""The dashboard (``/dashboard/``): the current hospital's totals, studies received per day,
modalities, storage used, ingest activity of the last 24 hours and the latest studies. The
figures are :mod:`carina.api.statistics`'s (the same as ``/api/statistics/``); the charts are
SVG drawn here (:mod:`carina.ui.charts`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from carina.accounts.access import Permission
from carina.api import statistics
from carina.archive.models import Instance, Source
from carina.audit.models import Action, ObjectType
from carina.tenancy.models import Hospital
from carina.ui import audit
from carina.ui.access import page, tenant
from carina.ui.charts import bar_list, column_chart

DAYS = 30
HOURS = 24
RECENT = 10


def ingest_activity(hospital: Hospital, now: dt.datetime | None = None) -> dict[str, Any]:
    """Objects received in each of the last :data:`HOURS` hours (UTC), by how they came."""
    now = now or timezone.now()
    first = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(
        hours=HOURS - 1
    )
    hours = [first + dt.timedelta(hours=i) for i in range(HOURS)]
    counted: dict[tuple[dt.datetime, str], int] = {}
    rows = (
        Instance.objects.for_hospital(hospital)
        .filter(received_at__gte=first)
        .annotate(hour=TruncHour("received_at", tzinfo=dt.UTC))
        .values("hour", "source")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        counted[(row["hour"], row["source"])] = row["n"]
    sources = [s for s in Source if any(key[1] == s.value for key in counted)]
    series = [(s.label, [counted.get((h, s.value), 0) for h in hours]) for s in sources]
    total = sum(counted.values())
    return {"hours": hours, "series": series, "total": total}


@page(Permission.VIEW)
def dashboard(request: HttpRequest) -> HttpResponse:
    hospital = tenant(request)
    totals = statistics.totals(hospital)
    per_day = statistics.studies_per_day(hospital, DAYS)
    modalities = statistics.modalities(hospital)
    storage = statistics.storage(hospital)
    recent = statistics.recent_studies(hospital, RECENT)
    activity = ingest_activity(hospital)
    days_chart = column_chart(
        [row["date"].strftime("%m-%d") for row in per_day],
        [("Studies", [row["studies"] for row in per_day])],
        title=f"Studies received per day, last {DAYS} days",
        description=f"{sum(r['studies'] for r in per_day):,} studies received in {DAYS} days.",
        label_every=5,
    )
    modality_chart = bar_list(
        [(row["modality"], row["studies"]) for row in modalities],
        title="Studies per modality",
        description=", ".join(f"{r['modality'] or '(none)'}: {r['studies']:,}" for r in modalities)
        or "No study yet.",
        value_label="Studies",
    )
    series = activity["series"] or [("Objects", [0] * HOURS)]
    activity_chart = column_chart(
        [h.strftime("%H:00") for h in activity["hours"]],
        series,
        title=f"Objects received per hour, last {HOURS} hours (UTC)",
        description=f"{activity['total']:,} objects received in {HOURS} hours.",
        label_every=4,
    )
    if recent:
        audit.record(
            request, action=Action.WEB_QUERY, object_type=ObjectType.STUDY, count=len(recent)
        )
    context = {
        "totals": totals,
        "storage": storage,
        "days_chart": days_chart,
        "modality_chart": modality_chart,
        "activity_chart": activity_chart,
        "modalities": modalities,
        "recent": recent,
    }
    return render(request, "ui/dashboard.html", context)
