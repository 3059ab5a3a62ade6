"""Links the pages share: the viewer, downloads, thumbnails, and query strings that keep the
current search while changing one parameter."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.http import HttpRequest, QueryDict


def viewer_url(study_uid: str, series_uid: str | None = None) -> str:
    """OHIF's basic viewer for a study, or for one series of it (OHIF filters the study's
    series with ``SeriesInstanceUIDs``)."""
    url = f"/viewer/viewer?{urlencode({'StudyInstanceUIDs': study_uid})}"
    if series_uid:
        url += "&" + urlencode({"SeriesInstanceUIDs": series_uid})
    return url


def zip_url(study_uid: str) -> str:
    """The REST API's ZIP download of a study (a DICOM file-set with a DICOMDIR)."""
    return f"/api/studies/{quote(study_uid, safe='')}/zip/"


def series_zip_url(series_uid: str) -> str:
    return f"/api/series/{quote(series_uid, safe='')}/zip/"


def thumbnail_url(study_uid: str, series_uid: str) -> str:
    """The series' DICOMweb thumbnail (a rendered middle image, cached)."""
    return (
        f"/dicomweb/studies/{quote(study_uid, safe='')}/series/{quote(series_uid, safe='')}"
        "/thumbnail"
    )


def with_params(request: HttpRequest, drop: tuple[str, ...] = (), **changes: object) -> str:
    """The current path and query string with ``changes`` applied (``None`` removes a
    parameter) and the ``drop`` parameters removed."""
    params: QueryDict = request.GET.copy()
    for name in drop:
        params.pop(name, None)
    for name, value in changes.items():
        params.pop(name, None)
        if value is not None and value != "":
            params[name] = str(value)
    encoded = params.urlencode()
    return f"{request.path}?{encoded}" if encoded else request.path
