"""WADO-RS Retrieve Study / Series / Instance (PS3.18 10.4): Part 10 files as
multipart/related; type="application/dicom", as stored or transcoded as negotiated."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from carina.archive.ingest.pipeline import IngestResult
from carina.archive.models import Instance
from carina.archive.storage import get_storage
from carina.audit.models import Action, AuditEvent
from carina.core.testing import shipped_file
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


# --- helpers shared with test_frames and test_bulkdata -----------------------------------


def split_multipart(response: requests.Response) -> list[tuple[list[str], bytes]]:
    """The parts of a multipart/related answer, each as (header lines, body), checking the
    framing every DICOMweb client relies on: a boundary parameter, parts separated by
    ``\\r\\n--boundary``, and the close delimiter ``\\r\\n--boundary--`` at the very end."""
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/related;"), content_type
    boundary = next(
        p.split("=", 1)[1].strip('"')
        for p in (piece.strip() for piece in content_type.split(";"))
        if p.startswith("boundary=")
    )
    body = response.content
    close = f"\r\n--{boundary}--".encode()
    assert body.endswith(close), body[-80:]
    assert body.startswith(f"--{boundary}\r\n".encode())
    chunks = body[: -len(close)].split(f"\r\n--{boundary}\r\n".encode())
    chunks[0] = chunks[0][len(f"--{boundary}\r\n") :]
    parts = []
    for chunk in chunks:
        head, _, content = chunk.partition(b"\r\n\r\n")
        parts.append((head.decode("ascii").split("\r\n"), content))
    return parts


def part_type(headers: list[str]) -> str:
    """The part's Content-Type, from a header line written exactly ``Content-Type:``
    (cornerstone's parser is case-sensitive)."""
    lines = [h for h in headers if h.startswith("Content-Type:")]
    assert len(lines) == 1, headers
    return lines[0][len("Content-Type:") :].strip()


def stored_bytes(uid: str) -> bytes:
    """The archived blob of an instance."""
    key = Instance.objects.all_hospitals().get(sop_instance_uid=uid).blob_key
    with get_storage().open(key) as handle:
        return handle.read()


def url_of(live_server: Any, result: IngestResult, *tail: str) -> str:
    st, se, sop = uids(result)
    return "/".join([f"{live_server.url}/dicomweb/studies/{st}/series/{se}/instances/{sop}", *tail])


def uids(result: IngestResult) -> tuple[str, str, str]:
    row = (
        Instance.objects.all_hospitals().select_related("series__study").get(pk=result.instance_id)
    )
    return row.series.study.study_instance_uid, row.series.series_instance_uid, row.sop_instance_uid


def retrieve_events() -> list[AuditEvent]:
    return list(AuditEvent.unscoped.filter(action=Action.WEB_RETRIEVE).order_by("id"))


Store = Callable[..., list[IngestResult]]


# --- as stored: byte for byte --------------------------------------------------------------


def test_study_as_stored_is_byte_for_byte_the_archived_files(
    http: requests.Session, live_server: Any, ct_series: Callable[..., list[IngestResult]]
) -> None:
    results = ct_series(3)
    st, _, _ = uids(results[0])
    response = http.get(
        f"{live_server.url}/dicomweb/studies/{st}", headers={"Accept": DICOM_ANY}, timeout=30
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(
        'multipart/related; type="application/dicom"; boundary='
    )
    parts = split_multipart(response)
    assert len(parts) == 3
    # every instance went as stored, so the length was known before sending
    assert int(response.headers["Content-Length"]) == len(response.content)
    sent = {pydicom.dcmread(BytesIO(body)).SOPInstanceUID: (h, body) for h, body in parts}
    for result in results:
        headers, body = sent[uids(result)[2]]
        assert part_type(headers) == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
        assert body == stored_bytes(uids(result)[2])
        location = next(h for h in headers if h.startswith("Content-Location:"))
        assert location.endswith(f"/instances/{uids(result)[2]}")


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_jpeg_dcmtk.dcm",
        "MR_small_RLE.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "image_dfl.dcm",
    ],
)
def test_transfer_syntax_star_sends_each_object_as_received(
    http: requests.Session, live_server: Any, store: Store, name: str
) -> None:
    path = shipped_file(name)
    (result,) = store([path])
    for accept in (DICOM_ANY, "multipart/related; type=application/dicom; transfer-syntax=*"):
        response = http.get(url_of(live_server, result), headers={"Accept": accept}, timeout=30)
        assert response.status_code == 200
        ((headers, body),) = split_multipart(response)
        syntax = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        assert part_type(headers) == f"application/dicom; transfer-syntax={syntax}"
        assert body == path.read_bytes()


