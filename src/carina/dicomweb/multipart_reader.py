"""A streaming reader of ``multipart/related`` request bodies (RFC 2387, framing of RFC 2046
5.1.1), as STOW-RS sends them (PS3.18 8.6.1.2, 10.5.1).

The body is read in chunks of at most :data:`CHUNK` bytes and never held whole in memory: a
part's content is handed on chunk by chunk (:meth:`Part.read`) or written to a file
(:meth:`Part.spooled`). Besides the chunk being handed on, the reader keeps only the last few
bytes that could be the start of the next boundary, so memory stays flat whatever the size of
the body or of a part.

What it accepts:

- the first boundary at the very start of the body (``--b``) or after a preamble, including the
  empty preamble plus CRLF that dicomweb-client and OHIF send (``CRLF --b``);
- transport padding (spaces, tabs) after a boundary;
- part header fields (``Content-Type``, ``Content-Location`` …), or none;
- the closing delimiter ``--b--`` and any epilogue after it (ignored).

A body that breaks these rules raises :class:`MultipartError` with a sentence a person can
act on; more bytes than the caller's limit raise :class:`PayloadTooLargeError`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

#: Bytes read from the body at a time (and the most a part hands on in one read).
CHUNK = 1 << 20
#: The most bytes of preamble accepted before the first boundary.
MAX_PREAMBLE = 64 * 1024
#: The most bytes of header fields one part may have.
MAX_PART_HEADERS = 16 * 1024

_CRLF = b"\r\n"
_PADDING = b" \t"


class MultipartError(ValueError):
    """The body is not a well-formed multipart body."""


class PayloadTooLargeError(MultipartError):
    """The body is longer than the limit the caller set."""


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _Body:
    """The request body, counted against a limit; a broken connection is a framing error."""

    def __init__(self, stream: Readable, limit: int | None) -> None:
        self._stream = stream
        self._limit = limit
        self.bytes_read = 0

    def read(self, size: int) -> bytes:
        try:
            data = self._stream.read(size)
        except OSError as exc:
            raise MultipartError(
                f"the request body could not be read to its end ({exc or type(exc).__name__}); "
                "the connection may have been interrupted"
            ) from exc
        self.bytes_read += len(data)
        if self._limit is not None and self.bytes_read > self._limit:
            raise PayloadTooLargeError(
                f"the request body is larger than this server's limit of {self._limit} bytes; "
                "send the objects in several requests"
            )
        return data


@dataclass(frozen=True)
class SpooledPart:
    """A part's content written to a file."""

    path: Path
    size: int


