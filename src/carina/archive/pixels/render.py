"""Rendering a stored image frame as a consumer image (JPEG or PNG).

This is the pixel pipeline behind WADO-RS rendered and thumbnail resources (PS3.18 10.4.1.1.3,
10.4.1.1.4 and the rendering parameters of 8.3.5.1), applied as PS3.4 N.2 describes for a
grayscale or colour image:

1. decode one frame with pydicom (pylibjpeg plugins for JPEG, JPEG-LS, JPEG 2000 and RLE);
   YBR colour is converted to RGB by the decoder, PALETTE COLOR through its lookup tables
   (PS3.3 C.7.6.3.1.5);
2. Modality LUT: Rescale Slope/Intercept (PS3.3 C.11.1), per frame for enhanced multi-frame
   objects (Pixel Value Transformation Sequence), or a Modality LUT Sequence;
3. VOI LUT (PS3.3 C.11.2): the ``window`` asked for (PS3.18 8.3.5.1.4), else the object's own
   Window Center/Width (or VOI LUT Sequence), else the frame's minimum to maximum;
4. MONOCHROME1 is inverted so that the output is always "bright = high";
5. the source region and viewport (PS3.18 8.3.5.1.3): crop, then scale to fit the viewport
   keeping the aspect ratio;
6. encode as JPEG (``quality``, PS3.18 8.3.5.1.2) or PNG (lossless).

Only one frame is held in memory at a time. The functions here take a readable blob and know
nothing about HTTP; the DICOMweb adapter parses the query parameters into :class:`Rendering`.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, cast

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi
from pydicom.pixels.utils import pixel_array

JPEG = "image/jpeg"
PNG = "image/png"
#: The media types Carina renders to (PS3.18 8.7.4: single-frame image types).
MEDIA_TYPES = (JPEG, PNG)
#: JPEG quality when the request names none.
DEFAULT_QUALITY = 90
#: Largest viewport side, in pixels: a rendered image is never larger than this.
MAX_VIEWPORT = 4096

#: The VOI LUT functions of PS3.3 C.11.2.1.2 and C.11.2.1.3, as PS3.18 8.3.5.1.4 names them.
WindowFunction = Literal["linear", "linear-exact", "sigmoid"]
WINDOW_FUNCTIONS: tuple[WindowFunction, ...] = ("linear", "linear-exact", "sigmoid")

#: Data elements that hold pixels (PS3.3 C.7.6.3, C.7.6.24): Pixel Data, Float and Double
#: Float Pixel Data, as tags in the DICOM JSON model.
PIXEL_DATA_TAGS = ("7FE00010", "7FE00008", "7FE00009")

FloatArray = npt.NDArray[np.float64]
ByteArray = npt.NDArray[np.uint8]


class RenderError(Exception):
    """A frame that cannot be rendered as asked; ``http_status`` says how to answer."""

    http_status = 400

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if http_status is not None:
            self.http_status = http_status


class NoImageError(RenderError):
    """The object holds no pixel data (a structured report, an RT structure set, …)."""

    http_status = 404


class FrameRangeError(RenderError):
    """A frame number outside 1…NumberOfFrames (PS3.18 9.5.2 answers this with 400)."""

    http_status = 400


class UndecodableError(RenderError):
    """Pixel data Carina cannot decode (no codec for its transfer syntax, or damaged)."""

    http_status = 406


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.18 8.3.5.1.4): centre and width in modality units (e.g. HU)."""

    center: float
    width: float
    function: WindowFunction = "linear"


@dataclass(frozen=True)
class Viewport:
    """The viewport and optional source region (PS3.18 8.3.5.1.3).

    ``width`` × ``height`` is the box the image is scaled to fit (aspect kept). The source
    region starts at (``sx``, ``sy``) and is ``sw`` × ``sh`` pixels; a negative ``sw`` or
    ``sh`` flips it; ``None`` extends it to the image's edge."""

    width: int
    height: int
    sx: int = 0
    sy: int = 0
    sw: int | None = None
    sh: int | None = None

    @property
    def has_region(self) -> bool:
        return (self.sx, self.sy, self.sw, self.sh) != (0, 0, None, None)


#: The largest viewport side whose renditions are cached (see :attr:`Rendering.is_cacheable`).
CACHED_VIEWPORT = 1024


