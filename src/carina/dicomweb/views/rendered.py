"""WADO-RS rendered resources (PS3.18 10.4.1.1.3) and thumbnails (PS3.18 10.4.1.1.4).

``…/rendered`` returns images for people and programs that do not speak DICOM: the study,
series, instance or frames rendered as ``image/jpeg`` (the default) or ``image/png``, with the
rendering parameters of PS3.18 8.3.5.1 — ``window``, ``viewport``, ``quality`` (``annotation``,
``iccprofile`` and ``charset`` are accepted and ignored). ``…/thumbnail`` returns one small
representative image of the resource (OHIF's work list and study browser show these).

Media types (PS3.18 10.4.4): a study or series, several frames, or a whole multi-frame instance
asked for as multipart is answered ``multipart/related; type="image/jpeg"`` (or png), one part
per frame. A single-part type (``image/jpeg``) is only for one image: one frame, a single-frame
instance, or — Carina's choice — the first frame of a multi-frame instance; for a study or
series it is not acceptable and, if nothing else is, the answer is 406.

Rendering and caching live in :mod:`carina.archive.pixels`; this module parses the request,
picks the images, answers (ETag, ``If-None-Match`` → 304) and records one audit event per
request. Details and decisions: docs/dicomweb/rendered.md.
"""

from __future__ import annotations

import functools
import logging
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from carina.archive.models import Instance, Series, Study
from carina.archive.pixels.render import (
    DEFAULT_QUALITY,
    JPEG,
    MAX_VIEWPORT,
    PNG,
    WINDOW_FUNCTIONS,
    NoImageError,
    RenderError,
    Rendering,
    Viewport,
    Window,
    check_frames,
    has_pixels,
)
from carina.archive.pixels.renditions import (
    cache_key,
    encapsulated_document,
    rendition,
    renditions,
)
from carina.audit.models import Action, ObjectType
from carina.dicomweb import auditing, lookup
from carina.dicomweb.endpoint import dicomweb_view
from carina.dicomweb.errors import DicomwebError, NotAcceptableError, NotFoundError
from carina.dicomweb.media import MediaRange, accepted
from carina.tenancy.models import Hospital

log = logging.getLogger(__name__)

#: The thumbnail size when the request gives no ``viewport`` (fit, aspect kept).
THUMBNAIL_VIEWPORT = Viewport(128, 128)
#: Browsers may keep an image this long, then revalidate it with its ETag.
CACHE_CONTROL = "private, max-age=300"
#: Encapsulated Document (0042,0011) and its MIME type (0042,0012), as DICOM JSON keys.
ENCAPSULATED_DOCUMENT = "00420011"
DOCUMENT_MIME_TYPE = "00420012"

# -- Request parameters (PS3.18 8.3.5.1) ----------------------------------------------------


def _single(request: HttpRequest, name: str) -> str | None:
    values = request.GET.getlist(name)
    if len(values) > 1:
        raise DicomwebError(f"{name}: give this parameter once (it was given {len(values)} times).")
    return values[0] if values else None


def parse_window(text: str) -> Window:
    """``window=center,width[,function]`` (PS3.18 8.3.5.1.4)."""
    usage = (
        f"window={text!r}: use window=center,width[,function] with numbers and a function of "
        f"{', '.join(WINDOW_FUNCTIONS)} (default linear), e.g. window=40,400,linear."
    )
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 3):
        raise DicomwebError(usage)
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise DicomwebError(usage) from None
    if not (math.isfinite(center) and math.isfinite(width)):
        raise DicomwebError(usage)
    function = parts[2].lower() if len(parts) == 3 else "linear"
    if function not in WINDOW_FUNCTIONS:
        raise DicomwebError(usage)
    if width <= 0 or (function == "linear" and width < 1):
        raise DicomwebError(
            f"window={text!r}: the width must be at least 1 (linear) or greater than 0 "
            "(linear-exact, sigmoid)."
        )
    return Window(center, width, function)


