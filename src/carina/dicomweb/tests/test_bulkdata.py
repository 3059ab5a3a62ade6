"""WADO-RS Retrieve Bulkdata: the values behind the BulkDataURIs of an instance's metadata,
raw (single part, what OHIF's ``singlepart: 'bulkdata'`` reads) or multipart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRBigEndian

from carina.archive.ingest.pipeline import IngestResult
from carina.archive.models import Instance
from carina.core.testing import make_ct_slice, shipped_file
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

NATIVE = f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"


def bulk_uris(result: IngestResult) -> dict[str, str]:
    """Tag path → BulkDataURI path, from the instance's stored DICOM JSON."""
    found: dict[str, str] = {}

    def walk(data_set: dict[str, Any]) -> None:
        for element in data_set.values():
            if "BulkDataURI" in element:
                found[element["BulkDataURI"]] = element["vr"]
            for item in element.get("Value", []) if element.get("vr") == "SQ" else []:
                walk(item)

    walk(Instance.objects.all_hospitals().get(pk=result.instance_id).metadata)
    return found


def with_document(study_uid: str, series_uid: str) -> Dataset:
    """A CT slice carrying bulk data besides its pixels: an encapsulated document value and,
    inside a sequence item, a private OB value (both above the 1 KiB bulk data threshold)."""
    ds = make_ct_slice(study_uid=study_uid, series_uid=series_uid, index=0, size=16)
    ds.EncapsulatedDocument = bytes(range(256)) * 20
    item = Dataset()
    item.add_new(0x00091010, "LO", "CARINA TEST")
    item.add_new(0x00091011, "OB", b"\x01\x02\x03\x04" * 600)
    ds.ReferencedImageSequence = [Dataset(), item]
    return ds


# --- pixel data ----------------------------------------------------------------------------


