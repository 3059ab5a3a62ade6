"""DICOM JSON as DICOMweb sends it (PS3.18 F.2): the media types a client may ask for, a
JSON array streamed in chunks, and an instance's stored metadata turned into WADO-RS
metadata (PS3.18 10.4.1.1.2) whose bulk data points at the bulkdata resource.

Ingest keeps each instance's DICOM JSON without bulk data (``Instance.metadata``); a bulk
value is stored there as ``{"vr": VR, "BulkDataURI": "<tag path inside the instance>"}``
(``7FE00010``, or ``00880200/0/7FE00010`` inside a sequence item). Here that path becomes
the server-relative URL of the Retrieve Bulkdata resource (PS3.18 10.4.1.1.5):
``/dicomweb/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag path}``.
Relative to the server, not absolute with a host name, so that the URL stays right behind a
reverse proxy (OHIF resolves it against its own origin; see docs/dicomweb/search.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from carina.dicomweb.errors import NotAcceptableError
from carina.dicomweb.media import accepted

#: The media type of QIDO-RS answers and WADO-RS metadata (PS3.18 8.7.3.2, Table 8.7.3-2).
DICOM_JSON = "application/dicom+json"
#: What Carina answers JSON requests with; ``application/json`` is accepted for the same body
#: (dicomweb-client asks for both), and so are ``*/*`` and ``application/*``.
JSON_MEDIA_TYPES = (DICOM_JSON, "application/json")
#: Bytes gathered before a chunk of a JSON array is handed to the server.
CHUNK_BYTES = 64 * 1024

PIXEL_DATA = "7FE00010"
AVAILABLE_TRANSFER_SYNTAX_UID = "00083002"


def require_json(request: HttpRequest) -> None:
    """Refuse (406) a request whose Accept (or ``accept`` parameter, PS3.18 8.3.3.1) admits
    no JSON: Carina answers searches and metadata in DICOM JSON only, not in XML."""
    ranges = accepted(request)
    if any(r.matches(t) for r in ranges for t in JSON_MEDIA_TYPES):
        return
    asked = ", ".join(
        r.media_type + "".join(f"; {k}={v}" for k, v in r.params.items()) for r in ranges
    )
    raise NotAcceptableError(
        f"Carina answers this resource only as {DICOM_JSON} (or application/json); "
        f"the request accepts {asked or 'nothing'}."
    )


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (DICOM JSON is always UTF-8, PS3.18 F.2)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def json_array(
    items: Iterable[Mapping[str, Any]],
    *,
    finished: Callable[[int, bool], None] | None = None,
) -> Iterator[bytes]:
    """Stream ``items`` as one JSON array, in chunks of about :data:`CHUNK_BYTES`: memory
    holds one chunk, never the whole answer.

    ``finished(count, complete)`` is called once: with ``complete=True`` after the last item,
    *before* the closing bracket is sent (so that whatever it records is in place when the
    client has the whole body), or with ``complete=False`` when the stream stops early (the
    client went away, or reading failed).
    """
    parts: list[bytes] = [b"["]
    size = 1
    count = 0
    reported = False
    try:
        for item in items:
            data = dumps(item)
            if count:
                parts.append(b",")
            parts.append(data)
            count += 1
            size += len(data) + 1
            if size >= CHUNK_BYTES:
                yield b"".join(parts)
                parts, size = [], 0
        if finished is not None:
            reported = True
            finished(count, True)
        parts.append(b"]")
        yield b"".join(parts)
    finally:
        if finished is not None and not reported:
            finished(count, False)


def bulkdata_base(study_uid: str, series_uid: str, sop_uid: str, *, studies: str = "") -> str:
    """The server-relative URL under which an instance's bulk data is retrieved (without the
    tag path): ``/dicomweb/studies/{st}/series/{se}/instances/{sop}/bulkdata``. ``studies``
    is :func:`studies_url`, when the caller has it already."""
    studies = studies or studies_url()
    return f"{studies}/{study_uid}/series/{series_uid}/instances/{sop_uid}/bulkdata"


def studies_url() -> str:
    """The server-relative URL of the Studies resource (``/dicomweb/studies``), from the URL
    configuration, so that it follows wherever ``/dicomweb`` is mounted."""
    return reverse("dicomweb:studies").rstrip("/")


def _bulk(tag: str, element: Mapping[str, Any], base: str) -> dict[str, Any]:
    uri = str(element["BulkDataURI"])
    if not (uri.startswith("/") or "://" in uri):
        uri = f"{base}/{uri}"
    # Pixel Data is announced as OW whatever its encoding: the bulkdata resource and /frames
    # deliver it in a negotiated transfer syntax, not as stored (PS3.18 F.2.7).
    vr = "OW" if tag == PIXEL_DATA else element.get("vr", "UN")
    return {"vr": vr, "BulkDataURI": uri}


def _rewrite(data_set: Mapping[str, Any], base: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for tag, element in data_set.items():
        if not isinstance(element, Mapping):
            result[tag] = element
        elif "BulkDataURI" in element:
            result[tag] = _bulk(tag, element, base)
        elif element.get("vr") == "SQ" and element.get("Value"):
            result[tag] = {
                "vr": "SQ",
                "Value": [
                    _rewrite(item, base) if isinstance(item, Mapping) else item
                    for item in element["Value"]
                ],
            }
        else:
            result[tag] = element
    return result


def wado_metadata(
    metadata: Mapping[str, Any],
    *,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    transfer_syntax_uid: str = "",
    studies: str = "",
) -> dict[str, Any]:
    """An instance's stored DICOM JSON as WADO-RS metadata: every BulkDataURI (also inside
    sequence items) a server-relative URL of the instance's bulkdata resource, Pixel Data as
    ``{"vr": "OW", "BulkDataURI": …}``, and Available Transfer Syntax UID (0008,3002) = the
    stored transfer syntax unless the object carries one (OHIF reads it to recognise video).
    The stored JSON is not changed. ``studies`` is :func:`studies_url` (computed once per
    request by callers that render many instances)."""
    base = bulkdata_base(study_uid, series_uid, sop_uid, studies=studies)
    result = _rewrite(metadata, base)
    if transfer_syntax_uid and AVAILABLE_TRANSFER_SYNTAX_UID not in result:
        result[AVAILABLE_TRANSFER_SYNTAX_UID] = {"vr": "UI", "Value": [transfer_syntax_uid]}
        result = dict(sorted(result.items()))
    return result


__all__ = [
    "CHUNK_BYTES",
    "DICOM_JSON",
    "JSON_MEDIA_TYPES",
    "bulkdata_base",
    "dumps",
    "json_array",
    "require_json",
    "studies_url",
    "wado_metadata",
]
