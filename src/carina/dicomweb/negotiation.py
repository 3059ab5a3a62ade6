"""Choosing the media type and transfer syntax of a WADO-RS response (PS3.18 8.7.3–8.7.8).

The client's Accept header (or ``accept`` query parameter) lists *acceptable media types*
(PS3.18 8.7.5), most preferred first; each may name a transfer syntax (8.7.3.5.2): a UID,
``*`` ("any: send it as you have it"), or nothing (the default of the media type, 8.7.3.4).
For each part of the response Carina takes the first acceptable media type it can produce
(8.7.8: *Selected Media Type* and *Selected Transfer Syntax*; parts may differ), else
answers 406 naming what it can produce.

Instances (``application/dicom``, PS3.18 Table 8.7.3-2):

* ``transfer-syntax=*``: as stored, byte for byte — except Implicit VR Little Endian and
  Explicit VR Big Endian, which "shall not be used with Web Services" (8.7.3): those are
  sent in Explicit VR Little Endian;
* no transfer syntax: Explicit VR Little Endian (8.7.3.4), decompressing if needed — except
  an object stored with lossy compression (JPEG baseline, JPEG 2000 lossy, video…), which is
  sent as stored, as 8.7.3.4 permits, and an object whose compression pydicom cannot decode;
* a transfer syntax UID: that syntax when :func:`carina.archive.pixels.transcode.can_convert`
  says so (any decodable object to Explicit VR Little Endian or Deflated Explicit VR Little
  Endian; an image to RLE Lossless or JPEG 2000 Lossless), else the next acceptable type.

Frames and pixel bulk data (PS3.18 8.7.3.3, Tables 8.7.3-4 and 8.7.3-5) come in two forms:
*native* — uncompressed little endian bytes, ``application/octet-stream;
transfer-syntax=1.2.840.10008.1.2.1`` — or *as stored* — the compressed bitstream with its
image media type, e.g. ``image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50``.
``transfer-syntax=*`` means as stored (what OHIF asks for, with
``type=application/octet-stream``); no transfer syntax means native, except for lossy
compression, sent as stored; an image media type means as stored when the stored syntax
belongs to it. Carina does not compress frames into another syntax.

Packaging: ``multipart/related; type=…`` gives a multipart payload; a single-part media type
(``application/dicom``, ``application/octet-stream``, ``image/jpeg``) is honoured when the
response has exactly one part; ``*/*`` gives a single part when there is one, else multipart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.http import HttpRequest
from pydicom.uid import UID

from carina.archive.pixels.transcode import (
    ImagePixels,
    can_convert,
    can_decode,
    is_lossy,
    producible,
)
from carina.dicomweb.errors import NotAcceptableError
from carina.dicomweb.media import accepted

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
#: PS3.18 8.7.3: "shall not be used with Web Services".
NOT_FOR_WEB = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.2"})
DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"

#: Media types of compressed bulk data (PS3.18 Table 8.7.3-5).
COMPRESSED_MEDIA_TYPES: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.4.110": "image/jxl",
    "1.2.840.10008.1.2.4.111": "image/jxl",
    "1.2.840.10008.1.2.4.112": "image/jxl",
    "1.2.840.10008.1.2.4.100": "video/mpeg",
    "1.2.840.10008.1.2.4.100.1": "video/mpeg",
    "1.2.840.10008.1.2.4.101": "video/mpeg",
    "1.2.840.10008.1.2.4.101.1": "video/mpeg",
    **{
        f"1.2.840.10008.1.2.4.{n}{suffix}": "video/mp4"
        for n in range(102, 107)
        for suffix in ("", ".1")
    },
    "1.2.840.10008.1.2.4.107": "video/H265",
    "1.2.840.10008.1.2.4.108": "video/H265",
}
#: Names clients use for the same media types (dicomweb-client, cornerstone).
ALIASES = {
    "image/x-dicom-rle": "image/dicom-rle",
    "image/x-jls": "image/jls",
    "video/mpeg2": "video/mpeg",
    "video/h265": "video/H265",
}
_WILDCARDS = frozenset({"*/*", "*", ""})


def compressed_media_type(syntax: str) -> str | None:
    """The media type of bulk data compressed in ``syntax`` (Table 8.7.3-5)."""
    return COMPRESSED_MEDIA_TYPES.get(syntax)


def syntax_name(syntax: str) -> str:
    name = UID(syntax).name
    return f"{syntax} ({name})" if name and name != syntax else syntax


@dataclass(frozen=True)
class Wanted:
    """One acceptable media type: its packaging (multipart, single part, or either for
    ``*/*``), the media type of its parts (maybe a wildcard) and the transfer syntax it
    names (None: not given; ``*``: any)."""

    multipart: bool | None
    media_type: str
    transfer_syntax: str | None

    def admits(self, media_type: str) -> bool:
        mine = ALIASES.get(self.media_type, self.media_type)
        if mine in _WILDCARDS:
            return True
        if mine.endswith("/*"):
            return media_type.split("/")[0] == mine[:-2]
        return mine.lower() == media_type.lower()

    def packs(self, parts: int) -> bool | None:
        """Whether a response of ``parts`` parts is multipart (True) or single part (False)
        under this media type; None when it cannot be packaged so."""
        if self.multipart is None:
            return parts != 1
        if self.multipart:
            return True
        return False if parts == 1 else None


def wanted(request: HttpRequest) -> list[Wanted]:
    """The acceptable media types of ``request``, most preferred first (PS3.18 8.7.5)."""
    result: list[Wanted] = []
    for media in accepted(request):
        syntax = media.transfer_syntax
        syntax = syntax.strip() if syntax is not None else None
        if media.media_type in ("*/*", "*"):
            result.append(Wanted(None, "*/*", syntax))
        elif media.media_type in ("multipart/related", "multipart/*"):
            result.append(Wanted(True, media.params.get("type", "").lower() or "*/*", syntax))
        else:
            result.append(Wanted(False, media.media_type, syntax))
    return result


def describe(items: Sequence[Wanted]) -> str:
    def one(w: Wanted) -> str:
        text = f'multipart/related; type="{w.media_type}"' if w.multipart else w.media_type
        return text + (f"; transfer-syntax={w.transfer_syntax}" if w.transfer_syntax else "")

    return ", ".join(one(w) for w in items) or "nothing"


# --- instances (application/dicom) ----------------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    """What negotiation needs to know of one stored instance."""

    sop_instance_uid: str
    transfer_syntax: str
    pixels: ImagePixels | None


def dicom_syntax(obj: StoredObject, requested: str | None) -> str | None:
    """The transfer syntax to send ``obj`` in for a requested one (None: not given, ``*``:
    any, or a UID); None when Carina cannot produce it."""
    stored = obj.transfer_syntax
    if requested is None:
        if stored == EXPLICIT_VR_LITTLE_ENDIAN or (is_lossy(stored) and stored not in NOT_FOR_WEB):
            return stored
        if can_convert(stored, EXPLICIT_VR_LITTLE_ENDIAN, obj.pixels):
            return EXPLICIT_VR_LITTLE_ENDIAN
        return None if stored in NOT_FOR_WEB else stored  # undecodable: only as stored
    if requested == "*":
        if stored not in NOT_FOR_WEB:
            return stored
        return EXPLICIT_VR_LITTLE_ENDIAN
    if requested in NOT_FOR_WEB or not UID(requested).is_transfer_syntax:
        return None
    return requested if can_convert(stored, requested, obj.pixels) else None


def dicom_producible(obj: StoredObject) -> list[str]:
    """The transfer syntaxes Carina can send ``obj`` in over DICOMweb."""
    return [s for s in producible(obj.transfer_syntax, obj.pixels) if s not in NOT_FOR_WEB]


@dataclass(frozen=True)
class DicomChoice:
    """How instances are sent: multipart or one single part, and each one's syntax."""

    multipart: bool
    syntaxes: list[str]


def choose_dicom(acceptable: Sequence[Wanted], objects: Sequence[StoredObject]) -> DicomChoice:
    """The packaging and the transfer syntax of each of ``objects`` (PS3.18 8.7.8); raise
    :class:`NotAcceptableError` with what Carina can produce when some cannot be sent."""
    usable = [w for w in acceptable if w.admits(DICOM)]
    if not usable:
        raise NotAcceptableError(
            'Instances are sent as multipart/related; type="application/dicom" (or '
            f"application/dicom for a single instance); the request accepts {describe(acceptable)}."
        )
    # Instances are a multipart payload unless a single part is asked for by name
    # (PS3.18 10.4.1.2: the Retrieve Instance response is multipart/related).
    packaged = [(w, True if w.multipart is None else w.packs(len(objects))) for w in usable]
    possible = [(w, multipart) for w, multipart in packaged if multipart is not None]
    if not possible:
        raise NotAcceptableError(
            f"{len(objects)} instances cannot be sent as a single application/dicom part; "
            'ask for multipart/related; type="application/dicom".'
        )
    multipart = possible[0][1]
    options = [w.transfer_syntax for w, packs in possible if packs == multipart]
    syntaxes: list[str] = []
    for obj in objects:
        chosen = next((s for s in map(lambda o: dicom_syntax(obj, o), options) if s), None)
        if chosen is None:
            names = ", ".join(syntax_name(s) for s in dicom_producible(obj)) or "none"
            raise NotAcceptableError(
                f"Instance {obj.sop_instance_uid} is stored as "
                f"{syntax_name(obj.transfer_syntax)}; Carina cannot send it as "
                f"{describe([w for w, _ in possible])}. It can send it as: {names}."
            )
        syntaxes.append(chosen)
    return DicomChoice(multipart, syntaxes)


# --- frames and bulk data -------------------------------------------------------------------


@dataclass(frozen=True)
class Rendition:
    """The form of pixel data in a part: its media type and transfer syntax, and whether it
    is decoded (native) or sent as stored."""

    media_type: str
    transfer_syntax: str | None
    decoded: bool

    @property
    def content_type(self) -> str:
        if self.transfer_syntax is None:
            return self.media_type
        return f"{self.media_type}; transfer-syntax={self.transfer_syntax}"

    @property
    def native(self) -> bool:
        return self.media_type == OCTET_STREAM


@dataclass(frozen=True)
class PixelChoice:
    multipart: bool
    rendition: Rendition


def pixel_renditions(stored: str, encapsulated: bool) -> tuple[Rendition | None, Rendition | None]:
    """(native, as stored) forms of pixel data kept in ``stored``; None where unavailable."""
    native: Rendition | None = None
    as_stored: Rendition | None = None
    if not encapsulated:
        native = Rendition(OCTET_STREAM, EXPLICIT_VR_LITTLE_ENDIAN, decoded=False)
    else:
        if can_decode(stored):
            native = Rendition(OCTET_STREAM, EXPLICIT_VR_LITTLE_ENDIAN, decoded=True)
        media_type = compressed_media_type(stored)
        if media_type is not None:
            as_stored = Rendition(media_type, stored, decoded=False)
    return native, as_stored


def choose_pixels(
    acceptable: Sequence[Wanted],
    stored: str,
    encapsulated: bool,
    parts: Callable[[Rendition], int],
    what: str,
) -> PixelChoice:
    """The form and packaging of pixel data (frames, or the Pixel Data bulk data) stored in
    ``stored``; ``parts(rendition)`` is how many parts the response has in that form.
    Raise :class:`NotAcceptableError` naming the forms available."""
    native, as_stored = pixel_renditions(stored, encapsulated)
    default = as_stored if (as_stored and (is_lossy(stored) or native is None)) else native
    other = native if default is as_stored else as_stored
    for w in acceptable:
        for rendition in _candidates(w, stored, default, other, native, as_stored):
            multipart = w.packs(parts(rendition))
            if multipart is not None:
                return PixelChoice(multipart, rendition)
    forms = [
        f'multipart/related; type="{r.media_type}"; transfer-syntax={r.transfer_syntax}'
        for r in (as_stored, native)
        if r is not None
    ]
    raise NotAcceptableError(
        f"Carina cannot send {what} (stored as {syntax_name(stored)}) as "
        f"{describe(acceptable)}. It can send: {' or '.join(forms) or 'nothing'}."
    )


def _candidates(
    w: Wanted,
    stored: str,
    default: Rendition | None,
    other: Rendition | None,
    native: Rendition | None,
    as_stored: Rendition | None,
) -> list[Rendition]:
    syntax = w.transfer_syntax
    if syntax is None:
        found = [r for r in (default, other) if r is not None and w.admits(r.media_type)]
    elif syntax == "*":
        found = [
            r
            for r in (as_stored or native,)
            if r is not None and (w.admits(r.media_type) or w.media_type == OCTET_STREAM)
        ]
    elif syntax == EXPLICIT_VR_LITTLE_ENDIAN:
        found = [r for r in (native,) if r is not None and w.admits(r.media_type)]
    elif syntax == stored:
        found = [
            r
            for r in (as_stored,)
            if r is not None and (w.admits(r.media_type) or w.media_type == OCTET_STREAM)
        ]
    else:
        found = []
    return found


def choose_octets(acceptable: Sequence[Wanted]) -> PixelChoice:
    """The packaging of a bulk data value other than pixel data: always
    ``application/octet-stream``, little endian (PS3.18 8.7.3.3.1)."""
    rendition = Rendition(OCTET_STREAM, None, decoded=False)
    for w in acceptable:
        if w.admits(OCTET_STREAM) and w.transfer_syntax in (None, "*", EXPLICIT_VR_LITTLE_ENDIAN):
            multipart = w.packs(1)
            if multipart is not None:
                return PixelChoice(multipart, rendition)
    raise NotAcceptableError(
        f"Bulk data are sent as application/octet-stream (single part or "
        f'multipart/related; type="application/octet-stream"); the request accepts '
        f"{describe(acceptable)}."
    )
