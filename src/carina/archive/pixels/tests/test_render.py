"""Rendering stored frames as JPEG/PNG: modality and VOI LUTs, MONOCHROME1, colour, palette,
compressed transfer syntaxes, multi-frame, viewport; and the rendition cache (files, Redis)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import pytest
import redis
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.utils import pixel_array
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from carina.archive.pixels import render as render_module
from carina.archive.pixels.render import (
    JPEG,
    PNG,
    FrameRangeError,
    NoImageError,
    Rendering,
    Viewport,
    Window,
    apply_window,
    render_frame,
)
from carina.archive.pixels.renditions import FileCache, RedisCache
from carina.core.testing import make_ct_slice, shipped_file

REDIS_URL = "redis://127.0.0.1:6379/7"


def as_file(ds: Dataset) -> BinaryIO:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return buffer


def decode(data: bytes) -> tuple[Image.Image, npt.NDArray[np.uint8]]:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image, np.asarray(image)


def render(source: Path | BinaryIO, frame: int = 1, **kwargs: object) -> bytes:
    rendering = Rendering(**kwargs)  # type: ignore[arg-type]
    if isinstance(source, Path):
        with source.open("rb") as fp:
            return render_frame(fp, frame, rendering)
    return render_frame(source, frame, rendering)


def ct_gradient(**extra: object) -> Dataset:
    """A 16-bit CT slice (RescaleIntercept -1024) whose stored values are 0, 16, 32, … along
    each row, so that modality values run from -1024 HU upwards."""
    ds = make_ct_slice(study_uid=generate_uid(), series_uid=generate_uid(), index=0, size=64)
    stored = (np.arange(64 * 64, dtype=np.uint16) % 64 * 16).reshape(64, 64)
    ds.PixelData = stored.tobytes()
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    return ds


def linear_window(hu: float, center: float, width: float) -> int:
    """PS3.3 C.11.2.1.2.1, written out as the standard's pseudo-code, for an 8-bit output."""
    if hu <= center - 0.5 - (width - 1) / 2:
        return 0
    if hu > center - 0.5 + (width - 1) / 2:
        return 255
    return round(((hu - (center - 0.5)) / (width - 1) + 0.5) * 255)


def linear_exact_window(hu: float, center: float, width: float) -> int:
    """PS3.3 C.11.2.1.3.2, written out as the standard's pseudo-code, for an 8-bit output."""
    if hu <= center - width / 2:
        return 0
    if hu > center + width / 2:
        return 255
    return round(((hu - center) / width + 0.5) * 255)


# -- Grayscale: modality LUT, VOI LUT, MONOCHROME1 -------------------------------------------


def test_ct_without_a_window_spans_its_values() -> None:
    ds = make_ct_slice(study_uid=generate_uid(), series_uid=generate_uid(), index=0)
    _, pixels = decode(render(as_file(ds), media_type=PNG))
    assert pixels.shape == (128, 128)
    assert pixels.min() == 0 and pixels.max() == 255  # min…max window, not a flat image
    assert len(np.unique(pixels)) > 100


def test_explicit_window_matches_the_standard_formula() -> None:
    ds = ct_gradient()
    _, pixels = decode(render(as_file(ds), media_type=PNG, window=Window(40, 400)))
    for column in (0, 5, 40, 54, 55, 60, 63):
        hu = column * 16 - 1024
        assert pixels[10, column] == linear_window(hu, 40, 400), column
    # -1024 + 16·c crosses the window [-160, 240] between columns 54 and 79 (clipped at 63)
    assert pixels[0, 53] == 0 and 0 < pixels[0, 60] < 255


@pytest.mark.parametrize(
    "window",
    [
        Window(40, 400),
        Window(-600, 1500),
        Window(40.5, 2),
        Window(0.25, 1.5),
        Window(7, 1),
        Window(1000.25, 4096),
        Window(-600, 400, "linear-exact"),
        Window(3, 0.5, "linear-exact"),
    ],
)
def test_every_value_is_windowed_as_the_standard_says(window: Window) -> None:
    """Every value, between and at the window's edges, gets the grey level of PS3.3
    C.11.2.1.2.1 (LINEAR) or C.11.2.1.3.2 (LINEAR_EXACT): the fast path changes no pixel."""
    hu = np.concatenate([np.arange(-2100.0, 4200.0, 1.0), np.arange(-20.0, 20.0, 0.125)])
    hu = np.concatenate([hu, hu + window.center])
    c, w = window.center, window.width
    if window.function == "linear" and w > 1:
        expected = [linear_window(value, c, w) for value in hu]
    elif window.function == "linear":  # a one-unit window is a threshold at its centre
        expected = [0 if value <= c - 0.5 else 255 for value in hu]
    else:
        expected = [linear_exact_window(value, c, w) for value in hu]
    assert apply_window(hu, window).tolist() == expected