def parse_viewport(text: str) -> Viewport:
    """``viewport=vw,vh[,sx,sy,sw,sh]`` (PS3.18 8.3.5.1.3); an empty sx/sy is 0 and an empty
    sw/sh extends the region to the image's edge."""
    usage = (
        f"viewport={text!r}: use viewport=vw,vh (the box to fit, 1…{MAX_VIEWPORT} pixels) or "
        "viewport=vw,vh,sx,sy,sw,sh (with a source region), e.g. viewport=256,256."
    )
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (2, 6):
        raise DicomwebError(usage)
    try:
        numbers = [int(part) if part else None for part in parts]
    except ValueError:
        raise DicomwebError(usage) from None
    width, height = numbers[0], numbers[1]
    if (
        width is None
        or height is None
        or not (1 <= width <= MAX_VIEWPORT and 1 <= height <= MAX_VIEWPORT)
    ):
        raise DicomwebError(usage)
    if len(numbers) == 2:
        return Viewport(width, height)
    sx, sy, sw, sh = numbers[2:]
    if (sx or 0) < 0 or (sy or 0) < 0 or sw == 0 or sh == 0:
        raise DicomwebError(
            f"viewport={text!r}: sx and sy must be 0 or more, and sw and sh must not be 0 "
            "(negative values flip the region)."
        )
    return Viewport(width, height, sx or 0, sy or 0, sw, sh)


def parse_quality(text: str) -> int:
    """``quality=1…100`` (PS3.18 8.3.5.1.2)."""
    try:
        quality = int(text)
    except ValueError:
        quality = 0
    if not 1 <= quality <= 100:
        raise DicomwebError(f"quality={text!r}: use a whole number from 1 to 100.")
    return quality


def parse_frame_list(text: str) -> list[int]:
    """The ``{frames}`` path segment: frame numbers from 1, separated by commas."""
    try:
        frames = [int(part) for part in text.split(",")]
    except ValueError:
        frames = []
    if not frames or any(frame < 1 for frame in frames):
        raise DicomwebError(
            f"frames {text!r}: give frame numbers from 1, separated by commas (e.g. 1,3,5)."
        )
    return frames


def _rendering(request: HttpRequest, media_type: str, *, thumbnail: bool) -> Rendering:
    """The rendering a request asks for. A thumbnail honours ``viewport`` only."""
    viewport_text = _single(request, "viewport")
    viewport = parse_viewport(viewport_text) if viewport_text is not None else None
    if thumbnail:
        return Rendering(media_type, viewport=viewport or THUMBNAIL_VIEWPORT)
    window_text = _single(request, "window")
    quality_text = _single(request, "quality")
    return Rendering(
        media_type,
        window=parse_window(window_text) if window_text is not None else None,
        viewport=viewport,
        quality=parse_quality(quality_text) if quality_text is not None else DEFAULT_QUALITY,
    )


# -- Content negotiation (PS3.18 8.7.4, 10.4.4) ---------------------------------------------


@dataclass(frozen=True)
class Choice:
    media_type: str
    multipart: bool


def _image_type(media_range: MediaRange) -> str | None:
    for media_type in (JPEG, PNG):
        if media_range.matches(media_type):
            return media_type
    return None


def negotiate(request: HttpRequest, *, single: bool, multipart: bool) -> Choice:
    """The response media type: the first acceptable range, in the client's order of
    preference, that Carina can produce for this resource (``single``: one image may be
    answered single part; ``multipart``: several images may be answered multipart)."""
    ranges = accepted(request)
    for media_range in ranges:
        if media_range.is_multipart:
            part = _image_type(MediaRange(media_range.part_type or JPEG))
            if part is not None and multipart:
                return Choice(part, True)
            continue
        image = _image_type(media_range)
        if image is None:
            continue
        if single:
            return Choice(image, False)
        if multipart and media_range.media_type in ("*/*", "*"):
            return Choice(JPEG, True)
    asked = ", ".join(
        r.media_type + (f"; type={r.part_type}" if r.is_multipart else "") for r in ranges
    )
    if single:
        offer = "image/jpeg (the default) or image/png"
        if multipart:
            offer += ', or multipart/related; type="image/jpeg" (or "image/png")'
    else:
        offer = (
            'multipart/related; type="image/jpeg" (or "image/png"): several images cannot '
            "be sent as one single-part image (PS3.18 10.4.4)"
        )
    raise NotAcceptableError(f"Cannot answer with {asked}. This resource is rendered as {offer}.")