def test_series_with_dicomweb_client_as_stored(
    dicomweb: DICOMwebClient, ct_series: Callable[..., list[IngestResult]]
) -> None:
    results = ct_series(2)
    st, se, _ = uids(results[0])
    datasets = dicomweb.retrieve_series(st, se, media_types=(("application/dicom", "*"),))
    assert sorted(ds.SOPInstanceUID for ds in datasets) == sorted(uids(r)[2] for r in results)


# --- the default and explicit transfer syntaxes --------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_jp2klossless.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "image_dfl.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "emri_small_RLE.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "examples_ybr_color.dcm",
        "JPGExtended.dcm",
    ],
)
def test_transcodes_to_explicit_vr_little_endian_with_the_same_pixels(
    dicomweb: DICOMwebClient, store: Store, name: str
) -> None:
    path = shipped_file(name)
    (result,) = store([path])
    original = pydicom.dcmread(path)
    ds = dicomweb.retrieve_instance(
        *uids(result), media_types=(("application/dicom", EXPLICIT_LE),)
    )
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert ds.SOPInstanceUID == original.SOPInstanceUID  # no new UID on conversion
    assert ds.PatientName == original.PatientName
    assert np.array_equal(ds.pixel_array, original.pixel_array)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm"])
def test_no_transfer_syntax_means_explicit_vr_little_endian(
    http: requests.Session, live_server: Any, store: Store, name: str
) -> None:
    """PS3.18 8.7.3.4: the default for application/dicom."""
    path = shipped_file(name)
    (result,) = store([path])
    response = http.get(
        url_of(live_server, result),
        headers={"Accept": 'multipart/related; type="application/dicom"'},
        timeout=30,
    )
    ((headers, body),) = split_multipart(response)
    assert part_type(headers) == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    ds = pydicom.dcmread(BytesIO(body))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(ds.pixel_array, pydicom.dcmread(path).pixel_array)


def test_dicomweb_client_study_retrieve_without_syntax_gets_explicit_vr_little_endian(
    dicomweb: DICOMwebClient, store: Store
) -> None:
    path = shipped_file("MR_small_jp2klossless.dcm")
    (result,) = store([path])
    (ds,) = dicomweb.retrieve_study(uids(result)[0])
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE


