"""Content negotiation (PS3.18 8.7): the media ranges of an ``Accept`` header (or of the
``accept`` query parameter, PS3.18 8.3.3.1), with their parameters — ``type`` and
``transfer-syntax`` — quoted or not, since clients differ (OHIF sends both forms)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``multipart/related; type="application/dicom";
    transfer-syntax=*`` → media_type ``multipart/related``, params
    ``{"type": "application/dicom", "transfer-syntax": "*"}``."""

    media_type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    @property
    def is_multipart(self) -> bool:
        return self.media_type == "multipart/related"

    @property
    def part_type(self) -> str:
        """The media type of the parts (``type=``), or the media type itself if single part."""
        return self.params.get("type", "").lower() if self.is_multipart else self.media_type

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")

    def matches(self, media_type: str) -> bool:
        """Whether this range admits ``media_type`` (``*/*`` and ``image/*`` wildcards)."""
        mine = self.media_type
        if mine in ("*/*", "*"):
            return True
        if mine.endswith("/*"):
            return media_type.split("/")[0] == mine[:-2]
        return mine == media_type


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_media_range(text: str) -> MediaRange:
    pieces = _split(text, ";")
    media_type = pieces[0].lower() if pieces else "*/*"
    params: dict[str, str] = {}
    q = 1.0
    for piece in pieces[1:]:
        name, _, value = piece.partition("=")
        name = name.strip().lower()
        value = value.strip().strip('"')
        if name == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
        else:
            params[name] = value
    return MediaRange(media_type, params, q)


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of ``header``, most preferred first; ``*/*`` when it is empty.
    Ranges with ``q=0`` are refused by the client and left out."""
    ranges = [parse_media_range(p) for p in _split(header, ",")] or [MediaRange("*/*")]
    ranges = [r for r in ranges if r.q > 0]
    return sorted(ranges, key=lambda r: -r.q)


def accepted(request: HttpRequest) -> list[MediaRange]:
    """What ``request`` accepts: the ``accept`` query parameter when present (PS3.18
    8.3.3.1), else the Accept header."""
    values = request.GET.getlist("accept")
    if values:
        return parse_accept(",".join(values))
    return parse_accept(request.headers.get("Accept", ""))
