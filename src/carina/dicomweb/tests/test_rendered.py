"""WADO-RS rendered resources and thumbnails (PS3.18 10.4.1.1.3, 10.4.1.1.4, 8.3.5.1): what a
browser, a report or OHIF's work list gets back, the rendition cache, and the audit trail."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import requests
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import UID, generate_uid

from carina.archive.ingest.pipeline import IngestResult, IngestStatus
from carina.archive.pixels.render import PNG, Rendering, render_frame
from carina.archive.pixels.tests.test_render import REDIS_URL, ct_gradient, linear_window
from carina.audit.models import Action, AuditEvent
from carina.core.testing import make_ct_slice, shipped_file, write_series
from carina.dicomweb.tests.conftest import token_for
from carina.tenancy.models import DuplicatePolicy, Hospital

pytestmark = pytest.mark.django_db(transaction=True)

Store = Callable[..., list[IngestResult]]
MULTIPART_JPEG = 'multipart/related; type="image/jpeg"'


@pytest.fixture(autouse=True)
def file_cache(settings: Any, tmp_path: Path) -> Path:
    """Each test has its own rendition cache folder (embedded mode)."""
    settings.CARINA_CACHE_URL = ""
    settings.CARINA_CACHE_DIR = tmp_path / "cache"
    return tmp_path / "cache" / "renditions"


def url(base: str, result: IngestResult, level: str = "instance", suffix: str = "") -> str:
    path = f"{base}/dicomweb/studies/{result.study_instance_uid}"
    if level in ("series", "instance"):
        path += f"/series/{result.series_instance_uid}"
    if level == "instance":
        path += f"/instances/{result.sop_instance_uid}"
    return path + suffix


def image_of(response: requests.Response) -> Image.Image:
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def parts_of(response: requests.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related answer as (headers, body)."""
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/related;"), content_type
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip('"')
    body = response.content
    assert body.startswith(f"--{boundary}\r\n".encode())
    assert body.endswith(f"\r\n--{boundary}--".encode())
    chunks = body[len(f"--{boundary}\r\n") : -len(f"\r\n--{boundary}--")].split(
        f"\r\n--{boundary}\r\n".encode()
    )
    parts = []
    for chunk in chunks:
        head, _, content = chunk.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append((headers, content))
    return parts


def retrieves(hospital: Hospital) -> int:
    return AuditEvent.objects.for_hospital(hospital).filter(action=Action.WEB_RETRIEVE).count()


