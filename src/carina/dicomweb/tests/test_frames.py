"""WADO-RS Retrieve Frames: native or as stored, one part per frame, in the form OHIF's
image loader parses (exact ``Content-Type:`` part header, transfer syntax in it, 200)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.encaps import get_frame

from carina.archive.ingest.pipeline import IngestResult
from carina.audit.models import Action, AuditEvent
from carina.core.testing import shipped_file
from carina.dicomweb.tests.test_retrieve import (
    EXPLICIT_LE,
    Store,
    part_type,
    retrieve_events,
    split_multipart,
    uids,
    url_of,
)

pytestmark = pytest.mark.django_db(transaction=True)

#: What OHIF 3.13 sends for every frame, with omitQuotationForMultipartRequest on and off.
OHIF_UNQUOTED = "multipart/related; type=application/octet-stream; transfer-syntax=*"
OHIF_QUOTED = 'multipart/related; type="application/octet-stream"; transfer-syntax="*"'
NATIVE = f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"


def native_frames(name: str) -> list[bytes]:
    """The frames of a shipped file as pydicom decodes them, as little endian bytes."""
    ds = pydicom.dcmread(shipped_file(name))
    array = ds.pixel_array
    frames = array if int(ds.get("NumberOfFrames") or 1) > 1 else array[np.newaxis]
    return [f.astype(f.dtype.newbyteorder("<")).tobytes() for f in frames]


def stored_frames(name: str) -> list[bytes]:
    ds = pydicom.dcmread(shipped_file(name))
    count = int(ds.get("NumberOfFrames") or 1)
    return [get_frame(ds.PixelData, i, number_of_frames=count) for i in range(count)]


# --- OHIF ----------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [OHIF_UNQUOTED, OHIF_QUOTED])
@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("examples_ybr_color.dcm", "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"),
        ("emri_small_RLE.dcm", "image/dicom-rle; transfer-syntax=1.2.840.10008.1.2.5"),
        ("MR_small_jpeg_ls_lossless.dcm", "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"),
        ("MR_small_jp2klossless.dcm", "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"),
    ],
)
def test_ohif_gets_compressed_frames_as_stored(
    http: requests.Session,
    live_server: Any,
    store: Store,
    accept: str,
    name: str,
    content_type: str,
) -> None:
    (result,) = store([shipped_file(name)])
    response = http.get(
        url_of(live_server, result, "frames/1"), headers={"Accept": accept}, timeout=30
    )
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    ((headers, body),) = split_multipart(response)
    assert headers[0] == f"Content-Type: {content_type}"
    assert body == stored_frames(name)[0]


@pytest.mark.parametrize("accept", [OHIF_UNQUOTED, OHIF_QUOTED])
def test_ohif_gets_uncompressed_frames_as_explicit_little_endian(
    http: requests.Session,
    live_server: Any,
    ct_series: Callable[..., list[IngestResult]],
    accept: str,
) -> None:
    (result,) = ct_series(1)
    response = http.get(
        url_of(live_server, result, "frames/1"), headers={"Accept": accept}, timeout=30
    )
    assert response.status_code == 200
    ((headers, body),) = split_multipart(response)
    assert part_type(headers) == NATIVE
    assert len(body) == 128 * 128 * 2


@pytest.mark.parametrize(
    "name", ["MR_small_implicit.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm"]
)
def test_uncompressed_frames_are_always_little_endian(
    http: requests.Session, live_server: Any, store: Store, name: str
) -> None:
    """Implicit VR, big endian and deflated objects give the same native little endian
    bytes (PS3.18 8.7.3.3.1), labelled Explicit VR Little Endian."""
    (result,) = store([shipped_file(name)])
    response = http.get(
        url_of(live_server, result, "frames/1"), headers={"Accept": OHIF_UNQUOTED}, timeout=30
    )
    ((headers, body),) = split_multipart(response)
    assert part_type(headers) == NATIVE
    assert body == native_frames(name)[0]


# --- dicomweb-client -----------------------------------------------------------------------


def test_frame_list_of_a_native_multiframe(dicomweb: DICOMwebClient, store: Store) -> None:
    (result,) = store([shipped_file("emri_small.dcm")])
    frames = dicomweb.retrieve_instance_frames(
        *uids(result),
        frame_numbers=[1, 3, 10],
        media_types=(("application/octet-stream", EXPLICIT_LE),),
    )
    expected = native_frames("emri_small.dcm")
    assert frames == [expected[0], expected[2], expected[9]]


@pytest.mark.parametrize(
    "name", ["emri_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm", "emri_small_big_endian.dcm"]
)
def test_frames_decompressed_on_request(dicomweb: DICOMwebClient, store: Store, name: str) -> None:
    (result,) = store([shipped_file(name)])
    frames = dicomweb.retrieve_instance_frames(
        *uids(result),
        frame_numbers=[2, 5],
        media_types=(("application/octet-stream", EXPLICIT_LE),),
    )
    expected = native_frames(name)
    assert frames == [expected[1], expected[4]]


def test_compressed_frames_as_stored_with_an_image_media_type(
    dicomweb: DICOMwebClient, store: Store
) -> None:
    (result,) = store([shipped_file("emri_small_RLE.dcm")])
    frames = dicomweb.retrieve_instance_frames(
        *uids(result),
        frame_numbers=[1, 2],
        media_types=(("image/dicom-rle", "1.2.840.10008.1.2.5"),),
    )
    assert frames == stored_frames("emri_small_RLE.dcm")[:2]


def test_jpeg_frames_of_a_multiframe_in_order(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    (result,) = store([shipped_file("examples_ybr_color.dcm")])
    response = http.get(
        url_of(live_server, result, "frames/30,1,15"),
        headers={"Accept": 'multipart/related; type="image/jpeg"'},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith('multipart/related; type="image/jpeg"')
    expected = stored_frames("examples_ybr_color.dcm")
    parts = split_multipart(response)
    assert [body for _, body in parts] == [expected[29], expected[0], expected[14]]
    assert all(
        part_type(h) == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50" for h, _ in parts
    )


def test_lossy_frames_without_transfer_syntax_are_sent_as_stored(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    """PS3.18 8.7.3.3: no transfer syntax means uncompressed, unless the object exists only
    in lossy form; a lossless one is decompressed."""
    (jpeg,) = store([shipped_file("SC_rgb_jpeg_dcmtk.dcm")])
    (rle,) = store([shipped_file("MR_small_RLE.dcm")])
    accept = {"Accept": 'multipart/related; type="*/*"'}
    ((headers, body),) = split_multipart(
        http.get(url_of(live_server, jpeg, "frames/1"), headers=accept, timeout=30)
    )
    assert part_type(headers) == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"
    assert body[:2] == b"\xff\xd8"
    ((headers, body),) = split_multipart(
        http.get(url_of(live_server, rle, "frames/1"), headers=accept, timeout=30)
    )
    assert part_type(headers) == NATIVE
    assert body == native_frames("MR_small_RLE.dcm")[0]
    # asked for uncompressed by name, the JPEG is decompressed
    octets = {"Accept": 'multipart/related; type="application/octet-stream"'}
    ((headers, body),) = split_multipart(
        http.get(url_of(live_server, jpeg, "frames/1"), headers=octets, timeout=30)
    )
    assert part_type(headers) == NATIVE
    assert len(body) == 100 * 100 * 3


# --- single part ---------------------------------------------------------------------------


def test_single_part_frames(http: requests.Session, live_server: Any, store: Store) -> None:
    """OHIF also reads a frame sent alone: the body is the frame, its type in Content-Type."""
    (jpeg,) = store([shipped_file("SC_rgb_jpeg_dcmtk.dcm")])
    (native,) = store([shipped_file("CT_small.dcm")])
    response = http.get(
        url_of(live_server, jpeg, "frames/1"), headers={"Accept": "image/jpeg"}, timeout=30
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"
    assert response.content == stored_frames("SC_rgb_jpeg_dcmtk.dcm")[0]
    response = http.get(
        url_of(live_server, native, "frames/1"),
        headers={"Accept": "application/octet-stream"},
        timeout=30,
    )
    assert response.headers["Content-Type"] == NATIVE
    assert response.content == native_frames("CT_small.dcm")[0]
    assert int(response.headers["Content-Length"]) == 128 * 128 * 2
    # several frames cannot be one part
    (multi,) = store([shipped_file("emri_small.dcm")])
    response = http.get(
        url_of(live_server, multi, "frames/1,2"),
        headers={"Accept": "application/octet-stream"},
        timeout=30,
    )
    assert response.status_code == 406


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", ["0", "abc", "1,,2", "-1", "1.5", "2,0"])
def test_a_malformed_frame_list_is_400(
    http: requests.Session, live_server: Any, store: Store, frames: str
) -> None:
    (result,) = store([shipped_file("emri_small.dcm")])
    response = http.get(url_of(live_server, result, f"frames/{frames}"), timeout=30)
    assert response.status_code == 400
    assert "frame numbers from 1" in response.json()["error"]


def test_a_frame_beyond_the_last_is_404(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    (result,) = store([shipped_file("emri_small.dcm")])
    response = http.get(url_of(live_server, result, "frames/1,11"), timeout=30)
    assert response.status_code == 404
    assert response.json()["error"] == (
        f"Frame 11 does not exist: instance {uids(result)[2]} has 10 frames (numbered from 1)."
    )
    assert retrieve_events() == []


def test_an_object_without_pixel_data_has_no_frames(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    (result,) = store([shipped_file("test-SR.dcm")])
    response = http.get(url_of(live_server, result, "frames/1"), timeout=30)
    assert response.status_code == 404
    assert "no pixel data" in response.json()["error"]


def test_a_form_carina_cannot_produce_is_406(
    http: requests.Session, live_server: Any, ct_series: Callable[..., list[IngestResult]]
) -> None:
    (result,) = ct_series(1)
    response = http.get(
        url_of(live_server, result, "frames/1"),
        headers={
            "Accept": 'multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.50'
        },
        timeout=30,
    )
    assert response.status_code == 406
    assert (
        'It can send: multipart/related; type="application/octet-stream"; '
        f"transfer-syntax={EXPLICIT_LE}." in response.json()["error"]
    )


def test_another_hospitals_frames_are_404(outsider_dicomweb: DICOMwebClient, store: Store) -> None:
    (result,) = store([shipped_file("CT_small.dcm")])
    with pytest.raises(requests.HTTPError) as failure:
        outsider_dicomweb.retrieve_instance_frames(*uids(result), frame_numbers=[1])
    assert failure.value.response.status_code == 404


def test_one_audit_event_counting_the_frames(dicomweb: DICOMwebClient, store: Store) -> None:
    (result,) = store([shipped_file("emri_small_RLE.dcm")])
    dicomweb.retrieve_instance_frames(*uids(result), frame_numbers=[1, 2, 3])
    (event,) = retrieve_events()
    assert isinstance(event, AuditEvent)
    assert (event.object_type, event.object_uid, event.count) == ("instance", uids(result)[2], 3)
    assert "frame(s) 1,2,3" in event.detail


OHIF_FRAMES_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"


def test_frame_fetches_of_a_study_are_one_audit_event_per_viewing(
    live_server: Any, http: requests.Session, ct_series: Any, hospital: Any
) -> None:
    """A viewer fetches every frame of a series one request at a time: the audit trail gets
    one event for the user's frame fetches of the study (docs/audit.md), not one per image;
    another user's fetches, or another study's, are their own events."""
    first = ct_series(4)
    second = ct_series(2)

    def fetch(result: Any) -> None:
        response = http.get(
            f"{live_server.url}/dicomweb/studies/{result.study_instance_uid}/series/"
            f"{result.series_instance_uid}/instances/{result.sop_instance_uid}/frames/1",
            headers={
                "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"
            },
        )
        assert response.status_code == 200

    events = AuditEvent.objects.for_hospital(hospital).filter(action=Action.WEB_RETRIEVE)
    for result in first:
        fetch(result)
    assert events.count() == 1
    event = events.get()
    assert event.object_uid == first[0].sop_instance_uid
    assert event.actor == "reader"
    assert "covered by this event" in event.detail
    fetch(second[0])
    assert events.count() == 2