@dataclass(frozen=True)
class Rendering:
    """How to render: output media type, window, viewport, JPEG quality."""

    media_type: str = JPEG
    window: Window | None = None
    viewport: Viewport | None = None
    quality: int = DEFAULT_QUALITY

    @property
    def is_cacheable(self) -> bool:
        """Whether the rendition cache keeps this rendering: the object's own presentation
        (no ``window``) at full size or scaled into a viewport of at most
        :data:`CACHED_VIEWPORT` pixels a side — previews in lists, reports and pages, asked
        for again and again. Interactive windowing is rendered each time."""
        if self.window is not None:
            return False
        viewport = self.viewport
        return viewport is None or max(viewport.width, viewport.height) <= CACHED_VIEWPORT

    def token(self) -> str:
        """A stable text naming this rendering, for cache keys and ETags."""
        window = (
            f"{self.window.center!r},{self.window.width!r},{self.window.function}"
            if self.window
            else "-"
        )
        viewport = (
            f"{self.viewport.width},{self.viewport.height},{self.viewport.sx},"
            f"{self.viewport.sy},{self.viewport.sw},{self.viewport.sh}"
            if self.viewport
            else "-"
        )
        quality = str(self.quality) if self.media_type == JPEG else "-"
        return f"{self.media_type}|w={window}|v={viewport}|q={quality}"


def has_pixels(metadata: Mapping[str, Any]) -> bool:
    """Whether an instance's DICOM JSON (PS3.18 F.2) has pixel data to render."""
    return any(tag in metadata for tag in PIXEL_DATA_TAGS)


def check_frames(frames: Iterable[int], number_of_frames: int) -> None:
    """Raise :class:`FrameRangeError` unless every frame is within 1…``number_of_frames``."""
    for frame in frames:
        if not 1 <= frame <= number_of_frames:
            raise FrameRangeError(
                f"Frame {frame} does not exist: the instance has {number_of_frames} "
                f"frame{'s' if number_of_frames != 1 else ''} (numbered from 1)."
            )


def render_frames(source: BinaryIO, frames: Iterable[int], rendering: Rendering) -> Iterator[bytes]:
    """Render ``frames`` (numbered from 1) of the Part 10 object in ``source``, one at a time.

    ``source`` may be a non-seekable stream (S3): it is then spooled to a temporary file first
    (in memory up to 16 MiB), since decoding one frame needs to seek to it."""
    with _seekable(source) as fp:
        try:
            ds = dcmread(fp, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, ValueError, OSError) as exc:
            raise UndecodableError(f"The stored object cannot be read: {exc}") from exc
        if "Rows" not in ds or "Columns" not in ds:
            raise NoImageError("The object has no image (no Rows/Columns, no pixel data).")
        number_of_frames = int(ds.get("NumberOfFrames") or 1)
        wanted = list(frames)
        check_frames(wanted, number_of_frames)
        for frame in wanted:
            fp.seek(0)
            try:
                arr = pixel_array(fp, index=frame - 1)
            except (AttributeError, KeyError) as exc:
                raise NoImageError(f"The object has no pixel data: {exc}") from exc
            except Exception as exc:  # decoder plugins raise anything: answer, don't crash
                syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
                name = getattr(syntax, "name", str(syntax))
                raise UndecodableError(
                    f"Carina cannot decode this image (transfer syntax {name}): {exc}. "
                    "Retrieve the instance as application/dicom instead."
                ) from exc
            yield encode(present(arr, ds, frame, rendering), rendering)


def render_frame(source: BinaryIO, frame: int, rendering: Rendering) -> bytes:
    """Render one frame (numbered from 1); see :func:`render_frames`."""
    return next(render_frames(source, [frame], rendering))