def error_of(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"] == "application/json"
    return str(response.json()["error"])


def sr_in(study_uid: str, series_number: int = 1) -> Dataset:
    """A structured report (no pixel data) in study ``study_uid``."""
    ds = make_ct_slice(study_uid=study_uid, series_uid=generate_uid(), index=0)
    for keyword in (
        "PixelData",
        "Rows",
        "Columns",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "RescaleIntercept",
        "RescaleSlope",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "SliceThickness",
    ):
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.88.11")
    ds.Modality = "SR"
    ds.SeriesNumber = series_number
    return ds


#: A PDF of odd length: stored with a padding byte that must not come back.
PDF = b"%PDF-1.4\n" + b"% a report\n" * 300 + b"%%EOF\n"


def pdf_in(study_uid: str) -> Dataset:
    """An Encapsulated PDF instance (PS3.3 A.45.1) in study ``study_uid``."""
    ds = sr_in(study_uid, series_number=3)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.104.1")
    ds.Modality = "DOC"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = PDF + b"\0"
    ds.EncapsulatedDocumentLength = len(PDF)
    return ds


# -- Rendered instance: media types and parameters -------------------------------------------


def test_instance_rendered_is_a_jpeg_of_the_image(
    live_server: Any, http: requests.Session, ct_series: Store, hospital: Hospital
) -> None:
    [ct] = ct_series(1)
    before = retrieves(hospital)
    response = http.get(
        url(live_server.url, ct, suffix="/rendered"), headers={"Accept": "image/jpeg"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    image = image_of(response)
    assert (image.format, image.size, image.mode) == ("JPEG", (128, 128), "L")
    assert np.asarray(image).std() > 10  # an image, not a flat square
    assert retrieves(hospital) == before + 1
    event = AuditEvent.objects.for_hospital(hospital).latest("occurred_at")
    assert (event.object_uid, event.actor, event.patient_id) == (
        ct.sop_instance_uid,
        "reader",
        "PID001",
    )


def test_png_by_accept_header_or_accept_parameter(
    live_server: Any, http: requests.Session, ct_series: Store
) -> None:
    [ct] = ct_series(1)
    by_header = http.get(
        url(live_server.url, ct, suffix="/rendered"), headers={"Accept": "image/png"}
    )
    by_parameter = http.get(url(live_server.url, ct, suffix="/rendered?accept=image/png"))
    for response in (by_header, by_parameter):
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        assert image_of(response).format == "PNG"
    anything = http.get(url(live_server.url, ct, suffix="/rendered"), headers={"Accept": "*/*"})
    assert anything.headers["Content-Type"] == "image/jpeg"


def test_a_media_type_carina_does_not_render_is_406(
    live_server: Any, http: requests.Session, ct_series: Store
) -> None:
    [ct] = ct_series(1)
    response = http.get(
        url(live_server.url, ct, suffix="/rendered"), headers={"Accept": "image/gif"}
    )
    message = error_of(response, 406)
    assert "image/gif" in message and "image/jpeg" in message


def test_window_parameter_sets_the_grey_levels(
    live_server: Any, http: requests.Session, store: Store
) -> None:
    [ct] = store([ct_gradient()])
    response = http.get(
        url(live_server.url, ct, suffix="/rendered?window=-500,600,linear"),
        headers={"Accept": "image/png"},
    )
    pixels = np.asarray(image_of(response))
    for column in (0, 15, 30, 40, 50):
        assert pixels[7, column] == linear_window(column * 16 - 1024, -500, 600)


def test_viewport_and_quality(live_server: Any, http: requests.Session, ct_series: Store) -> None:
    [ct] = ct_series(1)
    small = http.get(url(live_server.url, ct, suffix="/rendered?viewport=64,32"))
    assert image_of(small).size == (32, 32)  # a square image fits a 64×32 box as 32×32
    low = http.get(url(live_server.url, ct, suffix="/rendered?quality=5"))
    high = http.get(url(live_server.url, ct, suffix="/rendered?quality=100"))
    assert len(low.content) < len(high.content)
    ignored = http.get(url(live_server.url, ct, suffix="/rendered?annotation=patient"))
    assert ignored.status_code == 200


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("window=abc", "window"),
        ("window=40", "window"),
        ("window=40,0", "window"),
        ("window=40,400,cubic", "window"),
        ("viewport=0,0", "viewport"),
        ("viewport=256", "viewport"),
        ("viewport=99999,10", "viewport"),
        ("quality=500", "quality"),
        ("quality=high", "quality"),
        ("viewport=10,10&viewport=20,20", "viewport"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    live_server: Any, http: requests.Session, ct_series: Store, query: str, parameter: str
) -> None:
    [ct] = ct_series(1)
    response = http.get(url(live_server.url, ct, suffix=f"/rendered?{query}"))
    assert error_of(response, 400).startswith(parameter)


def test_frames_that_do_not_exist_are_400(
    live_server: Any, http: requests.Session, ct_series: Store
) -> None:
    [ct] = ct_series(1)
    beyond = http.get(url(live_server.url, ct, suffix="/frames/2/rendered"))
    assert "has 1 frame" in error_of(beyond, 400)
    nonsense = http.get(url(live_server.url, ct, suffix="/frames/first/rendered"))
    assert "frame numbers" in error_of(nonsense, 400)
    zero = http.get(url(live_server.url, ct, suffix="/frames/0/thumbnail"))
    error_of(zero, 400)


def test_unknown_and_other_hospitals_objects_are_404(
    live_server: Any,
    http: requests.Session,
    ct_series: Store,
    outsider: Any,
    other_hospital: Hospital,
) -> None:
    [mine] = ct_series(1)
    [theirs] = ct_series(1, hospital=other_hospital)
    unknown = http.get(f"{live_server.url}/dicomweb/studies/1.2.3.999/rendered")
    assert "1.2.3.999" in error_of(unknown, 404)
    for suffix in ("/rendered", "/thumbnail", "/frames/1/rendered"):
        error_of(http.get(url(live_server.url, theirs, suffix=suffix)), 404)
    error_of(http.get(url(live_server.url, theirs, "series", "/thumbnail")), 404)
    outsider_session = requests.Session()
    outsider_session.headers["Authorization"] = f"Bearer {token_for(live_server.url, 'outsider')}"
    for level in ("study", "series", "instance"):
        error_of(outsider_session.get(url(live_server.url, mine, level, "/thumbnail")), 404)
    error_of(outsider_session.get(url(live_server.url, mine, "study", "/rendered")), 404)


# -- Multi-frame, series and study: multipart ------------------------------------------------


def test_multi_frame_instance_and_frames(
    live_server: Any, http: requests.Session, store: Store
) -> None:
    path = shipped_file("emri_small_RLE.dcm")
    [mr] = store([path])
    fifth = http.get(
        url(live_server.url, mr, suffix="/frames/5/rendered"), headers={"Accept": "image/png"}
    )
    with path.open("rb") as fp:
        assert fifth.content == render_frame(fp, 5, Rendering(PNG))
    first = http.get(url(live_server.url, mr, suffix="/rendered"), headers={"Accept": "image/png"})
    with path.open("rb") as fp:
        assert first.content == render_frame(fp, 1, Rendering(PNG))  # single part: frame 1

    two = url(live_server.url, mr, suffix="/frames/1,2/rendered")
    assert "multipart" in error_of(http.get(two, headers={"Accept": "image/jpeg"}), 406)
    parts = parts_of(http.get(two, headers={"Accept": MULTIPART_JPEG}))
    assert [h["Content-Location"].rsplit("/", 2)[-2] for h, _ in parts] == ["1", "2"]
    assert all(h["Content-Type"] == "image/jpeg" for h, _ in parts)
    assert [Image.open(io.BytesIO(body)).size for _, body in parts] == [(64, 64)] * 2

    every = http.get(
        url(live_server.url, mr, suffix="/rendered"), headers={"Accept": MULTIPART_JPEG}
    )
    assert len(parts_of(every)) == 10
    beyond = http.get(url(live_server.url, mr, suffix="/frames/11/rendered"))
    assert "has 10 frames" in error_of(beyond, 400)


def test_series_and_study_rendered_are_multipart(
    live_server: Any, http: requests.Session, ct_series: Store, store: Store, hospital: Hospital
) -> None:
    cts = ct_series(3)
    store([sr_in(cts[0].study_instance_uid, series_number=9)])  # left out: no image
    before = retrieves(hospital)
    series = http.get(url(live_server.url, cts[0], "series", "/rendered"))
    assert series.status_code == 200
    assert series.headers["Content-Type"].startswith(MULTIPART_JPEG)
    locations = [h["Content-Location"] for h, _ in parts_of(series)]
    assert [loc.split("/instances/")[1].split("/")[0] for loc in locations] == [
        ct.sop_instance_uid for ct in cts
    ]
    study = http.get(
        url(live_server.url, cts[0], "study", "/rendered"),
        headers={"Accept": 'multipart/related; type="image/png"'},
    )
    study_parts = parts_of(study)
    assert len(study_parts) == 3
    assert all(Image.open(io.BytesIO(body)).format == "PNG" for _, body in study_parts)
    assert retrieves(hospital) == before + 2  # one event per request, not per image

    single_only = http.get(
        url(live_server.url, cts[0], "series", "/rendered"), headers={"Accept": "image/jpeg"}
    )
    assert "PS3.18 10.4.4" in error_of(single_only, 406)


def test_compressed_and_colour_objects_render(
    live_server: Any, http: requests.Session, store: Store
) -> None:
    for name, mode, size in [
        ("SC_rgb_jpeg_dcmtk.dcm", "RGB", (100, 100)),
        ("MR_small_jp2klossless.dcm", "L", (64, 64)),
        ("examples_palette.dcm", "RGB", (800, 350)),
        ("US1_J2KR.dcm", "RGB", (640, 480)),
    ]:
        [result] = store([shipped_file(name)])
        response = http.get(url(live_server.url, result, suffix="/rendered"))
        assert response.status_code == 200, (name, response.text[:200])
        image = image_of(response)
        assert (image.mode, image.size) == (mode, size), name


def test_an_object_without_pixels_is_404_has_no_image(
    live_server: Any, http: requests.Session, ct_series: Store, store: Store
) -> None:
    [ct] = ct_series(1)
    [sr] = store([sr_in(ct.study_instance_uid)])
    for suffix in ("/rendered", "/thumbnail"):
        assert "has no image" in error_of(http.get(url(live_server.url, sr, suffix=suffix)), 404)
    assert "has no image" in error_of(
        http.get(url(live_server.url, sr, "series", "/thumbnail")), 404
    )


def test_an_encapsulated_pdf_is_rendered_as_pdf(
    live_server: Any, http: requests.Session, ct_series: Store, store: Store, hospital: Hospital
) -> None:
    assert len(PDF) % 2 == 1
    [ct] = ct_series(1)
    [doc] = store([pdf_in(ct.study_instance_uid)])
    before = retrieves(hospital)
    response = http.get(url(live_server.url, doc, suffix="/rendered"))  # as OHIF's PDF viewer
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.content == PDF
    assert retrieves(hospital) == before + 1
    jpeg = http.get(url(live_server.url, doc, suffix="/rendered"), headers={"Accept": "image/jpeg"})
    assert "application/pdf" in error_of(jpeg, 406)
    assert "has no image" in error_of(http.get(url(live_server.url, doc, suffix="/thumbnail")), 404)


# -- Thumbnails ------------------------------------------------------------------------------


def test_series_thumbnail_is_the_middle_image_as_ohif_asks(
    live_server: Any, http: requests.Session, store: Store, tmp_path: Path, hospital: Hospital
) -> None:
    paths = write_series(tmp_path / "ct", 5)
    results = store(reversed(paths))  # stored in reverse: the order is InstanceNumber's
    middle = results[2]  # InstanceNumber 3 of 5
    ohif = {"Accept": "image/jpeg"}
    before = retrieves(hospital)
    series = http.get(
        url(live_server.url, results[0], "series", "/thumbnail?viewport=256,256"), headers=ohif
    )
    assert series.status_code == 200
    assert series.headers["Content-Type"] == "image/jpeg"
    assert series.headers["Cache-Control"].startswith("private, max-age=")
    assert image_of(series).size == (256, 256)
    instance = http.get(
        url(live_server.url, middle, suffix="/thumbnail?viewport=256,256"), headers=ohif
    )
    assert instance.content == series.content  # InstanceNumber 3 of 5
    # Thumbnails are image fetches: one event covers a user's thumbnails of a study for a
    # while (carina.dicomweb.auditing.record_viewing).
    assert retrieves(hospital) == before + 1

    etag = series.headers["ETag"]
    again = http.get(
        url(live_server.url, results[0], "series", "/thumbnail?viewport=256,256"),
        headers={**ohif, "If-None-Match": etag},
    )
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)
    assert retrieves(hospital) == before + 1


def test_thumbnail_default_size_and_media_types(
    live_server: Any, http: requests.Session, store: Store
) -> None:
    [palette] = store([shipped_file("examples_palette.dcm")])
    thumbnail = http.get(url(live_server.url, palette, suffix="/thumbnail"))
    assert image_of(thumbnail).size == (128, 56)  # 800 × 350 fitted into 128 × 128
    png = http.get(
        url(live_server.url, palette, suffix="/thumbnail"), headers={"Accept": "image/png"}
    )
    assert image_of(png).format == "PNG"
    error_of(
        http.get(
            url(live_server.url, palette, suffix="/thumbnail"), headers={"Accept": "video/mp4"}
        ),
        406,
    )
    bad = http.get(url(live_server.url, palette, suffix="/thumbnail?viewport=0,0"))
    assert error_of(bad, 400).startswith("viewport")


def test_study_thumbnail_skips_series_without_images(
    live_server: Any, http: requests.Session, store: Store, tmp_path: Path
) -> None:
    study_uid = generate_uid()
    store([sr_in(study_uid, series_number=1)])
    cts = store(write_series(tmp_path / "ct", 3, study_uid=study_uid, extra={"SeriesNumber": 2}))
    study = http.get(url(live_server.url, cts[0], "study", "/thumbnail"))
    series = http.get(url(live_server.url, cts[0], "series", "/thumbnail"))
    assert study.status_code == 200
    assert study.content == series.content


def test_multi_frame_thumbnails(live_server: Any, http: requests.Session, store: Store) -> None:
    path = shipped_file("emri_small_RLE.dcm")
    [mr] = store([path])
    instance = http.get(
        url(live_server.url, mr, suffix="/thumbnail?viewport=64,64"),
        headers={"Accept": "image/png"},
    )
    frame = http.get(
        url(live_server.url, mr, suffix="/frames/5/thumbnail?viewport=64,64"),
        headers={"Accept": "image/png"},
    )
    with path.open("rb") as fp:
        expected = render_frame(fp, 5, Rendering(PNG))
    assert instance.content == frame.content == expected  # the middle of 10 frames


# -- The rendition cache ---------------------------------------------------------------------


def test_a_second_request_is_served_from_the_file_cache(
    live_server: Any, http: requests.Session, ct_series: Store, file_cache: Path
) -> None:
    [ct] = ct_series(1)
    thumbnail = url(live_server.url, ct, suffix="/thumbnail")
    first = http.get(thumbnail)
    [entry] = [p for p in file_cache.rglob("*") if p.is_file()]
    assert entry.read_bytes() == first.content
    entry.write_bytes(b"what the cache holds")  # a user would see this if it is served
    assert http.get(thumbnail).content == b"what the cache holds"

    default = http.get(url(live_server.url, ct, suffix="/rendered"))  # default preview: kept
    windowed = http.get(url(live_server.url, ct, suffix="/rendered?window=40,400"))  # not kept
    assert default.status_code == windowed.status_code == 200
    assert len([p for p in file_cache.rglob("*") if p.is_file()]) == 2
    # A preview scaled into a list's or a page's viewport is kept; a poster-sized one is not.
    preview = http.get(url(live_server.url, ct, suffix="/rendered?viewport=256,256"))
    poster = http.get(url(live_server.url, ct, suffix="/rendered?viewport=2048,2048"))
    assert preview.status_code == poster.status_code == 200
    assert len([p for p in file_cache.rglob("*") if p.is_file()]) == 3


@pytest.fixture
def redis_cache(settings: Any) -> Iterator[tuple[redis.Redis, str]]:
    prefix = f"carina-test-{uuid.uuid4().hex}:"
    settings.CARINA_CACHE_URL = REDIS_URL
    settings.CARINA_CACHE_PREFIX = prefix
    client = redis.Redis.from_url(REDIS_URL)
    yield client, prefix
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def test_a_second_request_is_served_from_redis(
    live_server: Any,
    http: requests.Session,
    ct_series: Store,
    redis_cache: tuple[redis.Redis, str],
    file_cache: Path,
) -> None:
    client, prefix = redis_cache
    [ct] = ct_series(1)
    thumbnail = url(live_server.url, ct, suffix="/thumbnail?viewport=256,256")
    first = http.get(thumbnail, headers={"Accept": "image/jpeg"})
    [key] = list(client.scan_iter(match=f"{prefix}*"))
    assert client.get(key) == first.content
    assert client.ttl(key) > 0  # entries expire
    client.set(key, b"what redis holds")
    assert http.get(thumbnail, headers={"Accept": "image/jpeg"}).content == b"what redis holds"
    assert not file_cache.exists()


def test_a_replaced_object_is_not_served_from_the_cache(
    live_server: Any, http: requests.Session, store: Store, file_cache: Path, hospital: Hospital
) -> None:
    hospital.duplicate_policy = DuplicatePolicy.KEEP_NEWEST
    hospital.save()
    study_uid, series_uid, sop_uid = generate_uid(), generate_uid(), generate_uid()

    def version(index: int) -> Dataset:
        return make_ct_slice(
            study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid, index=index
        )

    [ct] = store([version(0)])
    thumbnail = url(live_server.url, ct, suffix="/thumbnail")
    first = http.get(thumbnail)
    for entry in file_cache.rglob("*"):
        if entry.is_file():
            entry.write_bytes(b"stale")
    assert http.get(thumbnail).content == b"stale"
    [replaced] = store([version(1)])  # same SOP Instance UID, other pixels
    assert replaced.status == IngestStatus.REPLACED
    fresh = http.get(thumbnail)
    assert fresh.content != b"stale"
    assert image_of(fresh).size == (128, 128)
    assert fresh.headers["ETag"] != first.headers["ETag"]
