"""QIDO-RS: Search Transaction (PS3.18 10.6) for studies, series and instances.

Resources (PS3.18 Table 10.6.1-2): ``/studies``, ``/studies/{study}/series``, ``/series``,
``/studies/{study}/instances``, ``/studies/{study}/series/{series}/instances``,
``/instances``. The answer is a JSON array of DICOM JSON results
(``application/dicom+json``), streamed: rows are read from the database a chunk at a time
and the page (``limit``/``offset``) is cut in SQL. An empty answer is ``200 []``. A study or
series named in the path that the caller's hospital does not have answers 404.

Each search leaves one ``dicomweb.query`` audit event, recorded when the answer has been
sent (or refused), with the number of results.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from carina.archive.query import QueryError, run
from carina.archive.query.levels import Level
from carina.audit.models import Action, ObjectType, Outcome
from carina.dicomweb import auditing, lookup
from carina.dicomweb.endpoint import dicomweb_view
from carina.dicomweb.errors import DicomwebError
from carina.dicomweb.metadata_json import DICOM_JSON, json_array, require_json, studies_url
from carina.dicomweb.search import (
    Renderer,
    Search,
    has_more,
    more_results_warning,
    parse_search,
)

log = logging.getLogger(__name__)

OBJECT_TYPES = {
    Level.STUDY: ObjectType.STUDY,
    Level.SERIES: ObjectType.SERIES,
    Level.IMAGE: ObjectType.INSTANCE,
}
#: Search results may be stored only by the user's own browser, and must be revalidated.
CACHE_CONTROL = "private, no-cache"


@dicomweb_view(("GET",))
def studies(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """Search for Studies: ``GET /dicomweb/studies?{query}``."""
    return _search(request, Level.STUDY)


@dicomweb_view(("GET",))
def series(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """Search for Series: ``GET /dicomweb/series`` or ``/dicomweb/studies/{study}/series``."""
    return _search(request, Level.SERIES, study_uid=kwargs.get("study_uid"))


@dicomweb_view(("GET",))
def instances(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """Search for Instances: ``/dicomweb/instances``, ``/dicomweb/studies/{study}/instances``
    or ``/dicomweb/studies/{study}/series/{series}/instances``."""
    return _search(
        request,
        Level.IMAGE,
        study_uid=kwargs.get("study_uid"),
        series_uid=kwargs.get("series_uid"),
    )


def _search(
    request: HttpRequest,
    level: Level,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> HttpResponseBase:
    hospital = request.tenant  # type: ignore[attr-defined]
    search: Search | None = None
    try:
        require_json(request)
        search = parse_search(level, request.GET, study_uid=study_uid, series_uid=series_uid)
        if series_uid is not None:
            lookup.series(hospital, study_uid or "", series_uid)
        elif study_uid is not None:
            lookup.study(hospital, study_uid)
        warnings = list(search.warnings)
        if search.capped and has_more(search, hospital):
            warnings.append(more_results_warning(search))
    except (DicomwebError, QueryError) as exc:
        reason = exc.message if isinstance(exc, DicomwebError) else str(exc)
        _record(request, level, study_uid, search, 0, Outcome.FAILURE, reason)
        raise

    headers = {"Cache-Control": CACHE_CONTROL}
    if warnings:
        headers["Warning"] = ", ".join(f'299 carina "{w}"' for w in warnings)
    if request.method == "HEAD":
        return HttpResponse(content_type=DICOM_JSON, headers=headers)

    render = Renderer(search, studies_url())
    found = search

    def finished(count: int, complete: bool) -> None:
        outcome = Outcome.SUCCESS if complete else Outcome.PARTIAL
        note = "" if complete else "the answer was cut short (client gone or read failed)"
        _record(request, level, study_uid, found, count, outcome, note)

    body = json_array((render(m) for m in run(search.spec, hospital)), finished=finished)
    return StreamingHttpResponse(body, content_type=DICOM_JSON, headers=headers)


def _record(
    request: HttpRequest,
    level: Level,
    study_uid: str | None,
    search: Search | None,
    count: int,
    outcome: Outcome,
    note: str,
) -> None:
    """One ``dicomweb.query`` event: the request (path and decoded query string), the
    number of results, the study of the path and the Patient ID the query names, if any."""
    query = unquote_plus(request.META.get("QUERY_STRING", ""))
    detail = f"{request.method} {request.path}" + (f"?{query}" if query else "")
    if note:
        detail += f" — {note}"
    auditing.record(
        request,
        Action.WEB_QUERY,
        object_type=OBJECT_TYPES[level],
        object_uid=study_uid or "",
        patient_id=search.patient_id if search is not None else "",
        count=count,
        outcome=outcome,
        detail=detail,
    )