def present(arr: npt.NDArray[Any], ds: Dataset, frame: int, rendering: Rendering) -> ByteArray:
    """Steps 2 to 5 of the module docstring: decoded pixels → 8-bit grey or RGB pixels."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric == "PALETTE COLOR":
        out = _to_8_bits(apply_color_lut(arr, ds), _palette_bits(ds))
    elif arr.ndim == 3:
        # YBR_* has been converted to RGB by pydicom's decoder (PS3.3 C.7.6.3.1.2).
        out = _to_8_bits(arr, int(ds.get("BitsStored") or 8))
    else:
        out = _grey(arr, ds, frame, rendering.window)
        if photometric == "MONOCHROME1":
            out = 255 - out
    return _fit(_region(out, rendering.viewport), rendering.viewport)


def encode(pixels: ByteArray, rendering: Rendering) -> bytes:
    """8-bit grey (H×W) or RGB (H×W×3) pixels → JPEG or PNG bytes."""
    image = Image.fromarray(np.ascontiguousarray(pixels))
    buffer = io.BytesIO()
    if rendering.media_type == PNG:
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=rendering.quality)
    return buffer.getvalue()


def _grey(arr: npt.NDArray[Any], ds: Dataset, frame: int, window: Window | None) -> ByteArray:
    """Steps 2 and 3 of the module docstring for a grey frame: stored values → 0…255.

    An 8- or 16-bit frame goes through a lookup table: the two steps are computed once for
    each stored value from the frame's minimum to its maximum, then every pixel takes its
    value's entry. Each entry is the same float64 computation on the same value as the
    direct way, so the bytes are the same (the frame's minimum and maximum, which the
    "no window" case spans, are both in the table), and no float64 array of the frame's
    size is filled, which is where most of the time went. A Modality LUT
    Sequence, which need not be monotonic, and wider or sparse ranges go the direct way.
    """
    if arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2 and "ModalityLUTSequence" not in ds:
        lowest, highest = int(arr.min()), int(arr.max())
        if highest - lowest < arr.size:
            stored = np.arange(lowest, highest + 1, dtype=np.int64)
            table = _voi(_modality(stored, ds, frame), ds, frame, window)
            index = arr.astype(np.int32)
            index -= lowest
            return np.take(table, index)
    return _voi(_modality(arr, ds, frame), ds, frame, window)


# -- Modality LUT (PS3.3 C.11.1) ------------------------------------------------------------


def _frame_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The item of functional group ``sequence`` that applies to ``frame`` (PS3.3 C.7.6.16):
    per-frame first, then shared."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and len(per_frame) >= frame:
        group = per_frame[frame - 1].get(sequence)
        if group:
            return group[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        group = shared[0].get(sequence)
        if group:
            return group[0]
    return None


def _modality(arr: npt.NDArray[Any], ds: Dataset, frame: int) -> FloatArray:
    """Stored values → modality values (e.g. HU), as floats."""
    item = _frame_item(ds, frame, "PixelValueTransformationSequence")
    source = item if item is not None and "RescaleSlope" in item else ds
    if "RescaleSlope" in source or "RescaleIntercept" in source:
        slope = float(source.get("RescaleSlope", 1) or 1)
        intercept = float(source.get("RescaleIntercept", 0) or 0)
        values = arr.astype(np.float64)  # a copy: scaled in place
        values *= slope
        values += intercept
        return values
    if "ModalityLUTSequence" in ds:
        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    return arr.astype(np.float64)


# -- VOI LUT (PS3.3 C.11.2) -----------------------------------------------------------------


def _first(value: Any) -> float:
    """The first of a multi-valued Window Center/Width (the object's preferred window)."""
    if isinstance(value, MultiValue | list | tuple):
        value = value[0]
    return float(value)


def _own_window(ds: Dataset, frame: int) -> Window | None:
    """The object's Window Center/Width for ``frame`` (Frame VOI LUT Sequence first)."""
    item = _frame_item(ds, frame, "FrameVOILUTSequence")
    source = item if item is not None and "WindowCenter" in item else ds
    if "WindowCenter" not in source or "WindowWidth" not in source:
        return None
    try:
        center, width = _first(source.WindowCenter), _first(source.WindowWidth)
    except (TypeError, ValueError, IndexError):
        return None
    function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().lower()
    function = function.replace("_", "-")
    if function not in WINDOW_FUNCTIONS or width <= 0 or (function == "linear" and width < 1):
        return None
    return Window(center, width, function)


def apply_window(values: FloatArray, window: Window) -> ByteArray:
    """Window modality values into 0…255 (PS3.3 C.11.2.1.2.1 LINEAR, C.11.2.1.3.2
    LINEAR_EXACT, C.11.2.1.3.1 SIGMOID), rounded to the nearest integer."""
    c, w, top = window.center, window.width, 255.0
    ramp_only = (window.function == "linear" and w > 1) or (
        window.function == "linear-exact" and w > 0
    )
    if ramp_only:
        # The ramp itself is at or below 0 below the window and at or above 255 above it,
        # so clipping it gives the same bytes as the piecewise form below, in place and
        # without the temporary arrays of the comparisons.
        out = values - (c - 0.5 if window.function == "linear" else c)
        out /= w - 1 if window.function == "linear" else w
        out += 0.5
        out *= top
        np.clip(out, 0, top, out=out)
        return np.rint(out, out=out).astype(np.uint8)
    if window.function == "linear":
        low = c - 0.5 - (w - 1) / 2
        high = c - 0.5 + (w - 1) / 2
        ramp = ((values - (c - 0.5)) / max(w - 1, 1e-9) + 0.5) * top
        out = np.where(values <= low, 0.0, np.where(values > high, top, ramp))
    elif window.function == "linear-exact":
        ramp = ((values - c) / w + 0.5) * top
        out = np.where(values <= c - w / 2, 0.0, np.where(values > c + w / 2, top, ramp))
    else:
        out = top / (1 + np.exp(-4 * (values - c) / w))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _voi(values: FloatArray, ds: Dataset, frame: int, window: Window | None) -> ByteArray:
    if window is None:
        window = _own_window(ds, frame)
    if window is None and "VOILUTSequence" in ds:
        return _voi_lut_sequence(values, ds)
    if window is None:
        low, high = float(values.min()), float(values.max())
        if high <= low:
            return np.zeros(values.shape, dtype=np.uint8)
        out = values - low  # the same operations as a one-line formula, in place
        out /= high - low
        out *= 255
        np.rint(out, out=out)
        return np.clip(out, 0, 255, out=out).astype(np.uint8)
    return apply_window(values, window)


def _voi_lut_sequence(values: FloatArray, ds: Dataset) -> ByteArray:
    """The first VOI LUT of the object (PS3.3 C.11.2.1.1), scaled from its bit depth."""
    item = ds.VOILUTSequence[0]
    bits = int(item.LUTDescriptor[2]) if "LUTDescriptor" in item else 16
    out = np.asarray(apply_voi(np.rint(values).astype(np.int64), ds), dtype=np.float64)
    return np.clip(np.rint(out / max(2**bits - 1, 1) * 255), 0, 255).astype(np.uint8)


def _to_8_bits(arr: npt.NDArray[Any], bits: int) -> ByteArray:
    """Colour samples of ``bits`` bits → 0…255."""
    if arr.dtype == np.uint8 and bits <= 8:
        return arr
    top = float(2 ** max(bits, 1) - 1)
    return np.clip(np.rint(arr / top * 255), 0, 255).astype(np.uint8)


def _palette_bits(ds: Dataset) -> int:
    """Bits per entry of the palette (PS3.3 C.7.6.3.1.5: the descriptor's third value)."""
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor")
    return int(descriptor[2]) if descriptor and len(descriptor) > 2 else 8


# -- Source region and viewport (PS3.18 8.3.5.1.3) -----------------------------------------


def _region(pixels: ByteArray, viewport: Viewport | None) -> ByteArray:
    """Crop to the source region, flipping it when its width or height is negative."""
    if viewport is None or not viewport.has_region:
        return pixels
    rows, columns = pixels.shape[0], pixels.shape[1]
    if viewport.sx >= columns or viewport.sy >= rows:
        raise RenderError(
            f"viewport: the source region starts at ({viewport.sx},{viewport.sy}), outside "
            f"the {columns}×{rows} image."
        )
    x0, x1, flip_x = _span(viewport.sx, viewport.sw, columns)
    y0, y1, flip_y = _span(viewport.sy, viewport.sh, rows)
    if x1 <= x0 or y1 <= y0:
        raise RenderError("viewport: the source region is empty once clipped to the image.")
    out = pixels[y0:y1, x0:x1]
    if flip_x:
        out = out[:, ::-1]
    if flip_y:
        out = out[::-1]
    return out


def _span(start: int, size: int | None, limit: int) -> tuple[int, int, bool]:
    """[low, high) of a region side clipped to 0…limit, and whether it is flipped."""
    if size is None:
        return start, limit, False
    if size < 0:
        return max(start + size, 0), min(start, limit), True
    return start, min(start + size, limit), False


def fitted_size(columns: int, rows: int, viewport: Viewport) -> tuple[int, int]:
    """The size (width, height) of a ``columns``×``rows`` image scaled to fit ``viewport``
    with its aspect ratio kept."""
    scale = min(viewport.width / columns, viewport.height / rows)
    return max(1, round(columns * scale)), max(1, round(rows * scale))


def _fit(pixels: ByteArray, viewport: Viewport | None) -> ByteArray:
    if viewport is None:
        return pixels
    rows, columns = pixels.shape[0], pixels.shape[1]
    size = fitted_size(columns, rows, viewport)
    if size == (columns, rows):
        return pixels
    image = Image.fromarray(np.ascontiguousarray(pixels))
    resized = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(resized, dtype=np.uint8)


# -- Reading from storage ---------------------------------------------------------------------


@contextmanager
def _seekable(source: BinaryIO) -> Iterator[BinaryIO]:
    """``source`` itself when it can seek, else a spooled copy of it (in memory up to
    16 MiB, then a temporary file)."""
    seekable = getattr(source, "seekable", None)
    if seekable is not None and seekable():
        yield source
        return
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as copy:
        shutil.copyfileobj(source, copy, 1024 * 1024)
        copy.seek(0)
        yield cast(BinaryIO, copy)
