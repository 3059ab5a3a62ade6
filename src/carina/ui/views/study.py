"""The study page (``/studies/<uid>/``): patient and study details, the series with their
thumbnails and counts, the tag browser, the viewer, the ZIP download, sending, deleting and
the study's audit history. Another hospital's study is answered 404, as an absent one."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render

from carina.accounts.access import Permission
from carina.archive.actions import ArchiveNotFoundError, do_delete_study
from carina.archive.models import Instance, Series, Study
from carina.audit.actions import do_record
from carina.audit.models import Action, ObjectType
from carina.ui import audit
from carina.ui.access import page, tenant
from carina.ui.links import series_zip_url, thumbnail_url, viewer_url, zip_url
from carina.ui.tags import filtered_rows
from carina.ui.trail import sees_whole_trail, visible_events
from carina.ui.views.sending import send_study

#: The tag browser lists at most this many instances of a series to choose from.
MAX_INSTANCE_CHOICES = 2000
HISTORY_ROWS = 50


def get_study(request: HttpRequest, uid: str) -> Study:
    """The current hospital's study ``uid`` (404 otherwise, whoever holds it)."""
    study = (
        Study.objects.for_hospital(tenant(request))
        .select_related("patient")
        .filter(study_instance_uid=uid)
        .first()
    )
    if study is None:
        raise Http404(f"No study {uid} in {tenant(request).name}.")
    return study


def _series_of(request: HttpRequest, study: Study) -> list[Series]:
    return list(
        Series.objects.for_hospital(tenant(request))
        .filter(study=study)
        .order_by(F("series_number").asc(nulls_last=True), "pk")
    )


@page(Permission.VIEW)
def study(request: HttpRequest, uid: str) -> HttpResponse:
    found = get_study(request, uid)
    series = _series_of(request, found)
    audit.record(
        request,
        action=Action.WEB_QUERY,
        object_type=ObjectType.STUDY,
        object_uid=uid,
        patient_id=found.patient.patient_id,
        count=found.number_of_instances,
    )
    context: dict[str, Any] = {
        "study": found,
        "patient": found.patient,
        "series": [
            {
                "series": s,
                "thumbnail_url": thumbnail_url(uid, s.series_instance_uid),
                "viewer_url": viewer_url(uid, s.series_instance_uid),
                "zip_url": series_zip_url(s.series_instance_uid),
            }
            for s in series
        ],
        "viewer_url": viewer_url(uid),
        "zip_url": zip_url(uid),
        "modalities": [m for m in found.modalities_in_study.split("\\") if m],
        "history": _history(request, found, series)[:HISTORY_ROWS],
        "whole_trail": sees_whole_trail(request),
    }
    return render(request, "ui/study/page.html", context)


def _history(request: HttpRequest, found: Study, series: list[Series]) -> Any:
    uids = [found.study_instance_uid, *(s.series_instance_uid for s in series)]
    return visible_events(request).filter(hospital=tenant(request), object_uid__in=uids)


@page(Permission.VIEW)
def history(request: HttpRequest, uid: str) -> HttpResponse:
    """The study's audit history alone (the study page's section, for HTMX refreshes)."""
    found = get_study(request, uid)
    events = _history(request, found, _series_of(request, found))[:HISTORY_ROWS]
    return render(
        request,
        "ui/study/_history.html",
        {"study": found, "history": events, "whole_trail": sees_whole_trail(request)},
    )


@page(Permission.VIEW)
def tags(request: HttpRequest, uid: str) -> HttpResponse:
    """The tag browser: the DICOM attributes of one instance of a series (its stored DICOM
    JSON), filtered by tag, keyword or value."""
    found = get_study(request, uid)
    hospital = tenant(request)
    series_uid = request.GET.get("series", "")
    series = (
        Series.objects.for_hospital(hospital)
        .filter(study=found, series_instance_uid=series_uid)
        .first()
    )
    if series is None:
        raise Http404(f"No series {series_uid or '(none given)'} in this study.")
    instances = list(
        Instance.objects.for_hospital(hospital)
        .filter(series=series)
        .order_by(F("instance_number").asc(nulls_last=True), "pk")
        .values_list("sop_instance_uid", "instance_number")[:MAX_INSTANCE_CHOICES]
    )
    wanted = request.GET.get("instance") or (instances[0][0] if instances else "")
    instance = (
        Instance.objects.for_hospital(hospital)
        .filter(series=series, sop_instance_uid=wanted)
        .first()
    )
    if instance is None:
        raise Http404(f"No instance {wanted} in this series.")
    text = request.GET.get("q", "")[:64]
    rows = filtered_rows(instance.metadata, text)
    audit.record(
        request,
        action=Action.WEB_RETRIEVE,
        object_type=ObjectType.INSTANCE,
        object_uid=instance.sop_instance_uid,
        patient_id=found.patient.patient_id,
        count=1,
    )
    context = {
        "study": found,
        "series": series,
        "instance": instance,
        "instances": instances,
        "more_instances": series.number_of_instances > len(instances),
        "rows": rows,
        "q": text,
    }
    if request.headers.get("HX-Request") == "true":
        return render(request, "ui/study/_tags.html", context)
    return render(request, "ui/study/tags.html", context)


@page(Permission.DELETE, methods=("GET", "HEAD", "POST"))
def delete(request: HttpRequest, uid: str) -> HttpResponseBase:
    """Confirm, then delete the study with its series, instances and files; the audit event
    is written in the delete's transaction (docs/audit.md)."""
    found = get_study(request, uid)
    if request.method != "POST":
        return render(request, "ui/study/delete.html", {"study": found})
    hospital = tenant(request)
    try:
        with transaction.atomic():
            removed = do_delete_study(hospital, uid)
            do_record(
                **audit.event_fields(
                    request,
                    action=Action.WEB_DELETE,
                    object_type=ObjectType.STUDY,
                    object_uid=uid,
                    patient_id=removed.patient_id,
                    count=removed.instances,
                    detail=audit.request_detail(
                        request,
                        f"{removed.instances} instance(s), {removed.size_bytes} bytes"
                        + ("; the patient went with it" if removed.patient_removed else ""),
                    ),
                )
            )
    except ArchiveNotFoundError as exc:
        raise Http404(exc.message) from None
    messages.success(
        request,
        f"Deleted the study {found.study_description or uid} of "
        f"{found.patient.patient_name or found.patient.patient_id}: {removed.series} series, "
        f"{removed.instances} instance(s).",
    )
    return redirect("ui:worklist")


@page(Permission.SEND, methods=("GET", "HEAD", "POST"))
def send(request: HttpRequest, uid: str) -> HttpResponseBase:
    """Send the study to a DICOM node (see :mod:`carina.ui.views.sending`)."""
    return send_study(request, get_study(request, uid))
