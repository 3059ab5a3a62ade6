"""The audit trail as CSV (RFC 4180, UTF-8, CRLF line ends), streamed row by row so that an
export of millions of events needs no more memory than one row (docs/audit.md, "CSV").

A cell that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) is prefixed with ``'``: a Patient ID or a detail comes from
outside (a DICOM header, a query string) and must not become a formula when the file is
opened in a spreadsheet (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any

from django.db.models import QuerySet

from carina.audit.models import AuditEvent

#: The columns, in order: header and how each cell is read from an event.
COLUMNS: list[tuple[str, Callable[[AuditEvent], Any]]] = [
    ("id", lambda e: e.pk),
    ("occurred_at", lambda e: e.occurred_at.isoformat()),
    ("hospital", lambda e: e.hospital.slug if e.hospital is not None else ""),
    ("actor", lambda e: e.actor),
    ("actor_kind", lambda e: e.actor_kind),
    ("action", lambda e: e.action),
    ("object_type", lambda e: e.object_type),
    ("object_uid", lambda e: e.object_uid),
    ("patient_id", lambda e: e.patient_id),
    ("source_ip", lambda e: e.source_ip),
    ("source_ae", lambda e: e.source_ae),
    ("destination_ae", lambda e: e.destination_ae),
    ("outcome", lambda e: e.outcome),
    ("count", lambda e: e.count),
    ("detail", lambda e: e.detail),
    ("correlation_id", lambda e: e.correlation_id),
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Rows fetched from the database at a time.
CHUNK = 2000


def cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class _Line:
    """A file-like object whose ``write`` hands back the line written."""

    def write(self, value: str) -> str:
        return value


def csv_lines(
    events: QuerySet[AuditEvent], *, on_row: Callable[[], None] | None = None
) -> Iterator[bytes]:
    """The header and one line per event of ``events`` (in its order), as UTF-8 bytes;
    ``on_row`` is called after each event."""
    writer = csv.writer(_Line())
    yield writer.writerow([name for name, _ in COLUMNS]).encode()
    for event in events.iterator(chunk_size=CHUNK):
        yield writer.writerow([cell(read(event)) for _, read in COLUMNS]).encode()
        if on_row is not None:
            on_row()
