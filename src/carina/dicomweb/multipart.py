"""Writing ``multipart/related`` payloads (RFC 2387, PS3.18 8.6.1.2), streamed part by part.

A WADO-RS response is a sequence of parts, each a Part 10 file, a frame or a bulk data
value. Parts are produced lazily (an iterator of :class:`Part`, each with an iterator of
byte chunks), so a response of any size passes through a constant amount of memory: the
next instance is read (or transcoded) only when the previous one has been sent.

The layout is the one every DICOMweb client parses, including cornerstone's hand-written
parser in OHIF (see /work/shared/notes/ohif-viewer.md §3.3)::

    --BOUNDARY\\r\\n
    Content-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\\r\\n
    Content-Location: /dicomweb/studies/…\\r\\n
    \\r\\n
    <body>\\r\\n
    --BOUNDARY\\r\\n
    …
    <body>\\r\\n
    --BOUNDARY--

Part header names are written exactly ``Content-Type:`` (cornerstone compares the first 13
characters, case-sensitively), every body is followed by ``\\r\\n--BOUNDARY``, and the
payload ends with the close delimiter ``\\r\\n--BOUNDARY--``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse

log = logging.getLogger(__name__)

CRLF = b"\r\n"


@dataclass
class Part:
    """One body part: its media type (with parameters), its content in chunks, and its
    length when known beforehand (then the response can carry a Content-Length)."""

    content_type: str
    chunks: Iterable[bytes]
    length: int | None = None
    location: str | None = None
    extra_headers: Sequence[tuple[str, str]] = field(default_factory=tuple)

    @classmethod
    def of(cls, content_type: str, data: bytes, location: str | None = None) -> Part:
        """A part whose content is already in memory."""
        return cls(content_type, (data,), len(data), location)


def new_boundary() -> str:
    """A boundary that cannot occur in the content by chance (128 random bits; RFC 2046
    5.1.1 allows 1–70 characters)."""
    return f"carina-{uuid.uuid4().hex}"


def content_type(part_type: str, boundary: str) -> str:
    """The response Content-Type: ``multipart/related; type="<part type>";
    boundary=<boundary>`` (PS3.18 8.6.1.2.1; ``type`` is quoted since it holds a ``/``)."""
    return f'multipart/related; type="{part_type}"; boundary={boundary}'


def _head(part: Part, boundary: str, first: bool) -> bytes:
    lines = [f"--{boundary}", f"Content-Type: {part.content_type}"]
    if part.location:
        lines.append(f"Content-Location: {part.location}")
    lines.extend(f"{name}: {value}" for name, value in part.extra_headers)
    head = "\r\n".join(lines).encode("ascii") + CRLF + CRLF
    return head if first else CRLF + head


def _tail(boundary: str, empty: bool) -> bytes:
    closing = f"--{boundary}--".encode("ascii")
    return closing if empty else CRLF + closing


def stream(parts: Iterable[Part], boundary: str) -> Iterator[bytes]:
    """The payload, chunk by chunk; each part's content is read only when its turn comes."""
    first = True
    for part in parts:
        yield _head(part, boundary, first)
        first = False
        for chunk in part.chunks:
            if chunk:
                yield chunk
    yield _tail(boundary, first)


def payload_length(parts: Sequence[Part], boundary: str) -> int | None:
    """The payload's length in bytes, when every part's length is known."""
    total = 0
    for index, part in enumerate(parts):
        if part.length is None:
            return None
        total += len(_head(part, boundary, index == 0)) + part.length
    return total + len(_tail(boundary, not parts))


class Body(Iterator[bytes]):
    """A response body that releases what it holds (open blobs, temporary copies) when the
    server closes the response — also when it was never iterated (HEAD, client gone)."""

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None] | None) -> None:
        self._chunks = chunks
        self._on_close = on_close

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            if self._on_close is not None:
                on_close, self._on_close = self._on_close, None
                on_close()


def response(
    parts: Iterable[Part],
    part_type: str,
    *,
    head_only: bool = False,
    on_close: Callable[[], None] | None = None,
) -> HttpResponseBase:
    """A streaming 200 response with ``parts``. When ``parts`` is a sequence whose lengths
    are all known, the response carries its Content-Length (OHIF's streaming loader uses
    it). For a HEAD request (``head_only``) the same headers are sent without reading any
    part. ``on_close`` runs when the server is done with the response."""
    boundary = new_boundary()
    length = payload_length(parts, boundary) if isinstance(parts, Sequence) else None
    chunks: Iterator[bytes] = iter(()) if head_only else _logged(stream(parts, boundary))
    answer = StreamingHttpResponse(
        Body(chunks, on_close), content_type=content_type(part_type, boundary)
    )
    if length is not None:
        answer["Content-Length"] = str(length)
    return answer


def single_part(
    part: Part, *, head_only: bool = False, on_close: Callable[[], None] | None = None
) -> HttpResponseBase:
    """A streaming 200 response whose body is the content of ``part`` alone (a single-part
    payload, PS3.18 8.6.1.1), with its Content-Type and, when known, Content-Length."""
    chunks: Iterator[bytes] = iter(()) if head_only else _logged(iter(part.chunks))
    answer = StreamingHttpResponse(Body(chunks, on_close), content_type=part.content_type)
    if part.length is not None:
        answer["Content-Length"] = str(part.length)
    if part.location:
        answer["Content-Location"] = part.location
    return answer


def in_memory(parts: Sequence[Part], part_type: str, *, multipart: bool = True) -> HttpResponse:
    """A 200 response with ``parts`` already in memory (small payloads: a few frames), with
    its Content-Length; ``multipart=False`` sends the one part alone."""
    if not multipart:
        (part,) = parts
        answer = HttpResponse(b"".join(part.chunks), content_type=part.content_type)
        if part.location:
            answer["Content-Location"] = part.location
        return answer
    boundary = new_boundary()
    body = b"".join(stream(parts, boundary))
    return HttpResponse(body, content_type=content_type(part_type, boundary))


def _logged(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks``, logging a failure midway: the status line is gone by then, so the
    connection is dropped (the exception propagates to the server) and the client sees an
    incomplete payload rather than a well-formed, shorter one."""
    try:
        yield from chunks
    except Exception:
        log.exception("a WADO-RS response failed while streaming; the connection is dropped")
        raise
