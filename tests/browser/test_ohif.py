"""The OHIF viewer at /viewer/, in real Chromium, shows what Carina stores: the study list,
a 200-slice CT drawn in the stack viewport and in MPR (three reconstructed planes), and
series stored as JPEG 2000 and as RLE, decoded in the browser. Every DICOMweb request the
viewer makes succeeds, and the page's Content-Security-Policy blocks nothing it needs.

Screenshots and the measured canvas figures go to test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid

from carina.archive.ingest.pipeline import Origin, ingest
from carina.archive.models import Source
from carina.core.testing import make_ct_slice
from carina.tenancy.models import Hospital

from .ohif import PASSWORD, ViewerPage, record

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SIZE = 128
SPACING_XY = 0.78
SPACING_Z = 1.25
MPR_VIEWPORTS = {"mpr-axial", "mpr-sagittal", "mpr-coronal"}


@dataclass
class StoredSeries:
    study_uid: str
    series_uid: str
    count: int
    transfer_syntax: str

    @property
    def viewer_url(self) -> str:
        return f"/viewer/viewer?StudyInstanceUIDs={self.study_uid}"


def phantom(index: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Slice ``index`` of a CT phantom, as stored values (HU + 1024): a soft-tissue body
    (40 HU) in air, two lungs (-800 HU) in the middle third, a dense sphere (600 HU) at the
    centre, and a little noise, so that every plane through it shows structure."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    z = index * SPACING_Z
    centre_z = count * SPACING_Z / 2
    hu = np.full((SIZE, SIZE), -1000.0)
    hu[((x - 64) / 54) ** 2 + ((y - 64) / 42) ** 2 <= 1] = 40
    if count / 3 <= index < 2 * count / 3:
        for cx in (40, 88):
            hu[((x - cx) / 16) ** 2 + ((y - 60) / 24) ** 2 <= 1] = -800
    mm = SPACING_XY
    sphere = ((x - 64) * mm) ** 2 + ((y - 76) * mm) ** 2 + (z - centre_z) ** 2 <= 15**2
    hu[sphere] = 600
    hu += rng.normal(0, 8, hu.shape)
    return np.clip(hu + 1024, 0, 4095).astype(np.uint16)


def make_series(
    count: int, *, patient: str, description: str, transfer_syntax: str | None = None
) -> tuple[list[Dataset], StoredSeries]:
    """An MPR-ready axial CT series: even slice spacing, one orientation, pixel spacing and
    frame of reference; optionally compressed (JPEG 2000 or RLE lossless)."""
    study_uid, series_uid, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    rng = np.random.default_rng(7)
    datasets = []
    for index in range(count):
        ds = make_ct_slice(
            study_uid=study_uid,
            series_uid=series_uid,
            index=index,
            size=SIZE,
            patient_id=patient.replace("^", ""),
            patient_name=patient,
            extra={
                "FrameOfReferenceUID": frame_of_reference,
                "StudyDescription": description,
                "SeriesDescription": f"{description} {count} slices",
                "WindowCenter": 40,
                "WindowWidth": 400,
            },
        )
        ds.PixelData = phantom(index, count, rng).tobytes()
        if transfer_syntax is not None:
            ds.compress(transfer_syntax)
        datasets.append(ds)
    syntax = str(datasets[0].file_meta.TransferSyntaxUID)
    return datasets, StoredSeries(study_uid, series_uid, count, syntax)


Store = Callable[[list[Dataset]], None]


@pytest.fixture
def store(tmp_path: Path, hospital: Hospital) -> Store:
    def _store(datasets: list[Dataset]) -> None:
        for n, ds in enumerate(datasets):
            path = tmp_path / f"{ds.SeriesInstanceUID}-{n:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, "browser test"))

    return _store


@pytest.fixture
def ct_phantom(store: Store) -> StoredSeries:
    """A stored 200-slice 128² CT (Explicit VR Little Endian)."""
    datasets, series = make_series(200, patient="PHANTOM^CT", description="CT PHANTOM")
    store(datasets)
    return series


@pytest.fixture
def compressed_phantoms(store: Store) -> dict[str, StoredSeries]:
    """Two stored 12-slice CT studies, one JPEG 2000 lossless, one RLE lossless."""
    stored = {}
    for name, syntax in (("J2K", JPEG2000Lossless), ("RLE", RLELossless)):
        datasets, series = make_series(
            12, patient=f"{name}^PHANTOM", description=f"CT {name}", transfer_syntax=syntax
        )
        store(datasets)
        stored[name] = series
    return stored


def assert_drawn(stats: list[dict[str, Any]], ids: set[str]) -> None:
    """Each viewport's canvas shows an image: not black, and more than a few grey levels."""
    assert {s["id"] for s in stats} == ids
    for s in stats:
        assert s["w"] > 100 and s["h"] > 100, s
        assert s["nonBlack"] > 0.05, f"viewport {s['id']} is (almost) black: {s}"
        assert s["distinct"] > 4, f"viewport {s['id']} is flat: {s}"


