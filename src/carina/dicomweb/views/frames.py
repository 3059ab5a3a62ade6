"""WADO-RS Retrieve Frames (PS3.18 10.4, the Pixel Data resource; 8.7.3.3): frames of an
image instance.

``/studies/{st}/series/{se}/instances/{sop}/frames/{list}``, where the list is one frame
number or several separated by commas (``1``, ``1,3,5``), numbered from 1. A malformed list
(``0``, ``abc``, ``1,,2``) is 400; a frame beyond the instance's Number of Frames, or an
instance without pixel data, is 404: the frame resource does not exist.

Each frame is one part, native (``application/octet-stream;
transfer-syntax=1.2.840.10008.1.2.1``, decompressed if needed) or as stored (``image/jpeg;
transfer-syntax=1.2.840.10008.1.2.4.50``, ``image/dicom-rle; transfer-syntax=…``), as
negotiated by :func:`carina.dicomweb.negotiation.choose_pixels`; OHIF's ``Accept:
multipart/related; type=application/octet-stream; transfer-syntax=*`` (quoted or not) gets
the frames as stored. Frames are read from the stored file without loading it whole: a
native frame is a slice of the Pixel Data value, a compressed one its fragments.

The answer is 200 with a Content-Length; a request for many frames (more than 16 MiB
uncompressed) streams instead, without Content-Length.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from pydicom.uid import UID

from carina.archive.pixels.frames import StoredPixels
from carina.archive.pixels.transcode import VIDEO, ImagePixels, blob_path
from carina.audit.models import ObjectType
from carina.dicomweb import auditing, lookup, multipart
from carina.dicomweb.endpoint import dicomweb_view
from carina.dicomweb.errors import DicomwebError, NotFoundError
from carina.dicomweb.negotiation import Rendition, choose_pixels, wanted

log = logging.getLogger(__name__)

#: Frames are read before answering (with a Content-Length) up to this uncompressed size.
IN_MEMORY_LIMIT = 16 << 20
#: At most this many frame numbers in one request.
MAX_FRAMES = 10_000


def parse_frame_list(text: str) -> list[int]:
    """``"1,3,5"`` → ``[1, 3, 5]``; raise a 400 :class:`DicomwebError` for anything but
    positive integers separated by commas."""
    numbers: list[int] = []
    for piece in text.split(","):
        piece = piece.strip()
        if not piece.isdigit() or not piece.isascii() or int(piece) < 1:
            raise DicomwebError(
                f"{text!r} is not a frame list: give frame numbers from 1, separated by "
                "commas (e.g. frames/1 or frames/1,3,5).",
                400,
            )
        numbers.append(int(piece))
    if len(numbers) > MAX_FRAMES:
        raise DicomwebError(f"Ask for at most {MAX_FRAMES} frames at a time.", 400)
    return numbers


def read_frame(pixels: StoredPixels, rendition: Rendition, index: int) -> bytes:
    """Frame ``index`` (0-based) in ``rendition``: decoded, or as stored."""
    if rendition.decoded:
        return pixels.decoded_frame(index)
    return pixels.stored_frame(index)


def unreadable(sop_uid: str, exc: BaseException) -> DicomwebError:
    log.error("cannot read the pixel data of %s: %s", sop_uid, exc)
    return DicomwebError(
        f"The pixel data of instance {sop_uid} cannot be read ({exc}); the stored object may "
        "be damaged. Ask an administrator to check it.",
        500,
    )


@dicomweb_view(("GET",))
def frames(
    request: HttpRequest,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frames: str,
    **kwargs: Any,
) -> HttpResponseBase:
    """Retrieve Frames: the listed frames of one instance, one part each."""
    numbers = parse_frame_list(frames)
    found = lookup.instance(request.tenant, study_uid, series_uid, sop_uid)  # type: ignore[attr-defined]
    pixels = ImagePixels.from_json(found.metadata or {})
    if pixels is None:
        raise NotFoundError(f"Instance {sop_uid} has no pixel data: it has no frames.")
    count = found.number_of_frames or 1
    missing = [n for n in numbers if n > count]
    if missing:
        raise NotFoundError(
            f"Frame {missing[0]} does not exist: instance {sop_uid} has {count} "
            f"frame{'s' if count != 1 else ''} (numbered from 1)."
        )
    stored = found.transfer_syntax_uid
    if stored in VIDEO:
        raise DicomwebError(
            f"Instance {sop_uid} is a video ({stored}): its frames are one stream. Retrieve its "
            "Pixel Data (bulkdata/7FE00010) or the instance instead.",
            400,
        )
    choice = choose_pixels(
        wanted(request),
        stored,
        UID(stored).is_encapsulated,
        lambda rendition: len(numbers),
        f"the frames of instance {sop_uid}",
    )
    head_only = request.method == "HEAD"
    rendition = choice.rendition

    def audit() -> None:
        if not head_only:
            auditing.record_viewing(
                request,
                "frames",
                study_uid=study_uid,
                object_type=ObjectType.INSTANCE,
                object_uid=sop_uid,
                patient_id=found.series.study.patient.patient_id,
                count=len(numbers),
                detail=f"frame(s) {','.join(map(str, numbers))} as {rendition.content_type}",
            )

    frame_size = (found.rows or 0) * (found.columns or 0) * pixels.samples_per_pixel
    frame_size = frame_size * pixels.bits_allocated // 8
    stack = contextlib.ExitStack()
    parts: list[multipart.Part] | None = None
    try:
        path = stack.enter_context(blob_path(found.blob_key))
        reader = stack.enter_context(StoredPixels(path))
        if frame_size * len(numbers) <= IN_MEMORY_LIMIT or head_only:
            with stack:
                parts = [
                    multipart.Part.of(rendition.content_type, read_frame(reader, rendition, n - 1))
                    for n in numbers
                ]
    except Exception as exc:
        stack.close()
        raise unreadable(sop_uid, exc) from exc
    audit()
    if parts is not None:
        return multipart.in_memory(parts, rendition.media_type, multipart=choice.multipart)
    # Many frames: read each one when its part is written.
    streamed = (
        multipart.Part(rendition.content_type, _one(reader, rendition, n - 1)) for n in numbers
    )
    if not choice.multipart:
        return multipart.single_part(next(streamed), on_close=stack.close)
    return multipart.response(streamed, rendition.media_type, on_close=stack.close)


def _one(pixels: StoredPixels, rendition: Rendition, index: int) -> Iterator[bytes]:
    yield read_frame(pixels, rendition, index)
