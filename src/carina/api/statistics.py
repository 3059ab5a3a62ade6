"""Figures about one hospital's archive, for the dashboard and ``/api/statistics/``: totals,
studies received per day, modalities, storage used and the latest studies received.

Every figure comes from the index (``for_hospital``): the study rows carry their counts and
sizes, so the totals are a handful of aggregate queries, whatever the archive's size.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from carina.archive.models import Instance, Patient, Series, Study
from carina.tenancy.models import Hospital

DEFAULT_DAYS = 30
MAX_DAYS = 366
DEFAULT_RECENT = 10
MAX_RECENT = 100


def totals(hospital: Hospital) -> dict[str, int]:
    """Patients, studies, series, instances and bytes stored."""
    studies = Study.objects.for_hospital(hospital).aggregate(
        studies=Count("pk"), instances=Sum("number_of_instances"), bytes=Sum("size_bytes")
    )
    return {
        "patients": Patient.objects.for_hospital(hospital).count(),
        "studies": int(studies["studies"] or 0),
        "series": Series.objects.for_hospital(hospital).count(),
        "instances": int(studies["instances"] or 0),
        "bytes": int(studies["bytes"] or 0),
    }


def studies_per_day(
    hospital: Hospital, days: int, today: dt.date | None = None
) -> list[dict[str, Any]]:
    """Studies received on each of the last ``days`` days (UTC), today included, oldest
    first; days without a study count 0."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    counted = {
        row["day"]: row["n"]
        for row in Study.objects.for_hospital(hospital)
        .filter(received_at__gte=start)
        .annotate(day=TruncDate("received_at", tzinfo=dt.UTC))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
    }
    return [
        {"date": day, "studies": int(counted.get(day, 0))}
        for day in (first + dt.timedelta(days=i) for i in range(days))
    ]


def modalities(hospital: Hospital) -> list[dict[str, Any]]:
    """Per modality: studies with a series of it, series, instances and bytes; most
    instances first."""
    rows = (
        Series.objects.for_hospital(hospital)
        .values("modality")
        .annotate(
            studies=Count("study", distinct=True),
            series=Count("pk"),
            instances=Sum("number_of_instances"),
            bytes=Sum("size_bytes"),
        )
        .order_by()
    )
    result = [
        {
            "modality": row["modality"] or "",
            "studies": int(row["studies"]),
            "series": int(row["series"]),
            "instances": int(row["instances"] or 0),
            "bytes": int(row["bytes"] or 0),
        }
        for row in rows
    ]
    return sorted(result, key=lambda r: (-r["instances"], r["modality"]))


def storage(hospital: Hospital) -> dict[str, Any]:
    """Bytes stored, in total and over the last 30 days."""
    since = timezone.now() - dt.timedelta(days=30)
    instances = Instance.objects.for_hospital(hospital)
    total = instances.aggregate(bytes=Sum("size_bytes"))["bytes"]
    recent = instances.filter(received_at__gte=since).aggregate(bytes=Sum("size_bytes"))["bytes"]
    return {"bytes": int(total or 0), "bytes_last_30_days": int(recent or 0)}


def recent_studies(hospital: Hospital, count: int) -> list[dict[str, Any]]:
    """The ``count`` studies received last (newest first)."""
    rows = (
        Study.objects.for_hospital(hospital)
        .select_related("patient")
        .order_by("-received_at", "-pk")[:count]
    )
    return [
        {
            "study_instance_uid": s.study_instance_uid,
            "received_at": s.received_at,
            "study_date": s.study_date,
            "study_description": s.study_description,
            "modalities_in_study": [m for m in s.modalities_in_study.split("\\") if m],
            "number_of_instances": s.number_of_instances,
            "patient_id": s.patient.patient_id,
            "patient_name": s.patient.patient_name,
        }
        for s in rows
    ]


def hospital_statistics(
    hospital: Hospital, *, days: int = DEFAULT_DAYS, recent: int = DEFAULT_RECENT
) -> dict[str, Any]:
    """Everything ``/api/statistics/`` answers, for ``hospital``."""
    return {
        "hospital": hospital.slug,
        "totals": totals(hospital),
        "days": days,
        "studies_per_day": studies_per_day(hospital, days),
        "modalities": modalities(hospital),
        "storage": storage(hospital),
        "recent_studies": recent_studies(hospital, recent),
    }
