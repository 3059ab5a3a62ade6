"""DELETE of a study, a series or an instance under ``/dicomweb``.

PS3.18 defines no delete for the Studies service; Carina offers it as dcm4chee and other
archives do: ``DELETE /dicomweb/studies/{study}``, ``…/series/{series}`` and
``…/series/{series}/instances/{instance}`` answer ``204 No Content`` once the index rows are
gone (the blobs are deleted right after the commit). Only a hospital administrator (or a
system administrator) may delete: anyone else gets 403. An unknown UID, or another hospital's,
is 404. A series or study left empty disappears, and the patient when it has no other study.

Each request that deletes, or is refused for want of the role, leaves one ``dicomweb.delete``
audit event, written in the same transaction as the deletion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from carina.accounts.access import may_delete, role_in
from carina.archive.actions import (
    ArchiveNotFoundError,
    Removed,
    do_delete_instances,
    do_delete_series,
    do_delete_study,
)
from carina.audit.actions import do_record
from carina.audit.models import Action, ActorKind, ObjectType, Outcome
from carina.dicomweb.endpoint import client_ip, dicomweb_view
from carina.dicomweb.errors import ForbiddenError, NotFoundError
from carina.dicomweb.views.stow import check_same_origin
from carina.tenancy.models import Hospital


@dicomweb_view(("DELETE",))
def study(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """``DELETE /dicomweb/studies/{study}``: the study, its series and instances."""
    study_uid: str = kwargs["study_uid"]
    return _delete(
        request,
        ObjectType.STUDY,
        study_uid,
        lambda hospital: do_delete_study(hospital, study_uid),
    )


@dicomweb_view(("DELETE",))
def series(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """``DELETE /dicomweb/studies/{study}/series/{series}``: one series and its instances."""
    study_uid: str = kwargs["study_uid"]
    series_uid: str = kwargs["series_uid"]
    return _delete(
        request,
        ObjectType.SERIES,
        series_uid,
        lambda hospital: do_delete_series(hospital, study_uid, series_uid),
    )


@dicomweb_view(("DELETE",))
def instance(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """``DELETE /dicomweb/studies/{study}/series/{series}/instances/{instance}``."""
    study_uid: str = kwargs["study_uid"]
    series_uid: str = kwargs["series_uid"]
    sop_uid: str = kwargs["sop_uid"]
    return _delete(
        request,
        ObjectType.INSTANCE,
        sop_uid,
        lambda hospital: do_delete_instances(hospital, study_uid, series_uid, [sop_uid]),
    )


def _delete(
    request: HttpRequest,
    object_type: ObjectType,
    object_uid: str,
    action: Callable[[Hospital], Removed],
) -> HttpResponseBase:
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    user = request.carina_user  # type: ignore[attr-defined]
    event = {
        "hospital": hospital,
        "actor": user.get_username(),
        "actor_kind": ActorKind.USER,
        "action": Action.WEB_DELETE,
        "object_type": object_type,
        "object_uid": object_uid,
        "source_ip": client_ip(request),
    }
    try:
        check_same_origin(request)
        if not may_delete(user, hospital):
            role = role_in(user, hospital)
            raise ForbiddenError(
                f"Your role in {hospital.slug} ({role.label if role else 'none'}) may not "
                "delete; only a hospital administrator may."
            )
    except ForbiddenError as exc:
        do_record(**event, outcome=Outcome.FAILURE, detail=exc.message)
        raise
    try:
        with transaction.atomic():
            removed = action(hospital)
            do_record(
                **event,
                patient_id=removed.patient_id,
                outcome=Outcome.SUCCESS,
                detail=_detail(object_type, removed),
                count=removed.instances,
            )
    except ArchiveNotFoundError as exc:
        raise NotFoundError(exc.message) from None
    return HttpResponse(status=204)


def _detail(object_type: ObjectType, removed: Removed) -> str:
    text = (
        f"deleted {object_type.label.lower()}: {removed.instances} instance(s) in "
        f"{removed.series} series, {removed.size_bytes} bytes, of study "
        f"{removed.study_instance_uid}"
    )
    if removed.study_removed and object_type != ObjectType.STUDY:
        text += "; the study, left empty, was removed"
    if removed.patient_removed:
        text += "; the patient, left without studies, was removed"
    return text
