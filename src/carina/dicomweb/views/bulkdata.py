"""WADO-RS Retrieve Bulkdata (PS3.18 10.4.1.1.5, 8.7.3.3): one bulk data value of an
instance, at the BulkDataURI its metadata gives.

``/studies/{st}/series/{se}/instances/{sop}/bulkdata/{tag path}``, where the tag path is the
one ingest wrote into the instance's DICOM JSON (``7FE00010``, ``00420011``, or
``00540016/0/00181072`` inside the first item of a sequence;
:func:`carina.archive.ingest.parse.dataset_to_json`). A path the metadata does not name as
bulk data is 404.

* A value other than top-level pixel data is ``application/octet-stream``, in little endian
  byte order (PS3.18 8.7.3.3.1): a single part when the client accepts it (``*/*``, no
  Accept, or ``application/octet-stream`` — OHIF's ``singlepart: 'bulkdata'`` does a plain
  GET), else ``multipart/related; type="application/octet-stream"`` with one part.
* Pixel Data (``7FE00010``, also Float/Double Float Pixel Data) is negotiated like frames
  (:func:`carina.dicomweb.negotiation.choose_pixels`): *native*, the whole value
  uncompressed in little endian byte order (all frames, decompressed if stored compressed),
  in one part; or *as stored*, the compressed bitstream of each frame, one part per frame
  ("compressed multi-frame image pixel data is encoded as individual frames", PS3.18
  8.7.3.3.2), or the whole stream of a video (``video/mp4``, ``video/mpeg``) in one part.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from pydicom.uid import UID

from carina.archive.pixels.frames import (
    PIXEL_TAGS,
    BulkDataNotFoundError,
    StoredPixels,
    bulk_value,
    parse_tag_path,
)
from carina.archive.pixels.transcode import VIDEO, blob_path
from carina.audit.models import ObjectType
from carina.dicomweb import lookup, multipart
from carina.dicomweb.endpoint import dicomweb_view
from carina.dicomweb.errors import DicomwebError, NotFoundError
from carina.dicomweb.negotiation import (
    OCTET_STREAM,
    PixelChoice,
    Rendition,
    choose_octets,
    choose_pixels,
    wanted,
)
from carina.dicomweb.views.frames import unreadable
from carina.dicomweb.views.retrieve import record


def announced(metadata: Mapping[str, Any], tag_path: list[int]) -> bool:
    """Whether the instance's DICOM JSON gives a BulkDataURI at ``tag_path``."""
    node: Any = metadata
    for position in range(0, len(tag_path) - 1, 2):
        element = node.get(f"{tag_path[position]:08X}") if isinstance(node, Mapping) else None
        items = (element or {}).get("Value") if isinstance(element, Mapping) else None
        index = tag_path[position + 1]
        if not isinstance(items, list) or index >= len(items):
            return False
        node = items[index]
    element = node.get(f"{tag_path[-1]:08X}") if isinstance(node, Mapping) else None
    return isinstance(element, Mapping) and "BulkDataURI" in element


@dicomweb_view(("GET",))
def bulkdata(
    request: HttpRequest,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    path: str,
    **kwargs: Any,
) -> HttpResponseBase:
    """Retrieve Bulkdata: the value at ``path`` in one instance."""
    found = lookup.instance(request.tenant, study_uid, series_uid, sop_uid)  # type: ignore[attr-defined]
    not_found = NotFoundError(
        f"Instance {sop_uid} has no bulk data at {path!r}; use the BulkDataURI values of its "
        "metadata."
    )
    try:
        tag_path = parse_tag_path(path)
    except BulkDataNotFoundError:
        raise not_found from None
    if not announced(found.metadata or {}, tag_path):
        raise not_found
    head_only = request.method == "HEAD"
    stack = contextlib.ExitStack()
    try:
        file = stack.enter_context(blob_path(found.blob_key))
        if len(tag_path) == 1 and tag_path[0] in PIXEL_TAGS:
            pixels = stack.enter_context(StoredPixels(file))
            choice = _pixel_choice(request, found.transfer_syntax_uid, pixels, sop_uid)
            parts = _pixel_parts(pixels, choice.rendition)
            description = choice.rendition.content_type
        else:
            choice = choose_octets(wanted(request))
            value = bulk_value(file, tag_path)
            parts = [multipart.Part(OCTET_STREAM, value.chunks, value.length)]
            description = OCTET_STREAM
    except BulkDataNotFoundError:
        stack.close()
        raise not_found from None
    except DicomwebError:
        stack.close()
        raise
    except Exception as exc:
        stack.close()
        raise unreadable(sop_uid, exc) from exc
    if not head_only:
        record(
            request,
            ObjectType.INSTANCE,
            sop_uid,
            study_uid,
            1,
            f"bulk data {path} as {description}",
        )
    if not choice.multipart:
        return multipart.single_part(parts[0], head_only=head_only, on_close=stack.close)
    return multipart.response(
        parts, choice.rendition.media_type, head_only=head_only, on_close=stack.close
    )


def _pixel_choice(
    request: HttpRequest, stored: str, pixels: StoredPixels, sop_uid: str
) -> PixelChoice:
    def parts(rendition: Rendition) -> int:
        if rendition.native or stored in VIDEO:
            return 1
        return pixels.number_of_frames

    return choose_pixels(
        wanted(request),
        stored,
        UID(stored).is_encapsulated,
        parts,
        f"the pixel data of instance {sop_uid}",
    )


def _pixel_parts(pixels: StoredPixels, rendition: Rendition) -> list[multipart.Part]:
    """The parts of the Pixel Data value in ``rendition`` (see the module docstring)."""
    if rendition.native:
        frame_length = pixels.frame_length
        if not rendition.decoded:
            element = pixels.element
            length = element.length if element is not None else None
            return [multipart.Part(rendition.content_type, pixels.native_value(), length)]
        length = frame_length * pixels.number_of_frames if frame_length is not None else None
        return [multipart.Part(rendition.content_type, pixels.decoded_frames(), length)]
    if pixels.is_video:
        return [multipart.Part(rendition.content_type, pixels.video_stream())]
    frames = pixels.stored_frames()
    return [
        multipart.Part(rendition.content_type, _next_of(frames))
        for _ in range(pixels.number_of_frames)
    ]


def _next_of(frames: Iterator[bytes]) -> Iterator[bytes]:
    """One part's content: the next frame of ``frames`` (read when the part is written)."""
    yield next(frames)