def test_no_transfer_syntax_sends_lossy_compression_as_received(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    """PS3.18 8.7.3.4: lossy compressed pixel data may be returned as they are."""
    path = shipped_file("SC_rgb_jpeg_dcmtk.dcm")
    (result,) = store([path])
    response = http.get(
        url_of(live_server, result),
        headers={"Accept": 'multipart/related; type="application/dicom"'},
        timeout=30,
    )
    ((headers, body),) = split_multipart(response)
    assert part_type(headers) == "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50"
    assert body == path.read_bytes()


@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_star_never_sends_implicit_or_big_endian(
    http: requests.Session, live_server: Any, store: Store, name: str
) -> None:
    """PS3.18 8.7.3: those two syntaxes are not used with web services."""
    path = shipped_file(name)
    (result,) = store([path])
    response = http.get(url_of(live_server, result), headers={"Accept": DICOM_ANY}, timeout=30)
    ((headers, body),) = split_multipart(response)
    assert part_type(headers) == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    ds = pydicom.dcmread(BytesIO(body))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(ds.pixel_array, pydicom.dcmread(path).pixel_array)
    assert "Content-Length" not in response.headers  # converted: length unknown beforehand


@pytest.mark.parametrize("target", ["1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90"])
def test_transcodes_to_a_lossless_compressed_syntax(
    dicomweb: DICOMwebClient, ct_series: Callable[..., list[IngestResult]], target: str
) -> None:
    (result,) = ct_series(1)
    ds = dicomweb.retrieve_instance(*uids(result), media_types=(("application/dicom", target),))
    assert ds.file_meta.TransferSyntaxUID == target
    original = pydicom.dcmread(BytesIO(stored_bytes(uids(result)[2])))
    assert np.array_equal(ds.pixel_array, original.pixel_array)


def test_each_instance_gets_the_first_syntax_it_can_be_sent_in(
    http: requests.Session, live_server: Any, store: Store, hospital: Hospital
) -> None:
    """Parts may differ (PS3.18 8.7.8): an SR cannot be RLE, so it takes the next choice."""
    image = pydicom.dcmread(shipped_file("CT_small.dcm"))
    report = pydicom.dcmread(shipped_file("test-SR.dcm"))
    report.StudyInstanceUID = image.StudyInstanceUID
    report.PatientID = image.PatientID
    report.PatientName = image.PatientName
    store([image, report])
    accept = (
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.5, '
        f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT_LE}; q=0.5'
    )
    response = http.get(
        f"{live_server.url}/dicomweb/studies/{image.StudyInstanceUID}",
        headers={"Accept": accept},
        timeout=30,
    )
    assert response.status_code == 200
    kinds = {
        pydicom.dcmread(BytesIO(body)).Modality: part_type(headers)
        for headers, body in split_multipart(response)
    }
    assert kinds == {
        "CT": "application/dicom; transfer-syntax=1.2.840.10008.1.2.5",
        "SR": f"application/dicom; transfer-syntax={EXPLICIT_LE}",
    }


# --- packaging -----------------------------------------------------------------------------


