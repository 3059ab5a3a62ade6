"""Finding the study, series or instance a DICOMweb path names, in the caller's hospital
only: anything else — unknown, or another hospital's — is :class:`NotFoundError`."""

from __future__ import annotations

from django.db.models import QuerySet

from carina.archive.models import Instance, Series, Study
from carina.dicomweb.errors import NotFoundError
from carina.tenancy.models import Hospital


def study(hospital: Hospital, study_uid: str) -> Study:
    """The study, with its patient row, in one query."""
    found = (
        Study.objects.for_hospital(hospital)
        .filter(study_instance_uid=study_uid)
        .select_related("patient")
        .first()
    )
    if found is None:
        raise NotFoundError(f"No study {study_uid} in this archive.")
    return found


def series(hospital: Hospital, study_uid: str, series_uid: str) -> Series:
    """The series, with its study and patient rows, in one query."""
    found = (
        Series.objects.for_hospital(hospital)
        .filter(series_instance_uid=series_uid, study__study_instance_uid=study_uid)
        .select_related("study__patient")
        .first()
    )
    if found is None:
        raise NotFoundError(f"No series {series_uid} in study {study_uid} in this archive.")
    return found


def instances(
    hospital: Hospital,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> QuerySet[Instance]:
    """The instances a path names, in series then instance order; :class:`NotFoundError` when
    there is none."""
    rows = Instance.objects.for_hospital(hospital).filter(
        series__study__study_instance_uid=study_uid
    )
    if series_uid is not None:
        rows = rows.filter(series__series_instance_uid=series_uid)
    if sop_uid is not None:
        rows = rows.filter(sop_instance_uid=sop_uid)
    rows = rows.order_by(
        "series__series_number", "series_id", "instance_number", "pk"
    ).select_related("series")
    if not rows.exists():
        what = (
            f"instance {sop_uid}"
            if sop_uid
            else f"series {series_uid}"
            if series_uid
            else f"study {study_uid}"
        )
        raise NotFoundError(f"No {what} in this archive.")
    return rows


def instance(hospital: Hospital, study_uid: str, series_uid: str, sop_uid: str) -> Instance:
    """One instance, with its series, study and patient rows, in one query."""
    found = (
        Instance.objects.for_hospital(hospital)
        .filter(
            sop_instance_uid=sop_uid,
            series__series_instance_uid=series_uid,
            series__study__study_instance_uid=study_uid,
        )
        .select_related("series__study__patient")
        .first()
    )
    if found is None:
        raise NotFoundError(f"No instance {sop_uid} in this archive.")
    return found
