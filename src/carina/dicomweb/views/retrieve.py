"""WADO-RS Retrieve Study, Series and Instance (PS3.18 10.4.1.1.1, 10.4.1.2): the stored
Part 10 files as ``multipart/related; type="application/dicom"``.

Each instance is one part, ``Content-Type: application/dicom; transfer-syntax=<uid>``, in the
transfer syntax chosen per instance by :mod:`carina.dicomweb.negotiation` (as stored with
``transfer-syntax=*``; Explicit VR Little Endian by default; any syntax Carina can convert
to when named). The response streams: each blob is read in 1 MiB chunks when its turn comes,
and an instance to transcode is converted alone, so a study of any size passes through a
constant amount of memory. When every instance goes as stored, the response carries its
Content-Length.

A single instance may also be asked for as a single ``application/dicom`` part; several
instances asked for that way are refused with 406 (PS3.18 10.4.1.2 defines the multipart
form only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.urls import reverse

from carina.archive.models import Instance
from carina.archive.pixels.transcode import ImagePixels, instance_chunks
from carina.audit.models import Action, ObjectType
from carina.dicomweb import auditing, lookup, multipart
from carina.dicomweb.endpoint import dicomweb_view
from carina.dicomweb.negotiation import DICOM, StoredObject, choose_dicom, wanted


@dataclass(frozen=True)
class StoredItem:
    """One instance to send: what negotiation needs, and where its blob is."""

    obj: StoredObject
    blob_key: str
    size_bytes: int
    location: str


def _items(rows: QuerySet[Instance]) -> list[StoredItem]:
    """The instances of ``rows`` (a few hundred bytes each, whatever the study's size)."""
    base = reverse("dicomweb:studies").rstrip("/")
    items = []
    fields = (
        "sop_instance_uid",
        "transfer_syntax_uid",
        "blob_key",
        "size_bytes",
        "series__series_instance_uid",
        "series__study__study_instance_uid",
        "metadata",
    )
    for sop, syntax, key, size, series_uid, study_uid, metadata in rows.values_list(
        *fields
    ).iterator(chunk_size=500):
        obj = StoredObject(sop, syntax, ImagePixels.from_json(metadata or {}))
        location = f"{base}/{study_uid}/series/{series_uid}/instances/{sop}"
        items.append(StoredItem(obj, key, size, location))
    return items


def record(
    request: HttpRequest,
    object_type: ObjectType,
    object_uid: str,
    study_uid: str,
    count: int,
    detail: str,
    patient_id: str | None = None,
) -> None:
    """The audit event of one WADO-RS request (docs/audit.md): who read what, how much."""
    if patient_id is None:
        patient_id = lookup.study(request.tenant, study_uid).patient.patient_id  # type: ignore[attr-defined]
    auditing.record(
        request,
        Action.WEB_RETRIEVE,
        object_type=object_type,
        object_uid=object_uid,
        patient_id=patient_id,
        count=count,
        detail=detail,
    )


def _retrieve(
    request: HttpRequest,
    rows: QuerySet[Instance],
    object_type: ObjectType,
    object_uid: str,
    study_uid: str,
) -> HttpResponseBase:
    items = _items(rows)
    choice = choose_dicom(wanted(request), [item.obj for item in items])
    head_only = request.method == "HEAD"
    if not head_only:
        syntaxes = sorted(set(choice.syntaxes))
        record(
            request,
            object_type,
            object_uid,
            study_uid,
            len(items),
            f"{len(items)} instance(s) as application/dicom; transfer syntax "
            + ", ".join(syntaxes),
        )
    parts = [_part(item, syntax) for item, syntax in zip(items, choice.syntaxes, strict=True)]
    if not choice.multipart:
        return multipart.single_part(parts[0], head_only=head_only)
    return multipart.response(parts, DICOM, head_only=head_only)


def _part(item: StoredItem, syntax: str) -> multipart.Part:
    stored = item.obj.transfer_syntax
    return multipart.Part(
        f"{DICOM}; transfer-syntax={syntax}",
        instance_chunks(item.blob_key, stored, syntax),  # opened when the part is written
        length=item.size_bytes if syntax == stored else None,
        location=item.location,
    )


@dicomweb_view(("GET",))
def study(request: HttpRequest, study_uid: str, **kwargs: Any) -> HttpResponseBase:
    """Retrieve Study (PS3.18 10.4.1.1.1): every instance of the study."""
    rows = lookup.instances(request.tenant, study_uid)  # type: ignore[attr-defined]
    return _retrieve(request, rows, ObjectType.STUDY, study_uid, study_uid)


@dicomweb_view(("GET",))
def series(
    request: HttpRequest, study_uid: str, series_uid: str, **kwargs: Any
) -> HttpResponseBase:
    """Retrieve Series: every instance of the series."""
    rows = lookup.instances(request.tenant, study_uid, series_uid)  # type: ignore[attr-defined]
    return _retrieve(request, rows, ObjectType.SERIES, series_uid, study_uid)


@dicomweb_view(("GET",))
def instance(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, **kwargs: Any
) -> HttpResponseBase:
    """Retrieve Instance: one instance."""
    rows = lookup.instances(request.tenant, study_uid, series_uid, sop_uid)  # type: ignore[attr-defined]
    return _retrieve(request, rows, ObjectType.INSTANCE, sop_uid, study_uid)
