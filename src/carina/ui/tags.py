"""The tag browser's rows: an instance's DICOM JSON (PS3.18 F.2, as stored at ingest without
bulk data) flattened into (depth, tag, keyword, VR, value) rows, sequences item by item."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import keyword_for_tag

#: Values longer than this are cut in the table (the full value is in WADO-RS metadata).
MAX_VALUE_CHARS = 400


@dataclass(frozen=True)
class TagRow:
    depth: int
    tag: str
    keyword: str
    vr: str
    value: str
    #: An "Item n" row of a sequence (no tag of its own).
    item: bool = False

    def matches(self, text: str) -> bool:
        needle = text.lower()
        return any(needle in part.lower() for part in (self.tag, self.keyword, self.value))


def _tag_label(key: str) -> str:
    return f"({key[:4]},{key[4:]})".upper()


def _keyword(key: str) -> str:
    try:
        return keyword_for_tag(int(key, 16)) or ""
    except ValueError:
        return ""


def _person_name(value: Any) -> str:
    if isinstance(value, dict):
        return "=".join(str(value.get(k, "")) for k in ("Alphabetic", "Ideographic", "Phonetic"))
    return str(value)


def _value(element: dict[str, Any]) -> str:
    vr = element.get("vr", "")
    if "BulkDataURI" in element:
        return "(bulk data, retrieved separately)"
    if "InlineBinary" in element:
        size = len(str(element["InlineBinary"])) * 3 // 4
        return f"(binary, about {size} bytes)"
    values = element.get("Value")
    if not values:
        return ""
    if vr == "PN":
        text = "\\".join(_person_name(v).rstrip("=") for v in values)
    else:
        text = "\\".join("" if v is None else str(v) for v in values)
    if len(text) > MAX_VALUE_CHARS:
        return text[:MAX_VALUE_CHARS] + f"… ({len(text)} characters)"
    return text


def tag_rows(dataset: dict[str, Any], depth: int = 0) -> Iterator[TagRow]:
    """Every element of a DICOM JSON data set in tag order, sequences expanded."""
    for key in sorted(dataset):
        element = dataset[key]
        if not isinstance(element, dict):
            continue
        vr = str(element.get("vr", ""))
        if vr == "SQ":
            items = element.get("Value") or []
            yield TagRow(depth, _tag_label(key), _keyword(key), vr, f"{len(items)} item(s)")
            for number, item in enumerate(items, start=1):
                yield TagRow(depth + 1, "", f"Item {number}", "", "", item=True)
                if isinstance(item, dict):
                    yield from tag_rows(item, depth + 1)
        else:
            yield TagRow(depth, _tag_label(key), _keyword(key), vr, _value(element))


def filtered_rows(dataset: dict[str, Any], text: str = "") -> list[TagRow]:
    """The rows whose tag, keyword or value contains ``text`` (ignoring case); all without
    text."""
    rows = list(tag_rows(dataset))
    text = text.strip()
    if not text:
        return rows
    return [row for row in rows if not row.item and row.matches(text)]
