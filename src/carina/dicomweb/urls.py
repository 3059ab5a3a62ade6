"""DICOMweb routes under ``/dicomweb`` (PS3.18 10.4 WADO-RS, 10.5 STOW-RS, 10.6 QIDO-RS).

One path may serve several methods (``/studies``: GET searches, POST stores); each method
has its own view. Paths are given with and without a trailing slash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import URLPattern, re_path
from django.views.decorators.csrf import csrf_exempt

from carina.dicomweb.errors import error_response
from carina.dicomweb.views import bulkdata, delete, frames, metadata, qido, rendered, retrieve, stow

app_name = "dicomweb"

View = Callable[..., HttpResponseBase]

ST = r"studies/(?P<study_uid>[^/]+)"
SE = ST + r"/series/(?P<series_uid>[^/]+)"
IN = SE + r"/instances/(?P<sop_uid>[^/]+)"
FR = IN + r"/frames/(?P<frames>[^/]+)"


def methods(**views: View) -> View:
    """One view for a path that dispatches on the request method."""
    allowed = set(views) | ({"HEAD"} if "GET" in views else set())

    @csrf_exempt
    def dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        method = request.method or "GET"
        view = views.get("GET" if method == "HEAD" else method)
        if view is None:
            response = error_response(
                405, f"{method} is not supported here; use {', '.join(sorted(allowed))}."
            )
            response["Allow"] = ", ".join(sorted(allowed))
            return response
        return view(request, *args, **kwargs)

    return dispatch


def route(pattern: str, view: View, name: str) -> URLPattern:
    return re_path(rf"^{pattern}/?$", view, name=name)


urlpatterns = [
    # QIDO-RS (PS3.18 10.6) and STOW-RS (10.5)
    route("studies", methods(GET=qido.studies, POST=stow.store), "studies"),
    route("series", methods(GET=qido.series), "series"),
    route("instances", methods(GET=qido.instances), "instances"),
    route(ST + "/series", methods(GET=qido.series), "study-series"),
    route(ST + "/instances", methods(GET=qido.instances), "study-instances"),
    route(SE + "/instances", methods(GET=qido.instances), "series-instances"),
    # WADO-RS (PS3.18 10.4) and DELETE
    route(
        ST,
        methods(GET=retrieve.study, POST=stow.store, DELETE=delete.study),
        "study",
    ),
    route(SE, methods(GET=retrieve.series, DELETE=delete.series), "series-resource"),
    route(IN, methods(GET=retrieve.instance, DELETE=delete.instance), "instance"),
    route(ST + "/metadata", methods(GET=metadata.study), "study-metadata"),
    route(SE + "/metadata", methods(GET=metadata.series), "series-metadata"),
    route(IN + "/metadata", methods(GET=metadata.instance), "instance-metadata"),
    route(FR, methods(GET=frames.frames), "frames"),
    route(IN + r"/bulkdata/(?P<path>.+?)", methods(GET=bulkdata.bulkdata), "bulkdata"),
    route(ST + "/rendered", methods(GET=rendered.study), "study-rendered"),
    route(SE + "/rendered", methods(GET=rendered.series), "series-rendered"),
    route(IN + "/rendered", methods(GET=rendered.instance), "instance-rendered"),
    route(FR + "/rendered", methods(GET=rendered.frames), "frames-rendered"),
    route(ST + "/thumbnail", methods(GET=rendered.study_thumbnail), "study-thumbnail"),
    route(SE + "/thumbnail", methods(GET=rendered.series_thumbnail), "series-thumbnail"),
    route(IN + "/thumbnail", methods(GET=rendered.instance_thumbnail), "instance-thumbnail"),
    route(FR + "/thumbnail", methods(GET=rendered.frames_thumbnail), "frames-thumbnail"),
]