# -- Choosing images -------------------------------------------------------------------------

#: Series by SeriesNumber, images by InstanceNumber; missing numbers last on every database.
IMAGE_ORDER = (
    F("series__series_number").asc(nulls_last=True),
    "series_id",
    F("instance_number").asc(nulls_last=True),
    "pk",
)


def _images(hospital: Hospital) -> QuerySet[Instance]:
    """Instances with pixel data (Rows and Columns are indexed only for images)."""
    return (
        Instance.objects.for_hospital(hospital)
        .filter(rows__isnull=False, columns__isnull=False)
        .defer("metadata")
    )


def _frames_of(instance: Instance) -> int:
    return int(instance.number_of_frames or 1)


def _require_image(instance: Instance) -> None:
    if instance.rows is None or not has_pixels(instance.metadata):
        raise NoImageError(
            f"Instance {instance.sop_instance_uid} has no image (SOP class "
            f"{instance.sop_class_uid}): there is nothing to render."
        )


def _middle_of_series(hospital: Hospital, series: Series) -> Instance | None:
    """The middle image of the series by InstanceNumber (PS3.18 10.4.1.1.4 leaves the choice
    of a representative image to the origin server)."""
    images = _images(hospital).filter(series=series).order_by(*IMAGE_ORDER[2:])
    count = images.count()
    if count == 0:
        return None
    return images[(count - 1) // 2]


def _representative_series(hospital: Hospital, study: Study) -> Series | None:
    """The study's first series (by SeriesNumber) that holds an image."""
    first = (
        _images(hospital)
        .filter(series__study=study)
        .order_by(*IMAGE_ORDER[:2])
        .values_list("series_id", flat=True)
        .first()
    )
    return Series.objects.for_hospital(hospital).filter(pk=first).first() if first else None


def _middle_frame(instance: Instance) -> int:
    return (_frames_of(instance) + 1) // 2


# -- Answers ---------------------------------------------------------------------------------


def _audit(
    request: HttpRequest,
    *,
    object_type: str,
    uid: str,
    study: Study,
    count: int,
    detail: str,
    thumbnail: bool = False,
) -> None:
    """The WEB_RETRIEVE event of the request: rendered images and thumbnails show patient
    data (docs/audit.md). Thumbnails are image fetches, coalesced per study
    (:func:`carina.dicomweb.auditing.record_viewing`)."""

    def patient_id() -> str:
        return (
            Study.objects.for_hospital(request.tenant)  # type: ignore[attr-defined]
            .filter(pk=study.pk)
            .values_list("patient__patient_id", flat=True)
            .first()
        ) or ""

    if thumbnail:
        auditing.record_viewing(
            request,
            "thumbnail",
            study_uid=study.study_instance_uid,
            object_type=object_type,
            object_uid=uid,
            patient_id=patient_id,
            count=count,
            detail=detail,
        )
        return
    auditing.record(
        request,
        Action.WEB_RETRIEVE,
        object_type=object_type,
        object_uid=uid,
        patient_id=patient_id(),
        count=count,
        detail=detail,
    )


def _etag(instance: Instance, frame: int, rendering: Rendering) -> str:
    return f'"{cache_key(instance, frame, rendering)[:40]}"'


def _not_modified(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def _image_response(
    request: HttpRequest,
    instance: Instance,
    frame: int,
    rendering: Rendering,
    *,
    cached: bool,
) -> HttpResponse:
    """One image, with an ETag (and 304 when the client already holds it)."""
    etag = _etag(instance, frame, rendering)
    if _not_modified(request, etag):
        response = HttpResponse(status=304)
    else:
        data = rendition(instance, frame, rendering, cached=cached)
        response = HttpResponse(data, content_type=rendering.media_type)
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    return response


def _wado_base(request: HttpRequest) -> str:
    path = request.path
    return path[: path.index("/studies/")] if "/studies/" in path else ""


def _multipart_response(
    request: HttpRequest, items: list[tuple[Instance, list[int]]], rendering: Rendering
) -> HttpResponseBase:
    """``multipart/related; type=<image>`` with one rendered frame per part, streamed one
    frame at a time. The first part is rendered before answering, so that a request that
    cannot be rendered gets its 4xx; a later frame that fails is left out (and logged)."""
    boundary = uuid.uuid4().hex
    base = _wado_base(request)

    def part(instance: Instance, frame: int, data: bytes) -> bytes:
        location = (
            f"{base}/studies/{instance.series.study.study_instance_uid}/series/"
            f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"
            f"/frames/{frame}/rendered"
        )
        head = (
            f"--{boundary}\r\nContent-Type: {rendering.media_type}\r\n"
            f"Content-Location: {location}\r\n\r\n"
        )
        return head.encode() + data + b"\r\n"

    def frames_of(instance: Instance, frames: list[int]) -> Iterator[tuple[int, bytes]]:
        yield from zip(frames, renditions(instance, frames, rendering), strict=False)

    first_instance, first_frames = items[0]
    first_iter = frames_of(first_instance, first_frames)
    first_frame, first_data = next(first_iter)

    def stream() -> Iterator[bytes]:
        yield part(first_instance, first_frame, first_data)
        pending: list[tuple[Instance, Iterator[tuple[int, bytes]]]] = [(first_instance, first_iter)]
        pending += [(inst, frames_of(inst, frames)) for inst, frames in items[1:]]
        for instance, frames in pending:
            try:
                for frame, data in frames:
                    yield part(instance, frame, data)
            except RenderError as exc:
                log.warning(
                    "rendered: instance %s left out of a multipart answer: %s",
                    instance.sop_instance_uid,
                    exc.message,
                )
        yield f"--{boundary}--".encode()

    response = StreamingHttpResponse(
        stream(),
        content_type=f'multipart/related; type="{rendering.media_type}"; boundary={boundary}',
    )
    response["Cache-Control"] = "private, no-cache"
    return response


def _render_errors(view: Any) -> Any:
    """Answer :class:`RenderError` as a JSON error with its status."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, **kwargs)
        except RenderError as exc:
            raise DicomwebError(exc.message, exc.http_status) from exc

    return wrapper


def _many(
    request: HttpRequest,
    instances: list[Instance],
    *,
    object_type: str,
    uid: str,
    study: Study,
    what: str,
) -> HttpResponseBase:
    """A rendered study or series: every frame of every image, multipart."""
    choice = negotiate(request, single=False, multipart=True)
    rendering = _rendering(request, choice.media_type, thumbnail=False)
    if not instances:
        raise NotFoundError(f"{what} has no images to render.")
    items = [(inst, list(range(1, _frames_of(inst) + 1))) for inst in instances]
    response = _multipart_response(request, items, rendering)
    frames = sum(len(frames) for _, frames in items)
    _audit(
        request,
        object_type=object_type,
        uid=uid,
        study=study,
        count=len(instances),
        detail=f"rendered {what}: {frames} frame(s) as {choice.media_type}",
    )
    return response


def _ordered_images(hospital: Hospital, **filters: Any) -> list[Instance]:
    return list(
        _images(hospital).filter(**filters).select_related("series__study").order_by(*IMAGE_ORDER)
    )


# -- Rendered resources (PS3.18 10.4.1.1.3) --------------------------------------------------


@dicomweb_view(("GET",))
@_render_errors
def study(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """``/studies/{study}/rendered``: every image of the study, multipart."""
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    found = lookup.study(hospital, kwargs["study_uid"])
    return _many(
        request,
        _ordered_images(hospital, series__study=found),
        object_type=ObjectType.STUDY,
        uid=found.study_instance_uid,
        study=found,
        what=f"Study {found.study_instance_uid}",
    )


@dicomweb_view(("GET",))
@_render_errors
def series(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """``/studies/{study}/series/{series}/rendered``: every image of the series, multipart."""
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    found = lookup.series(hospital, kwargs["study_uid"], kwargs["series_uid"])
    return _many(
        request,
        _ordered_images(hospital, series=found),
        object_type=ObjectType.SERIES,
        uid=found.series_instance_uid,
        study=found.study,
        what=f"Series {found.series_instance_uid}",
    )


@dicomweb_view(("GET",))
@_render_errors
def instance(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """``…/instances/{sop}/rendered``: one image (a multi-frame instance's first frame), or
    every frame when asked for multipart; an Encapsulated Document (PDF, CDA, …) as its own
    media type."""
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    found = lookup.instance(hospital, kwargs["study_uid"], kwargs["series_uid"], kwargs["sop_uid"])
    if not has_pixels(found.metadata) and ENCAPSULATED_DOCUMENT in found.metadata:
        return _document(request, found)
    choice = negotiate(request, single=True, multipart=True)
    rendering = _rendering(request, choice.media_type, thumbnail=False)
    _require_image(found)
    frames = list(range(1, _frames_of(found) + 1)) if choice.multipart else [1]
    response = (
        _multipart_response(request, [(found, frames)], rendering)
        if choice.multipart
        else _image_response(request, found, 1, rendering, cached=rendering.is_cacheable)
    )
    _audit(
        request,
        object_type=ObjectType.INSTANCE,
        uid=found.sop_instance_uid,
        study=found.series.study,
        count=1,
        detail=f"rendered instance: {len(frames)} frame(s) as {choice.media_type}",
    )
    return response


def _document(request: HttpRequest, found: Instance) -> HttpResponseBase:
    """An Encapsulated Document rendered as what it is (PS3.18 8.7.4: the Text category;
    PS3.3 C.24.2: MIME Type of Encapsulated Document (0042,0012)). OHIF shows PDFs from here."""
    element = found.metadata.get(DOCUMENT_MIME_TYPE) or {}
    media_type = str((element.get("Value") or ["application/pdf"])[0]).strip().lower()
    ranges = accepted(request)
    if not any(r.matches(media_type) for r in ranges if not r.is_multipart):
        asked = ", ".join(r.media_type for r in ranges)
        raise NotAcceptableError(
            f"Cannot answer with {asked}: instance {found.sop_instance_uid} is an encapsulated "
            f"document rendered as {media_type}."
        )
    response = HttpResponse(encapsulated_document(found), content_type=media_type)
    response["Cache-Control"] = CACHE_CONTROL
    _audit(
        request,
        object_type=ObjectType.INSTANCE,
        uid=found.sop_instance_uid,
        study=found.series.study,
        count=1,
        detail=f"rendered document as {media_type}",
    )
    return response


@dicomweb_view(("GET",))
@_render_errors
def frames(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """``…/instances/{sop}/frames/{list}/rendered``: one frame as an image, several as
    multipart."""
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    wanted = parse_frame_list(kwargs["frames"])
    choice = negotiate(request, single=len(wanted) == 1, multipart=True)
    rendering = _rendering(request, choice.media_type, thumbnail=False)
    found = lookup.instance(hospital, kwargs["study_uid"], kwargs["series_uid"], kwargs["sop_uid"])
    _require_image(found)
    check_frames(wanted, _frames_of(found))
    response = (
        _multipart_response(request, [(found, wanted)], rendering)
        if choice.multipart
        else _image_response(request, found, wanted[0], rendering, cached=rendering.is_cacheable)
    )
    _audit(
        request,
        object_type=ObjectType.INSTANCE,
        uid=found.sop_instance_uid,
        study=found.series.study,
        count=1,
        detail=f"rendered frames {kwargs['frames']} as {choice.media_type}",
    )
    return response


# -- Thumbnails (PS3.18 10.4.1.1.4) ---------------------------------------------------------


def _thumbnail(
    request: HttpRequest,
    image: Instance,
    frame: int,
    *,
    object_type: str,
    uid: str,
    study: Study,
) -> HttpResponseBase:
    choice = negotiate(request, single=True, multipart=False)
    rendering = _rendering(request, choice.media_type, thumbnail=True)
    response = _image_response(request, image, frame, rendering, cached=True)
    _audit(
        request,
        object_type=object_type,
        uid=uid,
        study=study,
        count=1,
        detail=f"thumbnail of {image.sop_instance_uid} frame {frame}"
        + (" (not modified)" if response.status_code == 304 else ""),
        thumbnail=True,
    )
    return response


@dicomweb_view(("GET",))
@_render_errors
def study_thumbnail(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """The representative image of the study's first series that has images."""
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    negotiate(request, single=True, multipart=False)
    found = lookup.study(hospital, kwargs["study_uid"])
    chosen = _representative_series(hospital, found)
    image = _middle_of_series(hospital, chosen) if chosen is not None else None
    if image is None:
        raise NotFoundError(f"Study {found.study_instance_uid} has no image to show.")
    return _thumbnail(
        request,
        image,
        _middle_frame(image),
        object_type=ObjectType.STUDY,
        uid=found.study_instance_uid,
        study=found,
    )


@dicomweb_view(("GET",))
@_render_errors
def series_thumbnail(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """The middle image of the series by InstanceNumber."""
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    negotiate(request, single=True, multipart=False)
    found = lookup.series(hospital, kwargs["study_uid"], kwargs["series_uid"])
    image = _middle_of_series(hospital, found)
    if image is None:
        raise NotFoundError(
            f"Series {found.series_instance_uid} ({found.modality or 'no modality'}) has no "
            "image to show."
        )
    return _thumbnail(
        request,
        image,
        _middle_frame(image),
        object_type=ObjectType.SERIES,
        uid=found.series_instance_uid,
        study=found.study,
    )


@dicomweb_view(("GET",))
@_render_errors
def instance_thumbnail(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """The instance's middle frame (its only frame when single-frame)."""
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    negotiate(request, single=True, multipart=False)
    found = lookup.instance(hospital, kwargs["study_uid"], kwargs["series_uid"], kwargs["sop_uid"])
    _require_image(found)
    return _thumbnail(
        request,
        found,
        _middle_frame(found),
        object_type=ObjectType.INSTANCE,
        uid=found.sop_instance_uid,
        study=found.series.study,
    )


@dicomweb_view(("GET",))
@_render_errors
def frames_thumbnail(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """The first frame of the list."""
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    wanted = parse_frame_list(kwargs["frames"])
    negotiate(request, single=True, multipart=False)
    found = lookup.instance(hospital, kwargs["study_uid"], kwargs["series_uid"], kwargs["sop_uid"])
    _require_image(found)
    check_frames(wanted, _frames_of(found))
    return _thumbnail(
        request,
        found,
        wanted[0],
        object_type=ObjectType.INSTANCE,
        uid=found.sop_instance_uid,
        study=found.series.study,
    )


__all__ = [
    "frames",
    "frames_thumbnail",
    "instance",
    "instance_thumbnail",
    "parse_frame_list",
    "parse_quality",
    "parse_viewport",
    "parse_window",
    "series",
    "series_thumbnail",
    "study",
    "study_thumbnail",
]
