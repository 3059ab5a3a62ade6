"""STOW-RS: the Store Instances transaction (PS3.18 10.5).

``POST /dicomweb/studies`` and ``POST /dicomweb/studies/{study}`` with a
``multipart/related; type="application/dicom"; boundary=…`` body (PS3.18 10.5.1): each part
is one DICOM Part 10 object. The body is read as a stream; each part is written to a file in
``CARINA_STAGING_DIR`` chunk by chunk and handed to the ingest pipeline, which answers only
once the object is durable and indexed. The parts' files are removed whatever happens.

The answer is the Store Instances Response Module (PS3.18 Annex I) as
``application/dicom+json``: ReferencedSOPSequence (0008,1199) for the objects stored,
FailedSOPSequence (0008,1198) for the others, with a Failure Reason (0008,1197) from PS3.18
Table I.2-2 and a sentence in Text Value (0040,A160); Retrieve URL (0008,1190) of the study.
Status (PS3.18 Table 10.5.3-1): 200 all stored, 202 some stored, 409 none stored (503 when
none could be stored because the archive storage is out of resources), 400 a body that is not
well-formed multipart, 413 too large, 415 a media type other than application/dicom parts.

The metadata and bulk data form (``type="application/dicom+json"`` or ``+xml`` with bulk data
parts) is optional in PS3.18 10.5.1 and refused with 415. docs/dicomweb/store-and-delete.md
describes every decision.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils.http import parse_header_parameters

from carina.accounts.access import may_store, role_in
from carina.archive.ingest.errors import (
    IngestError,
    StorageUnavailableError,
    UnknownTransferSyntaxError,
)
from carina.archive.ingest.parse import read_header
from carina.archive.ingest.pipeline import IngestStatus, Origin, ingest
from carina.archive.models import Source
from carina.audit.models import Action, ObjectType, Outcome
from carina.dicomweb import auditing
from carina.dicomweb.endpoint import dicomweb_view
from carina.dicomweb.errors import DicomwebError, ForbiddenError, error_response
from carina.dicomweb.media import accepted
from carina.dicomweb.multipart_reader import (
    MultipartError,
    MultipartReader,
    Part,
    PayloadTooLargeError,
    Readable,
)
from carina.tenancy.models import Hospital

log = logging.getLogger(__name__)

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
MULTIPART = "multipart/related"

#: Failure Reason (0008,1197) values (PS3.18 Table I.2-2). Ingest errors otherwise give their
#: own DIMSE status (A7xx, A9xx, Cxxx: see docs/ingest.md).
PROCESSING_FAILURE = 0x0110
CANNOT_UNDERSTAND = 0xC000
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
#: An instance of another study sent to /studies/{study} (Cxxx, the value dcm4chee uses).
STUDY_MISMATCH = 0xC409
OUT_OF_RESOURCES = 0xA700

#: Default cap on the bytes of one STOW-RS request (setting ``CARINA_STOW_MAX_BYTES``).
DEFAULT_MAX_BYTES = 20 * 1024**3

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


# --- Cross-site request protection (shared with views.delete) ----------------------------


def check_same_origin(request: HttpRequest) -> None:
    """Refuse a cross-site state change made with a session cookie.

    STOW-RS and DELETE are exempt from Django's CSRF token (OHIF and programs cannot send
    it). A caller that sends an ``Authorization`` header (a Bearer token) is a program, or a
    page of this site: a cross-site page cannot add that header without a CORS preflight,
    which Carina never grants. A session-cookie caller must send an ``Origin`` (or, without
    one, a ``Referer``) naming this site or one of ``CSRF_TRUSTED_ORIGINS``. Raises
    :class:`ForbiddenError`.
    """
    if request.headers.get("Authorization"):
        return
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if referer:
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""
    if not origin:
        raise ForbiddenError(
            "A signed-in browser must send an Origin or Referer header naming this site with "
            "a request that stores or deletes (protection against cross-site requests); "
            "programs should send 'Authorization: Bearer <token>' instead of a cookie."
        )
    expected = f"{request.scheme}://{request.get_host()}"
    trusted = {o.rstrip("/") for o in getattr(settings, "CSRF_TRUSTED_ORIGINS", [])}
    if origin.rstrip("/") != expected and origin.rstrip("/") not in trusted:
        raise ForbiddenError(
            f"This request comes from another site ({origin}), not from {expected}; "
            "cross-site requests may not store or delete. Programs should use a Bearer token."
        )


# --- Per-part results ---------------------------------------------------------------------


@dataclass
class PartResult:
    """What became of one part."""

    part: int
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    patient_id: str = ""
    status: IngestStatus | None = None
    failure_reason: int = 0
    message: str = ""
    out_of_resources: bool = False

    @property
    def stored(self) -> bool:
        return self.status is not None

    def fail(self, reason: int, message: str, *, out_of_resources: bool = False) -> PartResult:
        self.failure_reason = reason
        self.message = message
        self.out_of_resources = out_of_resources
        return self


def _failure_reason(exc: IngestError) -> int:
    if isinstance(exc, UnknownTransferSyntaxError):
        return TRANSFER_SYNTAX_NOT_SUPPORTED
    return exc.dimse_status


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _missing_preamble(part: Part) -> bytes:
    """The 128-byte preamble and ``DICM`` prefix (PS3.10 7.1) when the part starts straight
    with its File Meta Information, as pydicom writes a data set made in memory (and so
    dicomweb-client sends it); else nothing. The content itself is stored unchanged."""
    head = part.peek(132)
    if head[128:132] != b"DICM" and head[:2] == b"\x02\x00" and head[4:6].isalpha():
        return bytes(128) + b"DICM"
    return b""


def _store_part(
    part: Part,
    *,
    hospital: Hospital,
    origin: Origin,
    staging: Path,
    target_study: str | None,
    default_type: str,
) -> PartResult:
    """Store one part through the ingest pipeline; a refusal is a failed result, never an
    exception (except a body that cannot be delimited: :class:`MultipartError`)."""
    name = f"part {part.index}"
    result = PartResult(part.index)
    media_type, _ = parse_header_parameters(part.content_type or default_type)
    if media_type != DICOM:
        part.drain()
        return result.fail(
            CANNOT_UNDERSTAND,
            f"{name}: its Content-Type is {part.content_type!r}; only application/dicom parts "
            "(DICOM Part 10 files) are stored here",
        )
    with part.spooled(staging, _missing_preamble(part)) as spooled:
        try:
            ds = read_header(spooled.path, name, int(settings.CARINA_BULKDATA_THRESHOLD))
        except IngestError as exc:
            return result.fail(_failure_reason(exc), exc.message)
        result.sop_class_uid = _text(ds, "SOPClassUID")
        result.sop_instance_uid = _text(ds, "SOPInstanceUID")
        result.study_instance_uid = _text(ds, "StudyInstanceUID")
        del ds
        if target_study is not None and result.study_instance_uid != target_study:
            return result.fail(
                STUDY_MISMATCH,
                f"{name}: the instance belongs to study {result.study_instance_uid or '(none)'}"
                f", not to study {target_study} named in the request URL; send it to "
                "/dicomweb/studies instead",
            )
        try:
            stored = ingest(spooled.path, hospital=hospital, origin=origin, name=name)
        except IngestError as exc:
            return result.fail(
                _failure_reason(exc),
                exc.message,
                out_of_resources=isinstance(exc, StorageUnavailableError),
            )
        except Exception:
            log.exception("STOW-RS %s could not be stored", name)
            return result.fail(
                PROCESSING_FAILURE,
                f"{name}: an internal error stopped the store; nothing of it was kept "
                "(the server log has the details)",
            )
    result.status = stored.status
    result.sop_class_uid = stored.sop_class_uid
    result.sop_instance_uid = stored.sop_instance_uid
    result.study_instance_uid = stored.study_instance_uid
    result.series_instance_uid = stored.series_instance_uid
    result.patient_id = stored.patient_id
    if stored.status == IngestStatus.ALREADY_PRESENT:
        result.message = f"{name}: already stored with identical content; nothing changed"
    elif stored.status == IngestStatus.REPLACED:
        result.message = (
            f"{name}: replaced the stored object with the same SOP Instance UID (the "
            "hospital's duplicate policy is 'keep newest')"
        )
    return result


# --- The request --------------------------------------------------------------------------


def max_bytes() -> int:
    """The most bytes one STOW-RS request may carry."""
    return int(getattr(settings, "CARINA_STOW_MAX_BYTES", DEFAULT_MAX_BYTES))


def _check_accept(request: HttpRequest) -> None:
    ranges = accepted(request)
    if not any(r.matches(DICOM_JSON) or r.matches("application/json") for r in ranges):
        raise DicomwebError(
            "The store response is available as application/dicom+json only (not XML); "
            "accept application/dicom+json.",
            406,
        )


def _framing(request: HttpRequest) -> tuple[str, str]:
    """The boundary and the parts' media type from the Content-Type (415 or 400)."""
    content_type = request.META.get("CONTENT_TYPE", "")
    media_type, params = parse_header_parameters(content_type)
    if media_type != MULTIPART:
        raise DicomwebError(
            f"Content-Type {content_type or '(none)'!r} is not supported: send "
            'multipart/related; type="application/dicom"; boundary=… with one DICOM Part 10 '
            "file per part (PS3.18 10.5.1).",
            415,
        )
    part_type, _ = parse_header_parameters(params.get("type", DICOM))
    if part_type != DICOM:
        detail = (
            " The metadata and bulk data form (application/dicom+json or +xml parts with "
            "bulk data) is optional in PS3.18 10.5.1 and not supported here."
            if part_type in ("application/dicom+json", "application/dicom+xml")
            else ""
        )
        raise DicomwebError(
            f'Parts of type {part_type!r} are not stored; send type="application/dicom" '
            f"parts, each one a DICOM Part 10 file.{detail}",
            415,
        )
    boundary = params.get("boundary", "")
    if not boundary:
        raise DicomwebError(
            "The Content-Type has no boundary parameter: multipart/related; "
            'type="application/dicom"; boundary=<the delimiter used in the body>.',
            400,
        )
    return boundary, part_type