def test_a_plain_get_of_native_pixel_data_returns_the_raw_value(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    """OHIF with ``singlepart: 'bulkdata'``: no multipart Accept, the body is the value."""
    path = shipped_file("emri_small.dcm")
    (result,) = store([path])
    assert bulk_uris(result)["7FE00010"] == "OW"
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/octet-stream"}):
        response = http.get(
            url_of(live_server, result, "bulkdata/7FE00010"), headers=headers, timeout=30
        )
        assert response.status_code == 200
        assert response.headers["Content-Type"] == NATIVE
        assert response.content == pydicom.dcmread(path).PixelData
        assert int(response.headers["Content-Length"]) == len(response.content)


def test_dicomweb_client_retrieve_bulkdata(
    dicomweb: DICOMwebClient, live_server: Any, store: Store
) -> None:
    path = shipped_file("CT_small.dcm")
    (result,) = store([path])
    (value,) = dicomweb.retrieve_bulkdata(url_of(live_server, result, "bulkdata/7FE00010"))
    assert value == pydicom.dcmread(path).PixelData


def test_compressed_pixel_data_decompressed_whole_by_default(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    """No transfer syntax: uncompressed little endian (PS3.18 8.7.3.3), all frames at once."""
    path = shipped_file("emri_small_RLE.dcm")
    (result,) = store([path])
    response = http.get(
        url_of(live_server, result, "bulkdata/7FE00010"),
        headers={"Accept": 'multipart/related; type="application/octet-stream"'},
        timeout=30,
    )
    ((headers, body),) = split_multipart(response)
    assert part_type(headers) == NATIVE
    array = pydicom.dcmread(path).pixel_array
    assert body == array.astype("<u2").tobytes()


def test_compressed_pixel_data_as_stored_is_one_part_per_frame(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    """PS3.18 8.7.3.3.2: compressed multi-frame pixel data go as individual frames."""
    path = shipped_file("emri_small_RLE.dcm")
    (result,) = store([path])
    response = http.get(
        url_of(live_server, result, "bulkdata/7FE00010"),
        headers={"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"},
        timeout=30,
    )
    parts = split_multipart(response)
    ds = pydicom.dcmread(path)
    assert [body for _, body in parts] == [
        get_frame(ds.PixelData, i, number_of_frames=10) for i in range(10)
    ]
    assert {part_type(h) for h, _ in parts} == {
        "image/dicom-rle; transfer-syntax=1.2.840.10008.1.2.5"
    }


def test_lossy_pixel_data_of_one_frame_go_as_stored_in_a_plain_get(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    path = shipped_file("SC_rgb_jpeg_dcmtk.dcm")
    (result,) = store([path])
    response = http.get(url_of(live_server, result, "bulkdata/7FE00010"), timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"
    assert response.content == get_frame(pydicom.dcmread(path).PixelData, 0)


def test_big_endian_pixel_data_are_returned_little_endian(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    path = shipped_file("MR_small_bigendian.dcm")
    (result,) = store([path])
    response = http.get(url_of(live_server, result, "bulkdata/7FE00010"), timeout=30)
    assert response.content == pydicom.dcmread(path).pixel_array.astype("<i2").tobytes()


# --- other bulk data -----------------------------------------------------------------------


def test_other_bulk_values_by_their_tag_path(
    http: requests.Session,
    dicomweb: DICOMwebClient,
    live_server: Any,
    store: Store,
) -> None:
    ds = with_document("1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2")
    (result,) = store([ds])
    uris = bulk_uris(result)
    assert {"00420011", "00081140/1/00091011", "7FE00010"} <= set(uris)
    response = http.get(url_of(live_server, result, "bulkdata/00420011"), timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.content == ds.EncapsulatedDocument
    (nested,) = dicomweb.retrieve_bulkdata(
        url_of(live_server, result, "bulkdata/00081140/1/00091011")
    )
    assert nested == b"\x01\x02\x03\x04" * 600


def test_big_endian_words_are_swapped(
    http: requests.Session, live_server: Any, store: Store
) -> None:
    """Uncompressed bulk data are little endian (PS3.18 8.7.3.3.1)."""
    ds = make_ct_slice(
        study_uid="1.2.826.0.1.3680043.8.498.3",
        series_uid="1.2.826.0.1.3680043.8.498.4",
        index=0,
        size=16,
    )
    words = np.arange(1024, dtype=">u2")
    ds.add_new(0x60003000, "OW", words.tobytes())  # overlay data, big endian words
    ds.add_new(0x60000010, "US", 32)
    ds.add_new(0x60000011, "US", 32)
    pixels = ds.pixel_array
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.PixelData = pixels.astype(">u2").tobytes()
    (result,) = store([ds])
    response = http.get(url_of(live_server, result, "bulkdata/60003000"), timeout=30)
    assert response.status_code == 200
    assert response.content == words.astype("<u2").tobytes()


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["00100010", "7FE00011", "junk", "00081140/7/00091011", "00081140"]
)
def test_a_path_the_metadata_does_not_announce_is_404(
    http: requests.Session, live_server: Any, store: Store, path: str
) -> None:
    ds = with_document("1.2.826.0.1.3680043.8.498.5", "1.2.826.0.1.3680043.8.498.6")
    (result,) = store([ds])
    response = http.get(url_of(live_server, result, f"bulkdata/{path}"), timeout=30)
    assert response.status_code == 404
    assert "use the BulkDataURI values of its metadata" in response.json()["error"]
    assert retrieve_events() == []


def test_no_pixel_data_in_a_report(http: requests.Session, live_server: Any, store: Store) -> None:
    (result,) = store([shipped_file("test-SR.dcm")])
    response = http.get(url_of(live_server, result, "bulkdata/7FE00010"), timeout=30)
    assert response.status_code == 404


def test_an_unacceptable_media_type_is_406(
    http: requests.Session, live_server: Any, ct_series: Callable[..., list[IngestResult]]
) -> None:
    (result,) = ct_series(1)
    response = http.get(
        url_of(live_server, result, "bulkdata/7FE00010"),
        headers={"Accept": "application/dicom+json"},
        timeout=30,
    )
    assert response.status_code == 406
    assert "application/octet-stream" in response.json()["error"]


def test_another_hospitals_bulk_data_is_404(
    outsider_dicomweb: DICOMwebClient, live_server: Any, store: Store
) -> None:
    (result,) = store([shipped_file("CT_small.dcm")])
    with pytest.raises(requests.HTTPError) as failure:
        outsider_dicomweb.retrieve_bulkdata(url_of(live_server, result, "bulkdata/7FE00010"))
    assert failure.value.response.status_code == 404


def test_one_audit_event(http: requests.Session, live_server: Any, store: Store) -> None:
    (result,) = store([shipped_file("CT_small.dcm")])
    http.get(url_of(live_server, result, "bulkdata/7FE00010"), timeout=30)
    (event,) = retrieve_events()
    assert (event.object_type, event.object_uid, event.count) == ("instance", uids(result)[2], 1)
    assert event.detail.startswith("bulk data 7FE00010")