def _voi_lut_item() -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = [min(255, v // 2) for v in range(256)]
    return item


@pytest.mark.parametrize(
    ("dtype", "low", "high", "rescale", "window", "voi_lut"),
    [
        (np.uint16, 0, 4095, (1.0, -1024.0), None, False),
        (np.uint16, 0, 4095, (1.0, -1024.0), Window(40, 400), False),
        (np.int16, -2000, 3000, None, Window(-600, 1500, "sigmoid"), False),
        (np.int16, -32768, 32767, (0.5, 10.0), None, False),
        (np.uint16, 100, 110, (-2.0, 0.0), None, False),
        (np.uint8, 0, 255, None, Window(100, 50, "linear-exact"), False),
        (np.uint8, 0, 255, None, None, True),
    ],
)
def test_the_lookup_table_gives_the_bytes_of_the_direct_computation(
    dtype: type[np.integer],
    low: int,
    high: int,
    rescale: tuple[float, float] | None,
    window: Window | None,
    voi_lut: bool,
) -> None:
    """Grey frames are windowed through a table of their stored values: every pixel must
    come out exactly as modality LUT then VOI LUT computed pixel by pixel (the old way)."""
    rng = np.random.default_rng(7)
    arr = rng.integers(low, high, size=(64, 80), endpoint=True).astype(dtype)
    ds = Dataset()
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if voi_lut:
        ds.VOILUTSequence = [_voi_lut_item()]
    direct = render_module._voi(render_module._modality(arr, ds, 1), ds, 1, window)
    assert np.array_equal(render_module._grey(arr, ds, 1, window), direct)


def test_own_window_is_used_when_none_is_asked() -> None:
    ds = ct_gradient(WindowCenter=-500, WindowWidth=600)
    _, pixels = decode(render(as_file(ds), media_type=PNG))
    for column in (0, 15, 30, 40, 50):
        assert pixels[3, column] == linear_window(column * 16 - 1024, -500, 600)


def test_sigmoid_and_linear_exact_windows() -> None:
    ds = ct_gradient()
    _, exact = decode(render(as_file(ds), media_type=PNG, window=Window(-600, 400, "linear-exact")))
    _, sigmoid = decode(render(as_file(ds), media_type=PNG, window=Window(-600, 400, "sigmoid")))
    for column in (10, 20, 26, 30, 40):
        hu = column * 16 - 1024
        expected_exact = min(max(round(((hu + 600) / 400 + 0.5) * 255), 0), 255)
        expected_sigmoid = round(255 / (1 + np.exp(-4 * (hu + 600) / 400)))
        assert exact[0, column] == expected_exact
        assert sigmoid[0, column] == expected_sigmoid


def test_monochrome1_is_inverted() -> None:
    ds = ct_gradient()
    _, normal = decode(render(as_file(ds), media_type=PNG, window=Window(-700, 800)))
    ds.PhotometricInterpretation = "MONOCHROME1"
    _, inverted = decode(render(as_file(ds), media_type=PNG, window=Window(-700, 800)))
    assert (normal.astype(int) + inverted.astype(int) == 255).all()


# -- Compressed and colour objects -----------------------------------------------------------


def test_rgb_jpeg_baseline_looks_like_the_uncompressed_original() -> None:
    image, rendered = decode(render(shipped_file("SC_rgb_jpeg_dcmtk.dcm"), media_type=PNG))
    assert image.mode == "RGB" and image.size == (100, 100)
    original = pixel_array(str(shipped_file("SC_rgb.dcm")))
    # lossy, YBR 4:2:2 in the file: colours within a few levels of the RGB original
    assert np.abs(rendered.astype(int) - original.astype(int)).mean() < 8
    assert tuple(rendered[5, 50]) == pytest.approx((255, 0, 0), abs=12)  # the red band


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"])
def test_lossless_compressed_renders_exactly_like_the_uncompressed(name: str) -> None:
    compressed = render(shipped_file(name), media_type=PNG)
    uncompressed = render(shipped_file("MR_small.dcm"), media_type=PNG)
    image, pixels = decode(compressed)
    assert image.size == (64, 64) and pixels.std() > 10
    assert compressed == uncompressed


def test_palette_colour_becomes_rgb() -> None:
    image, pixels = decode(render(shipped_file("examples_palette.dcm"), media_type=PNG))
    assert image.mode == "RGB" and image.size == (800, 350)
    red, green, blue = (pixels[..., i].astype(int) for i in range(3))
    assert ((red != green) | (green != blue)).any()  # really coloured somewhere


def test_multi_frame_renders_the_frame_asked_for() -> None:
    path = shipped_file("emri_small_RLE.dcm")
    fifth = decode(render(path, 5, media_type=PNG))[1]
    first = decode(render(path, 1, media_type=PNG))[1]
    assert fifth.shape == (64, 64)
    assert not np.array_equal(fifth, first)
    raw = pixel_array(str(path), index=4).astype(float)  # no window in the file: min…max
    expected = np.rint((raw - raw.min()) / (raw.max() - raw.min()) * 255)
    assert np.array_equal(fifth, expected.astype(np.uint8))


def test_a_frame_beyond_the_last_is_refused() -> None:
    with pytest.raises(FrameRangeError, match="has 10 frames"):
        render(shipped_file("emri_small_RLE.dcm"), 11)


def test_an_object_without_pixels_has_no_image() -> None:
    with pytest.raises(NoImageError):
        render(shipped_file("test-SR.dcm"))


def test_a_stream_that_cannot_seek_is_rendered(tmp_path: Path) -> None:
    class Forward(io.RawIOBase):
        """Reads like an S3 body: forward only."""

        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            chunk = self.inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    data = shipped_file("MR_small_RLE.dcm").read_bytes()
    stream = io.BufferedReader(Forward(data))
    assert render(stream, media_type=PNG) == render(
        shipped_file("MR_small_RLE.dcm"), media_type=PNG
    )


# -- Output: media type, viewport, quality ---------------------------------------------------


def test_jpeg_and_png_decode_to_the_image_size() -> None:
    path = shipped_file("CT_small.dcm")
    jpeg, _ = decode(render(path, media_type=JPEG))
    png, _ = decode(render(path, media_type=PNG))
    assert (jpeg.format, jpeg.size) == ("JPEG", (128, 128))
    assert (png.format, png.size) == ("PNG", (128, 128))


def test_viewport_keeps_the_aspect_ratio() -> None:
    path = shipped_file("examples_palette.dcm")  # 800 × 350
    assert decode(render(path, viewport=Viewport(200, 200)))[0].size == (200, 88)
    assert decode(render(path, viewport=Viewport(1600, 100)))[0].size == (229, 100)
    tall = decode(render(shipped_file("CT_small.dcm"), viewport=Viewport(256, 64)))[0]
    assert tall.size == (64, 64)


def test_viewport_source_region_crops_and_flips() -> None:
    ds = ct_gradient()
    window = Window(-528, 1100)
    _, full = decode(render(as_file(ds), media_type=PNG, window=window))
    _, region = decode(
        render(
            as_file(ds),
            media_type=PNG,
            window=window,
            viewport=Viewport(32, 16, sx=10, sy=20, sw=32, sh=16),
        )
    )
    assert np.array_equal(region, full[20:36, 10:42])
    _, flipped = decode(
        render(
            as_file(ds),
            media_type=PNG,
            window=window,
            viewport=Viewport(32, 16, sx=42, sy=20, sw=-32, sh=16),
        )
    )
    assert np.array_equal(flipped, full[20:36, 10:42][:, ::-1])


def test_quality_changes_the_jpeg() -> None:
    path = shipped_file("CT_small.dcm")
    assert len(render(path, quality=10)) < len(render(path, quality=95))


def test_a_dataset_built_in_memory_without_meta_is_read() -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns = 4, 6
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(24))
    image, pixels = decode(render(as_file(ds), media_type=PNG))
    assert image.size == (6, 4) and pixels[0, 0] == 0 and pixels[3, 5] == 255


# -- The rendition cache ---------------------------------------------------------------------


def test_file_cache_keeps_and_returns_bytes(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, max_bytes=1024 * 1024)
    assert cache.get("ab" * 32) is None
    cache.put("ab" * 32, b"rendered")
    assert cache.get("ab" * 32) == b"rendered"
    assert [p.name for p in tmp_path.rglob(".tmp-*")] == []  # written by rename


def test_file_cache_stays_within_its_bound(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, max_bytes=10_000)
    keys = [f"{i:02x}" + "0" * 62 for i in range(30)]
    for key in keys:
        cache.put(key, b"x" * 1000)
        # the most recently used entry survives eviction
        assert cache.get(keys[0]) is not None
    total = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert total <= 10_000 + 1_000
    assert cache.get(keys[-1]) == b"x" * 1000
    assert cache.get(keys[1]) is None  # among the least recently used, evicted


@pytest.fixture
def redis_prefix() -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"carina-test-{uuid.uuid4().hex}:"
    yield client, prefix
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def test_redis_cache_keeps_bytes_with_an_expiry(redis_prefix: tuple[redis.Redis, str]) -> None:
    client, prefix = redis_prefix
    cache = RedisCache(client, prefix, ttl=60)
    assert cache.get("k1") is None
    cache.put("k1", b"rendered")
    assert cache.get("k1") == b"rendered"
    assert 0 < client.ttl(f"{prefix}k1") <= 60


def test_an_unreachable_redis_is_a_miss_not_an_error() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    cache = RedisCache(client, "carina-test:", ttl=60)
    cache.put("k", b"x")
    assert cache.get("k") is None