def _body(request: HttpRequest, limit: int) -> Readable:
    """The request body as a stream (413 when its announced length is over the limit).

    Django reads a body of known length; a chunked body (no Content-Length) is read from
    the WSGI server's own stream when the server de-chunks it (gunicorn does:
    ``wsgi.input_terminated``), else refused with 411.
    """
    length = request.META.get("CONTENT_LENGTH")
    if length:
        try:
            announced = int(length)
        except ValueError:
            raise DicomwebError(f"Content-Length {length!r} is not a number.", 400) from None
        if announced > limit:
            raise DicomwebError(
                f"The request body ({announced} bytes) is larger than this server's limit of "
                f"{limit} bytes; send the objects in several requests.",
                413,
            )
        return cast(Readable, request)
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if request.META.get("wsgi.input_terminated"):
            # gunicorn's de-chunked stream, which Django would read as empty.
            return cast(Readable, request.META["wsgi.input"])
        raise DicomwebError(
            "This server cannot read a chunked request body; send it with a Content-Length.",
            411,
        )
    return cast(Readable, request)


@dicomweb_view(("POST",))
def store(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    """Store Instances: ``POST /dicomweb/studies[/{study}]`` (PS3.18 10.5)."""
    study_uid: str | None = kwargs.get("study_uid")
    try:
        return _store(request, study_uid)
    except DicomwebError as exc:
        _record(request, study_uid or "", "", 0, Outcome.FAILURE, exc.message)
        raise


def _store(request: HttpRequest, target_study: str | None) -> HttpResponseBase:
    hospital: Hospital = request.tenant  # type: ignore[attr-defined]
    user = request.carina_user  # type: ignore[attr-defined]
    check_same_origin(request)
    if not may_store(user, hospital):
        role = role_in(user, hospital)
        raise ForbiddenError(
            f"Your role in {hospital.slug} ({role.label if role else 'none'}) may not store "
            "objects; a technologist, radiologist or administrator may."
        )
    _check_accept(request)
    boundary, part_type = _framing(request)
    limit = max_bytes()
    try:
        reader = MultipartReader(_body(request, limit), boundary, limit)
    except MultipartError as exc:
        raise DicomwebError(_sentence(str(exc)), 400) from None
    origin = Origin(Source.STOW, user.get_username())
    staging = Path(settings.CARINA_STAGING_DIR)
    results: list[PartResult] = []
    broken: PartResult | None = None
    error: MultipartError | None = None
    current: int | None = None
    try:
        for part in reader:
            current = part.index
            results.append(
                _store_part(
                    part,
                    hospital=hospital,
                    origin=origin,
                    staging=staging,
                    target_study=target_study,
                    default_type=part_type,
                )
            )
            current = None
    except MultipartError as exc:
        # The body breaks off, or goes over the limit: what was stored stays stored.
        error = exc
        reason = OUT_OF_RESOURCES if isinstance(exc, PayloadTooLargeError) else CANNOT_UNDERSTAND
        message = str(exc)
        if current is not None and not message.startswith(f"part {current}:"):
            message = f"part {current}: {message}"
        broken = PartResult(current or 0).fail(reason, message)
    return _answer(request, target_study, results, broken, error)


def _answer(
    request: HttpRequest,
    target_study: str | None,
    results: list[PartResult],
    broken: PartResult | None,
    error: MultipartError | None,
) -> HttpResponseBase:
    stored = [r for r in results if r.stored]
    failed = [r for r in results if not r.stored]
    studies = {r.study_instance_uid for r in stored}
    patients = {r.patient_id for r in stored}
    study_uid = target_study or (next(iter(studies)) if len(studies) == 1 else "")
    patient_id = next(iter(patients)) if len(patients) == 1 else ""
    if not stored and (broken is not None or not results):
        # Nothing stored and the body is not well formed: a plain 4xx error (PS3.18 8.6.1).
        status = 413 if isinstance(error, PayloadTooLargeError) else 400
        message = broken.message if broken else "the body has no parts: nothing to store"
        failures = [r.message for r in failed]
        detail = f"{message} ({_summary(stored, failed)})"
        _record(request, study_uid, patient_id, 0, Outcome.FAILURE, detail)
        extra: dict[str, object] = {"failures": failures} if failures else {}
        return error_response(status, _sentence(message), **extra)
    if broken is not None:
        failed.append(broken)
    summary = _summary(stored, failed)
    if not failed:
        status, outcome = 200, Outcome.SUCCESS
    elif stored:
        status, outcome = 202, Outcome.PARTIAL
    else:
        all_resources = all(r.out_of_resources for r in failed)
        status, outcome = (503 if all_resources else 409), Outcome.FAILURE
    _record(request, study_uid, patient_id, len(stored), outcome, summary)
    body = _response_module(request, study_uid, stored, failed)
    response = HttpResponse(json.dumps(body), content_type=DICOM_JSON, status=status)
    if status == 503:
        response["Retry-After"] = "60"
    return response


def _sentence(message: str) -> str:
    text = message[:1].upper() + message[1:]
    return text if text.endswith(".") else text + "."


def _summary(stored: list[PartResult], failed: list[PartResult]) -> str:
    text = f"{len(stored)} instance(s) stored, {len(failed)} failed"
    if failed:
        text += ": " + "; ".join(r.message for r in failed[:5])
        if len(failed) > 5:
            text += f"; and {len(failed) - 5} more"
    return text


def _record(
    request: HttpRequest,
    study_uid: str,
    patient_id: str,
    count: int,
    outcome: Outcome,
    detail: str,
) -> None:
    auditing.record(
        request,
        Action.WEB_STORE,
        object_type=ObjectType.STUDY,
        object_uid=study_uid,
        patient_id=patient_id,
        count=count,
        outcome=outcome,
        detail=detail,
    )


# --- The Store Instances Response Module (PS3.18 Annex I) as DICOM JSON --------------------


def _element(vr: str, *values: object) -> dict[str, Any]:
    element: dict[str, Any] = {"vr": vr}
    if values:
        element["Value"] = list(values)
    return element


def _uid(value: str) -> str | None:
    return value if value and len(value) <= 64 and _UID.match(value) else None


def _study_url(request: HttpRequest, study_uid: str) -> str:
    return request.build_absolute_uri(reverse("dicomweb:study", kwargs={"study_uid": study_uid}))


def _reference(result: PartResult) -> dict[str, Any]:
    item: dict[str, Any] = {}
    sop_class = _uid(result.sop_class_uid)
    sop_instance = _uid(result.sop_instance_uid)
    if sop_class:
        item["00081150"] = _element("UI", sop_class)  # ReferencedSOPClassUID
    if sop_instance:
        item["00081155"] = _element("UI", sop_instance)  # ReferencedSOPInstanceUID
    return item


def _response_module(
    request: HttpRequest, study_uid: str, stored: list[PartResult], failed: list[PartResult]
) -> dict[str, Any]:
    module: dict[str, Any] = {
        # RetrieveURL (0008,1190), Type 2: empty when the instances are of several studies.
        "00081190": _element("UR", _study_url(request, study_uid)) if study_uid else _element("UR"),
    }
    if failed:
        items = []
        for result in failed:
            item = _reference(result)
            item["00081197"] = _element("US", result.failure_reason)  # FailureReason
            item["0040A160"] = _element("UT", result.message)  # TextValue
            items.append(item)
        module["00081198"] = _element("SQ", *items)  # FailedSOPSequence
    if stored:
        items = []
        for result in stored:
            item = _reference(result)
            url = reverse(
                "dicomweb:instance",
                kwargs={
                    "study_uid": result.study_instance_uid,
                    "series_uid": result.series_instance_uid,
                    "sop_uid": result.sop_instance_uid,
                },
            )
            item["00081190"] = _element("UR", request.build_absolute_uri(url))
            if result.message:
                item["0040A160"] = _element("UT", result.message)
            items.append(item)
        module["00081199"] = _element("SQ", *items)  # ReferencedSOPSequence
    return module