def test_single_part_application_dicom_for_one_instance(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    path = shipped_file("MR_small_RLE.dcm")
    (result,) = store([path])
    response = http.get(
        url_of(live_server, result),
        headers={"Accept": "application/dicom; transfer-syntax=*"},
        timeout=30,
    )
    assert response.status_code == 200
    assert (
        response.headers["Content-Type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.5"
    )
    assert response.content == path.read_bytes()
    assert int(response.headers["Content-Length"]) == path.stat().st_size


def test_single_part_for_several_instances_is_406(
    http: requests.Session, live_server: Any, ct_series: Callable[..., list[IngestResult]]
) -> None:
    results = ct_series(2)
    st, se, _ = uids(results[0])
    response = http.get(
        f"{live_server.url}/dicomweb/studies/{st}/series/{se}",
        headers={"Accept": "application/dicom"},
        timeout=30,
    )
    assert response.status_code == 406
    assert 'multipart/related; type="application/dicom"' in response.json()["error"]


@pytest.mark.parametrize("accept", ["*/*", "", "multipart/related", "multipart/*"])
def test_any_media_type_gets_multipart_dicom(
    http: requests.Session,
    live_server: Any,
    ct_series: Callable[..., list[IngestResult]],
    accept: str,
) -> None:
    (result,) = ct_series(1)
    response = http.get(url_of(live_server, result), headers={"Accept": accept}, timeout=30)
    assert response.status_code == 200
    ((headers, body),) = split_multipart(response)
    assert part_type(headers) == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    assert body == stored_bytes(uids(result)[2])


def test_accept_query_parameter(http: requests.Session, live_server: Any, store: Store) -> None:
    """PS3.18 8.3.3.1: ``accept`` in the query string stands for the Accept header."""
    path = shipped_file("MR_small_RLE.dcm")
    (result,) = store([path])
    response = http.get(
        url_of(live_server, result),
        params={"accept": DICOM_ANY},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    ((_, body),) = split_multipart(response)
    assert body == path.read_bytes()


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("syntax", "why"),
    [
        ("1.2.3.4.5", "unknown"),
        ("1.2.840.10008.1.2.4.50", "lossy: never encoded"),
        ("1.2.840.10008.1.2.4.80", "no JPEG-LS encoder"),
        ("1.2.840.10008.1.2", "implicit: not for web services"),
    ],
)
def test_a_syntax_carina_cannot_produce_is_406_naming_what_it_can(
    http: requests.Session,
    live_server: Any,
    ct_series: Callable[..., list[IngestResult]],
    syntax: str,
    why: str,
) -> None:
    (result,) = ct_series(1)
    response = http.get(
        url_of(live_server, result),
        headers={
            "Accept": f'multipart/related; type="application/dicom"; transfer-syntax={syntax}'
        },
        timeout=30,
    )
    assert response.status_code == 406, why
    message = response.json()["error"]
    assert syntax in message
    assert f"It can send it as: {EXPLICIT_LE} (Explicit VR Little Endian)" in message
    assert "1.2.840.10008.1.2.5 (RLE Lossless)" in message
    assert retrieve_events() == []


def test_a_media_type_other_than_dicom_is_406(
    http: requests.Session, live_server: Any, ct_series: Callable[..., list[IngestResult]]
) -> None:
    (result,) = ct_series(1)
    response = http.get(url_of(live_server, result), headers={"Accept": "image/png"}, timeout=30)
    assert response.status_code == 406
    assert "application/dicom" in response.json()["error"]


def test_unknown_and_other_hospitals_uids_are_404(
    outsider_dicomweb: DICOMwebClient,
    http: requests.Session,
    live_server: Any,
    ct_series: Callable[..., list[IngestResult]],
) -> None:
    (result,) = ct_series(1)
    st, se, sop = uids(result)
    for call in (
        lambda: outsider_dicomweb.retrieve_study(st),
        lambda: outsider_dicomweb.retrieve_series(st, se),
        lambda: outsider_dicomweb.retrieve_instance(st, se, sop),
    ):
        with pytest.raises(requests.HTTPError) as failure:
            call()
        assert failure.value.response.status_code == 404
    response = http.get(f"{live_server.url}/dicomweb/studies/1.2.3.999", timeout=30)
    assert response.status_code == 404
    assert "No study 1.2.3.999" in response.json()["error"]
    response = http.get(f"{live_server.url}/dicomweb/studies/{st}/series/1.2.3", timeout=30)
    assert response.status_code == 404
    assert retrieve_events() == []


def test_the_other_hospital_reads_its_own_copy(
    outsider_dicomweb: DICOMwebClient, store: Store, other_hospital: Hospital
) -> None:
    path = shipped_file("CT_small.dcm")
    (result,) = store([path], hospital=other_hospital)
    ds = outsider_dicomweb.retrieve_instance(*uids(result))
    assert ds.SOPInstanceUID == pydicom.dcmread(path).SOPInstanceUID


# --- audit and HEAD -----------------------------------------------------------------


def test_one_audit_event_per_request(
    dicomweb: DICOMwebClient, ct_series: Callable[..., list[IngestResult]], hospital: Hospital
) -> None:
    results = ct_series(3, patient_id="AUDIT1")
    st, se, sop = uids(results[0])
    dicomweb.retrieve_study(st)
    dicomweb.retrieve_instance(st, se, sop)
    first, second = retrieve_events()
    assert (first.object_type, first.object_uid, first.count) == ("study", st, 3)
    assert (second.object_type, second.object_uid, second.count) == ("instance", sop, 1)
    assert first.actor == "reader" and first.patient_id == "AUDIT1"
    assert first.hospital == hospital
    assert "3 instance(s)" in first.detail


def test_head_sends_the_headers_only(
    http: requests.Session, live_server: Any, ct_series: Callable[..., list[IngestResult]]
) -> None:
    (result,) = ct_series(1)
    response = http.head(url_of(live_server, result), headers={"Accept": DICOM_ANY}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/related")
    assert response.content == b""
    assert retrieve_events() == []
