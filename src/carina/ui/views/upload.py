"""Upload (``/upload/``): DICOM files, folders and ZIP archives into the current hospital,
through :mod:`carina.api.uploads` (the same uploads, per-object results and background runs
as ``POST /api/uploads/``).

In the browser, ``carina.js`` sends each dropped or chosen file to ``/api/uploads/`` as its
own upload and shows its progress and the outcome of every object in it. Without JavaScript
the form posts here: one upload of every file, then its status page.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render

from carina.accounts.access import Permission
from carina.accounts.models import Role
from carina.api.models import Upload, UploadStatus
from carina.api.uploads import UploadError, create_upload, mark_if_interrupted
from carina.ui.access import page, tenant

RECENT_UPLOADS = 20


def visible_uploads(request: HttpRequest) -> QuerySet[Upload]:
    """The current hospital's uploads the user may see: their own; all for its
    administrators (as ``/api/uploads/``)."""
    uploads = Upload.objects.for_hospital(tenant(request))
    role = getattr(request, "carina_role", None)
    if not request.user.is_superuser and role != Role.HOSPITAL_ADMIN:
        uploads = uploads.filter(user_id=request.user.pk)
    return uploads.order_by("-created_at")


@page(Permission.STORE, methods=("GET", "HEAD", "POST"))
def upload(request: HttpRequest) -> HttpResponseBase:
    error = ""
    if request.method == "POST":
        files = request.FILES.getlist("files")
        try:
            created = create_upload(
                tenant(request),
                request.user,
                files,
                source_ip=str(request.META.get("REMOTE_ADDR", "")),
            )
        except UploadError as exc:
            error = str(exc)
        else:
            return redirect("ui:upload-status", upload_id=created.id)
    context = {"error": error, "recent": list(visible_uploads(request)[:RECENT_UPLOADS])}
    return render(request, "ui/upload/page.html", context, status=400 if error else 200)


def studies_of(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The studies an upload's objects went into, with how many objects of each."""
    found: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for entry in results:
        uid = entry.get("study_instance_uid")
        if uid:
            study = found.setdefault(
                uid, {"uid": uid, "patient_id": entry.get("patient_id", ""), "objects": 0}
            )
            study["objects"] += 1
    return list(found.values())


@page(Permission.STORE)
def upload_status(request: HttpRequest, upload_id: uuid.UUID) -> HttpResponse:
    found = visible_uploads(request).filter(pk=upload_id).first()
    if found is None:
        raise Http404(f"No upload {upload_id} of yours in {tenant(request).name}.")
    found = mark_if_interrupted(found)
    finished = found.status in (UploadStatus.DONE, UploadStatus.FAILED)
    context = {
        "upload": found,
        "finished": finished,
        "studies": studies_of(found.results),
        "results": found.results,
    }
    if request.headers.get("HX-Request") == "true":
        return render(request, "ui/upload/_status.html", context)
    return render(request, "ui/upload/status.html", context)
