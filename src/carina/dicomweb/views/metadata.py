"""WADO-RS: Retrieve Metadata (PS3.18 10.4.1.1.2) of a study, a series or an instance.

``GET /dicomweb/studies/{study}[/series/{series}[/instances/{sop}]]/metadata`` answers a JSON
array with the DICOM JSON of every instance (``application/dicom+json``), in series then
instance order. It is built from what ingest stored (``Instance.metadata``); no file is
opened. Every BulkDataURI points at the instance's bulkdata resource, Pixel Data included
(``{"vr": "OW", "BulkDataURI": …/bulkdata/7FE00010}``).

The answer is streamed (the rows are read a chunk at a time: a study of 2,000 instances is
never one list in memory) and carries a strong ETag computed from index columns only — for a
study or series its row's ``updated_at`` and counts, which every instance added, replaced or
removed changes; for an instance its primary key and SHA-256 — so ``If-None-Match`` is
answered ``304`` without reading any metadata. ``Cache-Control: private, no-cache``: only the
user's browser may keep it, and must revalidate.

Unknown UIDs, and those of another hospital, answer 404. Each request leaves one
``dicomweb.retrieve`` audit event.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotModified,
    StreamingHttpResponse,
)
from django.utils.http import parse_etags

from carina.archive.models import Instance
from carina.audit.models import Action, ObjectType, Outcome
from carina.dicomweb import auditing, lookup
from carina.dicomweb.endpoint import dicomweb_view
from carina.dicomweb.errors import DicomwebError, NotFoundError
from carina.dicomweb.metadata_json import (
    DICOM_JSON,
    json_array,
    require_json,
    studies_url,
    wado_metadata,
)

log = logging.getLogger(__name__)

#: Changes whenever the way metadata is rendered changes, so that no cached copy survives.
FORMAT_VERSION = "carina-metadata-1"
CACHE_CONTROL = "private, no-cache"
#: Instances read from the database at a time.
CHUNK_ROWS = 200


@dicomweb_view(("GET",))
def study(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """Study metadata: every instance of the study."""
    hospital = request.tenant  # type: ignore[attr-defined]
    study_uid = str(kwargs["study_uid"])
    try:
        require_json(request)
        row = lookup.study(hospital, study_uid)
        if row.number_of_instances <= 0:
            raise NotFoundError(f"Study {study_uid} holds no instances.")
    except DicomwebError as exc:
        _record(request, ObjectType.STUDY, study_uid, "", 0, Outcome.FAILURE, exc.message)
        raise
    rows = Instance.objects.for_hospital(hospital).filter(series__study=row)
    tag = _etag("study", row.pk, row.updated_at, row.number_of_series, row.number_of_instances)
    return _respond(
        request,
        rows,
        tag,
        object_type=ObjectType.STUDY,
        object_uid=study_uid,
        patient_id=row.patient.patient_id,
        count=row.number_of_instances,
    )


@dicomweb_view(("GET",))
def series(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """Series metadata: every instance of the series (what OHIF's lazy loader reads)."""
    hospital = request.tenant  # type: ignore[attr-defined]
    study_uid, series_uid = str(kwargs["study_uid"]), str(kwargs["series_uid"])
    try:
        require_json(request)
        row = lookup.series(hospital, study_uid, series_uid)
        if row.number_of_instances <= 0:
            raise NotFoundError(f"Series {series_uid} holds no instances.")
    except DicomwebError as exc:
        _record(request, ObjectType.SERIES, series_uid, "", 0, Outcome.FAILURE, exc.message)
        raise
    rows = Instance.objects.for_hospital(hospital).filter(series=row)
    tag = _etag("series", row.pk, row.updated_at, row.number_of_instances, study_uid)
    return _respond(
        request,
        rows,
        tag,
        object_type=ObjectType.SERIES,
        object_uid=series_uid,
        patient_id=row.study.patient.patient_id,
        count=row.number_of_instances,
    )


@dicomweb_view(("GET",))
def instance(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """Instance metadata: a JSON array of one data set."""
    hospital = request.tenant  # type: ignore[attr-defined]
    study_uid, series_uid = str(kwargs["study_uid"]), str(kwargs["series_uid"])
    sop_uid = str(kwargs["sop_uid"])
    try:
        require_json(request)
        row = lookup.instance(hospital, study_uid, series_uid, sop_uid)
    except DicomwebError as exc:
        _record(request, ObjectType.INSTANCE, sop_uid, "", 0, Outcome.FAILURE, exc.message)
        raise
    rows = Instance.objects.for_hospital(hospital).filter(pk=row.pk)
    tag = _etag("instance", row.pk, row.sha256, study_uid, series_uid)
    return _respond(
        request,
        rows,
        tag,
        object_type=ObjectType.INSTANCE,
        object_uid=sop_uid,
        patient_id=row.series.study.patient.patient_id,
        count=1,
    )


def _etag(*parts: object) -> str:
    """A strong entity tag (RFC 9110 8.8.3) of the answer: it changes whenever the
    instances behind it, or the way Carina renders them, change."""
    text = "|".join(str(p) for p in (FORMAT_VERSION, studies_url(), *parts))
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def _not_modified(request: HttpRequest, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` or is ``*`` (weak comparison, as RFC 9110
    13.1.2 prescribes for If-None-Match)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = parse_etags(header)
    return "*" in tags or etag in {t.removeprefix("W/") for t in tags}


def _respond(
    request: HttpRequest,
    rows: QuerySet[Instance],
    etag: str,
    *,
    object_type: ObjectType,
    object_uid: str,
    patient_id: str,
    count: int,
) -> HttpResponseBase:
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _not_modified(request, etag):
        _record(
            request,
            object_type,
            object_uid,
            patient_id,
            0,
            Outcome.SUCCESS,
            "not modified: the client's copy (If-None-Match) is current",
        )
        response = HttpResponseNotModified()
        for name, value in headers.items():
            response[name] = value
        return response
    if request.method == "HEAD":
        return HttpResponse(content_type=DICOM_JSON, headers=headers)
    _record(request, object_type, object_uid, patient_id, count, Outcome.SUCCESS, "")
    return StreamingHttpResponse(
        json_array(_data_sets(rows)), content_type=DICOM_JSON, headers=headers
    )


def _data_sets(rows: QuerySet[Instance]) -> Iterator[dict[str, Any]]:
    """The WADO-RS metadata of ``rows`` in series then instance order, read ``CHUNK_ROWS``
    at a time."""
    studies = studies_url()
    selected = rows.order_by(
        "series__series_number", "series_id", "instance_number", "pk"
    ).values_list(
        "metadata",
        "series__study__study_instance_uid",
        "series__series_instance_uid",
        "sop_instance_uid",
        "transfer_syntax_uid",
    )
    for metadata, study_uid, series_uid, sop_uid, syntax in selected.iterator(CHUNK_ROWS):
        yield wado_metadata(
            metadata,
            study_uid=study_uid,
            series_uid=series_uid,
            sop_uid=sop_uid,
            transfer_syntax_uid=syntax,
            studies=studies,
        )


def _record(
    request: HttpRequest,
    object_type: ObjectType,
    object_uid: str,
    patient_id: str,
    count: int,
    outcome: Outcome,
    note: str,
) -> None:
    """One ``dicomweb.retrieve`` event for the request."""
    auditing.record(
        request,
        Action.WEB_RETRIEVE,
        object_type=object_type,
        object_uid=object_uid,
        patient_id=patient_id,
        count=count,
        outcome=outcome,
        detail=f"{request.method} {request.path}" + (f" — {note}" if note else ""),
    )