def assert_clean(viewer: ViewerPage) -> None:
    assert viewer.traffic.failures == [], "failed requests: " + "\n".join(viewer.traffic.failures)
    assert viewer.traffic.csp_violations == []


def test_study_list_shows_the_studies_and_launches_the_viewer(
    compressed_phantoms: dict[str, StoredSeries], viewer_page: ViewerPage
) -> None:
    page = viewer_page.page
    viewer_page.sign_in("reader")
    rows = page.locator("tr", has_text="PHANTOM")
    rows.first.wait_for(timeout=60_000)
    assert page.locator("tr", has_text="J2K").count() == 1
    assert page.locator("tr", has_text="RLE").count() == 1
    viewer_page.screenshot("study-list")

    page.locator("tr", has_text="RLE").click()
    page.get_by_role("button", name="Basic Viewer").click()
    rle = compressed_phantoms["RLE"]
    page.wait_for_url(f"**/viewer/viewer?StudyInstanceUIDs={rle.study_uid}*")
    viewer_page.wait_rendered(1)
    assert_drawn(viewer_page.settled_canvas_stats(), {"default"})
    assert_clean(viewer_page)


def test_ct_is_drawn_in_the_stack_viewport_and_in_mpr(
    ct_phantom: StoredSeries, viewer_page: ViewerPage
) -> None:
    page = viewer_page.page
    viewer_page.sign_in("reader")

    page.goto(viewer_page.base_url + ct_phantom.viewer_url)
    viewer_page.wait_rendered(1)
    stack = viewer_page.settled_canvas_stats()
    record("stack", stack)
    viewer_page.screenshot("ct-stack")
    assert_drawn(stack, {"default"})
    (shown,) = viewer_page.viewport_images()
    assert shown["imageId"].startswith(
        f"wadors:/dicomweb/studies/{ct_phantom.study_uid}/series/{ct_phantom.series_uid}/"
    )
    display_sets = page.evaluate(
        "() => window.services.displaySetService.getActiveDisplaySets()"
        ".map(d => ({uid: d.SeriesInstanceUID, images: d.numImageFrames,"
        " reconstructable: d.isReconstructable}))"
    )
    assert display_sets == [{"uid": ct_phantom.series_uid, "images": 200, "reconstructable": True}]

    page.goto(f"{viewer_page.base_url}{ct_phantom.viewer_url}&hangingprotocolId=mpr")
    viewer_page.wait_rendered(3)
    mpr = viewer_page.settled_canvas_stats()
    record("mpr", mpr)
    viewer_page.screenshot("ct-mpr")
    assert_drawn(mpr, MPR_VIEWPORTS)
    assert {v["type"] for v in viewer_page.viewport_images()} == {"orthographic"}
    # The volume was built from every slice, each fetched from Carina's frames resource.
    frames = {r for r in viewer_page.traffic.dicomweb_requests if r.endswith("/frames/1")}
    assert len(frames) == 200
    assert_clean(viewer_page)


@pytest.mark.parametrize("name", ["J2K", "RLE"])
def test_compressed_series_are_decoded_in_the_browser(
    compressed_phantoms: dict[str, StoredSeries], viewer_page: ViewerPage, name: str
) -> None:
    series = compressed_phantoms[name]
    viewer_page.sign_in("reader")
    viewer_page.page.goto(viewer_page.base_url + series.viewer_url)
    viewer_page.wait_rendered(1)
    stats = viewer_page.settled_canvas_stats()
    (shown,) = viewer_page.viewport_images()
    record(name, {"canvas": stats, "image": shown})
    viewer_page.screenshot(f"ct-{name.lower()}")
    assert_drawn(stats, {"default"})
    assert f"/series/{series.series_uid}/" in shown["imageId"]
    # Carina sent the frames as stored, so the browser's wasm codec decoded them.
    assert shown["transferSyntax"] == series.transfer_syntax
    assert_clean(viewer_page)


def test_an_expired_session_sends_the_user_to_sign_in_and_back(
    compressed_phantoms: dict[str, StoredSeries], viewer_page: ViewerPage
) -> None:
    page = viewer_page.page
    viewer_page.sign_in("reader")
    page.locator("tr", has_text="J2K").wait_for(timeout=60_000)
    page.context.clear_cookies()  # the session ends (expired, or signed out in another tab)

    page.locator("tr", has_text="RLE").click()  # the preview asks /dicomweb for the series
    page.wait_for_url("**/accounts/login/?next=*", timeout=60_000)
    assert viewer_page.traffic.failures
    assert all(f.startswith("401 GET /dicomweb/") for f in viewer_page.traffic.failures)
    page.fill("#id_username", "reader")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{viewer_page.base_url}/viewer/**")
    page.locator("tr", has_text="J2K").wait_for(timeout=60_000)