class Part:
    """One body part: its header fields and a reader of its content.

    ``read()`` returns content bytes until the part's closing boundary, then ``b""``. Reading
    past the end of the request body without a closing boundary raises
    :class:`MultipartError`: a part that cannot be delimited is never handed on as complete.
    """

    def __init__(self, reader: MultipartReader, index: int, headers: dict[str, str]) -> None:
        self._reader = reader
        #: 1-based position of the part in the body.
        self.index = index
        #: Header fields, names in lower case.
        self.headers = headers
        self.size = 0

    @property
    def content_type(self) -> str:
        """The part's ``Content-Type`` field ("" when it has none)."""
        return self.headers.get("content-type", "")

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            chunks = []
            while chunk := self._reader._read_content(self, CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        return self._reader._read_content(self, size)

    def readable(self) -> bool:
        return True

    def peek(self, size: int) -> bytes:
        """Up to ``size`` bytes of the content still to be read, without consuming them."""
        return self._reader._peek_content(self, size)

    def drain(self) -> None:
        """Skip whatever content of the part is left unread."""
        while self._reader._read_content(self, CHUNK):
            pass

    @contextmanager
    def spooled(self, directory: Path, prefix: bytes = b"") -> Iterator[SpooledPart]:
        """Write ``prefix`` then the rest of the content to a new file in ``directory``, chunk
        by chunk; the file is removed when the block ends, whatever happens."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"stow-{uuid.uuid4().hex}.part"
        size = len(prefix)
        try:
            with path.open("wb") as out:
                out.write(prefix)
                while chunk := self.read(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            yield SpooledPart(path, size)
        finally:
            with suppress(FileNotFoundError):
                os.unlink(path)


class MultipartReader:
    """Iterate the parts of a ``multipart/related`` body read from ``stream``.

    ``boundary`` is the Content-Type's ``boundary`` parameter (quotes removed). ``limit`` caps
    the bytes read from ``stream`` (``None``: no cap). Each part must be read (or is skipped)
    before the next one is produced.
    """

    def __init__(self, stream: Readable, boundary: str, limit: int | None = None) -> None:
        if not boundary or len(boundary) > 70 or boundary.endswith(" "):
            raise MultipartError(
                "the Content-Type's boundary parameter must be 1 to 70 characters, not ending "
                "with a space (RFC 2046 5.1.1)"
            )
        self._body = _Body(stream, limit)
        self._delimiter = _CRLF + b"--" + boundary.encode("latin-1")
        # The delimiter starts with CRLF; the first boundary may open the body without one.
        self._buffer = bytearray(_CRLF)
        self._eof = False
        self._current: Part | None = None
        self.parts_read = 0

    @property
    def bytes_read(self) -> int:
        return self._body.bytes_read

    def __iter__(self) -> Iterator[Part]:
        self._skip_preamble()
        while True:
            if self._after_delimiter_is_close():
                return
            headers = self._read_headers(self.parts_read + 1)
            self.parts_read += 1
            part = Part(self, self.parts_read, headers)
            self._current = part
            yield part
            part.drain()

    # --- reading ------------------------------------------------------------------------

    def _fill(self, size: int) -> None:
        """Read until the buffer holds ``size`` bytes or the body ends."""
        while len(self._buffer) < size and not self._eof:
            chunk = self._body.read(CHUNK)
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True

    def _skip_preamble(self) -> None:
        keep = len(self._delimiter) - 1
        skipped = 0
        while True:
            self._fill(len(self._delimiter) + CHUNK)
            found = self._buffer.find(self._delimiter)
            if found >= 0 and skipped + found <= MAX_PREAMBLE + len(_CRLF):
                del self._buffer[: found + len(self._delimiter)]
                return
            if found >= 0 or skipped > MAX_PREAMBLE:
                raise MultipartError(
                    f"the body does not start with the boundary given in the Content-Type "
                    f"header (nothing matching it in the first {MAX_PREAMBLE} bytes)"
                )
            if self._eof:
                if self._body.bytes_read == 0:
                    raise MultipartError("the request body is empty: it has no parts")
                raise MultipartError(
                    "the body does not contain the boundary given in the Content-Type "
                    "header; check the boundary parameter"
                )
            drop = len(self._buffer) - keep
            skipped += drop
            del self._buffer[:drop]

    def _after_delimiter_is_close(self) -> bool:
        """After a boundary: ``--`` closes the body; otherwise padding and CRLF must follow."""
        self._fill(2)
        if self._buffer[:2] == b"--":
            self._current = None
            return True
        padding = 0
        while True:
            self._fill(padding + 2)
            if padding < len(self._buffer) and self._buffer[padding] in _PADDING:
                padding += 1
                if padding > 1024:
                    break
                continue
            break
        if self._buffer[padding : padding + 2] != _CRLF:
            if self._eof and len(self._buffer) <= padding:
                raise MultipartError(
                    "the body ends after a boundary without the closing delimiter "
                    "('--' after the last boundary)"
                )
            raise MultipartError(
                "a boundary in the body is not followed by a line break or by '--'; the "
                "boundary parameter may not match the body"
            )
        # Keep the CRLF: the header block is searched as CRLF *(field CRLF) CRLF.
        del self._buffer[:padding]
        return False

    def _read_headers(self, index: int) -> dict[str, str]:
        end = _CRLF + _CRLF
        while True:
            found = self._buffer.find(end)
            if found >= 0:
                break
            if len(self._buffer) > MAX_PART_HEADERS:
                raise MultipartError(
                    f"part {index}: its header fields are longer than {MAX_PART_HEADERS} bytes "
                    "or are not ended by an empty line"
                )
            if self._eof:
                raise MultipartError(f"part {index}: the body ends inside the part's header fields")
            self._fill(len(self._buffer) + 4096)
        text = bytes(self._buffer[2:found]).decode("latin-1")
        del self._buffer[: found + len(end)]
        headers: dict[str, str] = {}
        for line in text.split("\r\n") if text else []:
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise MultipartError(f"part {index}: malformed header field {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        return headers

    def _peek_content(self, part: Part, size: int) -> bytes:
        if part is not self._current or size <= 0:
            return b""
        self._fill(size + len(self._delimiter))
        found = self._buffer.find(self._delimiter)
        return bytes(self._buffer[: size if found < 0 else min(size, found)])

    def _read_content(self, part: Part, size: int) -> bytes:
        """Up to ``size`` content bytes of ``part``; ``b""`` once its boundary is reached."""
        if part is not self._current or size == 0:
            return b""
        delimiter = self._delimiter
        self._fill(size + len(delimiter))
        found = self._buffer.find(delimiter)
        if found < 0:
            if self._eof:
                self._current = None
                raise MultipartError(
                    f"part {part.index}: the body ends before the part's closing boundary; "
                    "the part is incomplete"
                )
            take = min(size, len(self._buffer) - len(delimiter) + 1)
        else:
            take = min(size, found)
        data = bytes(self._buffer[:take])
        del self._buffer[:take]
        if found >= 0 and take == found:
            del self._buffer[: len(delimiter)]
            self._current = None
        part.size += len(data)
        return data


__all__ = [
    "CHUNK",
    "MultipartError",
    "MultipartReader",
    "Part",
    "PayloadTooLargeError",
    "SpooledPart",
]
