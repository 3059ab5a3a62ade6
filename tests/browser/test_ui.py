"""Carina's web application in real Chromium against a running ``carina serve`` with real
data: signing in; finding studies by partial name, date preset and modality; new studies
appearing without a reload; the study page with its thumbnails and tag browser; OHIF opened
from it; uploading a folder, a ZIP archive and a dropped file with each file's outcome; the
dashboard's charts; an administrator adding a DICOM node and testing it against DCMTK's
storescp; a user of another hospital seeing none of it; keyboard use; and axe-core finding no
serious or critical accessibility violation on the main pages.

Screenshots of every page: test-artifacts/browser/ui/ (axe results in axe.json there).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from carina.accounts.actions import do_create_admin
from carina.archive.ingest.pipeline import Origin, ingest
from carina.archive.models import Source
from carina.archive.storage import reset_storage
from carina.config.env import StorageLocation
from carina.core.testing import free_port, make_ct_slice
from carina.tenancy.models import Hospital

from .ohif import PASSWORD
from .ui import Server, carina_serve, ui_page

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 30_000


# --- the server and the data -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``carina serve`` for the module, on the test database (each test's rows are
    committed: the tests are transactional)."""
    with carina_serve(tmp_path_factory.mktemp("carina-serve")) as running:
        yield running


@pytest.fixture
def shared_blobs(server: Server, settings: Any) -> Path:
    """Objects stored by the tests land in the server's blob folder."""
    settings.CARINA_STORAGE = StorageLocation(scheme="file", path=server.blobs)
    reset_storage()
    return server.blobs


def phantom(index: int, size: int = 96) -> bytes:
    """A bright disc with a darker core on black: a thumbnail a person recognises."""
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - size / 2, y - size / 2)
    image = np.where(r < size * 0.42, 1400, 0) - np.where(r < size * (0.1 + index * 0.02), 600, 0)
    return np.clip(image + 24, 0, 4095).astype(np.uint16).tobytes()


def study_files(
    folder: Path,
    *,
    patient: str,
    patient_id: str,
    date: dt.date | str,
    description: str,
    series: list[tuple[str, int]],
    accession: str = "",
) -> tuple[str, list[Path]]:
    """Write a study's objects as Part 10 files; its StudyInstanceUID and the files."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = generate_uid()
    day = date if isinstance(date, str) else date.strftime("%Y%m%d")
    paths = []
    for number, (modality, count) in enumerate(series, start=1):
        series_uid = generate_uid()
        for index in range(count):
            ds: Dataset = make_ct_slice(
                study_uid=study_uid,
                series_uid=series_uid,
                index=index,
                size=96,
                patient_id=patient_id,
                patient_name=patient,
                modality=modality,
                extra={
                    "StudyDate": day,
                    "StudyDescription": description,
                    "SeriesDescription": f"{description} {modality} {number}",
                    "SeriesNumber": number,
                    "AccessionNumber": accession,
                    "WindowCenter": 700,
                    "WindowWidth": 1600,
                },
            )
            ds.PixelData = phantom(index)
            path = folder / f"{patient_id}-{number}-{index:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return study_uid, paths


def store(paths: list[Path], hospital: Hospital) -> None:
    for path in paths:
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, "browser test"))


@dataclass
class Archive:
    smith: str
    jones: str
    old: str
    elsewhere: str
    files: Path


@pytest.fixture
def archive(
    shared_blobs: Path, hospital: Hospital, other_hospital: Hospital, tmp_path: Path
) -> Archive:
    """Three studies in the default hospital (today CT, yesterday MR, 2020 CR) and one in
    the other hospital; users of both."""
    today = timezone.localdate()
    smith, files = study_files(
        tmp_path / "smith",
        patient="SMITH^JOHN",
        patient_id="P-100",
        date=today,
        description="CT CHEST",
        series=[("CT", 6), ("CT", 3)],
        accession="ACC-100",
    )
    store(files, hospital)
    jones, files = study_files(
        tmp_path / "jones",
        patient="JONES^MARY",
        patient_id="P-200",
        date=today - dt.timedelta(days=1),
        description="MR BRAIN",
        series=[("MR", 4)],
    )
    store(files, hospital)
    old, files = study_files(
        tmp_path / "old",
        patient="OLDMAN^ALBERT",
        patient_id="P-300",
        date="20200105",
        description="CHEST XRAY",
        series=[("CR", 1)],
    )
    store(files, hospital)
    elsewhere, files = study_files(
        tmp_path / "elsewhere",
        patient="SMITH^HIDDEN",
        patient_id="P-900",
        date=today,
        description="CT SECRET",
        series=[("CT", 2)],
    )
    store(files, other_hospital)
    do_create_admin("ward-admin", PASSWORD, hospital, role="hospital_admin")
    do_create_admin("tech", PASSWORD, hospital, role="technologist")
    do_create_admin("outsider", PASSWORD, other_hospital, role="hospital_admin")
    return Archive(smith, jones, old, elsewhere, tmp_path)


@pytest.fixture
def storescp() -> Iterator[int]:
    """DCMTK's storescp on a free port (AE title STORESCP)."""
    port = free_port()
    process = subprocess.Popen(
        ["/usr/bin/storescp", "-aet", "STORESCP", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


# --- the tests -------------------------------------------------------------------------------


def test_sign_in_and_find_studies(server: Server, archive: Archive) -> None:
    with ui_page(server) as ui:
        ui.sign_in("tech", shot="sign-in")
        page = ui.page
        assert set(ui.rows()) == {archive.smith, archive.jones, archive.old}
        ui.screenshot("worklist")
        page.evaluate("window.notReloaded = true")

        # A partial name, as typed: the list follows without pressing Search.
        page.get_by_label("Patient name", exact=True).fill("smi")
        page.wait_for_function(
            "n => document.querySelectorAll('#results tr[data-study-uid]').length === n", arg=1
        )
        assert ui.rows() == [archive.smith]
        assert "patient_name=smi" in page.url  # the search is in the address (shareable)
        ui.screenshot("worklist-name")

        # A date preset.
        page.get_by_label("Patient name", exact=True).fill("")
        page.get_by_label("Study date", exact=True).select_option("yesterday")
        page.wait_for_function(
            "uid => [...document.querySelectorAll('#results tr[data-study-uid]')]"
            ".map(r => r.dataset.studyUid).join() === uid",
            arg=archive.jones,
        )
        assert page.locator("#period-range").is_visible()

        # A modality.
        page.get_by_label("Study date", exact=True).select_option("")
        page.locator("#worklist-form").get_by_label("CR", exact=True).click()
        page.wait_for_function(
            "uid => [...document.querySelectorAll('#results tr[data-study-uid]')]"
            ".map(r => r.dataset.studyUid).join() === uid",
            arg=archive.old,
        )
        ui.screenshot("worklist-modality")

        # A bad range: the message beside the field, the values kept.
        page.locator("#worklist-form").get_by_label("CR", exact=True).click()
        ui.settle()
        page.get_by_label("From", exact=True).fill("2026-02-10")
        page.get_by_label("To", exact=True).fill("2026-02-01")
        page.get_by_role("button", name="Search").click()
        error = page.locator("#id_date_to-error")
        error.wait_for(timeout=TIMEOUT_MS)
        assert "before the start date" in error.inner_text()
        assert page.get_by_label("From", exact=True).input_value() == "2026-02-10"
        ui.screenshot("worklist-bad-range")

        # A new study appears by itself (HTMX polling), without a reload.
        page.goto(f"{server.url}/")
        page.evaluate("window.notReloaded = true")
        new_uid, _ = study_files(
            archive.files / "newcomer",
            patient="NEWCOMER^ANNA",
            patient_id="P-400",
            date=timezone.localdate(),
            description="CT HEAD",
            series=[("CT", 2)],
        )
        imported = server.carina("import", str(archive.files / "newcomer"))
        assert imported.returncode == 0, imported.stdout + imported.stderr
        page.locator(f'tr[data-study-uid="{new_uid}"]').wait_for(timeout=TIMEOUT_MS)
        assert page.evaluate("window.notReloaded") is True
        ui.screenshot("worklist-new-study")


def test_study_page_thumbnails_tags_and_viewer(server: Server, archive: Archive) -> None:
    if not (Path(__file__).resolve().parents[2] / "build" / "viewer" / "index.html").is_file():
        raise RuntimeError("No OHIF build: run `make viewer`.")
    with ui_page(server) as ui:
        ui.sign_in("tech")
        page = ui.page
        page.get_by_role("link", name="SMITH, JOHN", exact=True).click()
        page.wait_for_url(f"**/studies/{archive.smith}/")
        # Every series shows its thumbnail, drawn by the DICOMweb service.
        thumbnails = page.locator(".series-card img")
        assert thumbnails.count() == 2
        page.wait_for_function(
            "() => [...document.querySelectorAll('.series-card img')]"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=TIMEOUT_MS,
        )
        # The tag browser.
        page.get_by_role("link", name="Tags of series 1 CT CHEST CT 1").click()
        page.locator("#tags-panel").wait_for()
        assert "SMITH^JOHN" in page.locator(".tag-table").inner_text()
        page.get_by_label("Filter", exact=True).fill("AccessionNumber")
        page.wait_for_function(
            "() => document.querySelectorAll('.tag-table tbody tr').length === 1"
        )
        assert "ACC-100" in page.locator(".tag-table").inner_text()
        ui.screenshot("study")

        # Open in OHIF: the viewer draws the study.
        page.get_by_role("link", name="Open in viewer").click()
        page.wait_for_url(f"**/viewer/viewer?StudyInstanceUIDs={archive.smith}")
        ui.viewer().wait_rendered(1)
        stats = ui.viewer().settled_canvas_stats()
        assert stats and stats[0]["nonBlack"] > 0.05, stats
        ui.screenshot("viewer-study", full_page=False)
        assert not ui.traffic.failures, ui.traffic.failures

        # One series in OHIF.
        page.goto(f"{server.url}/studies/{archive.smith}/")
        page.get_by_role("link", name="View series 2 CT CHEST CT 2 in the viewer").click()
        page.wait_for_url("**SeriesInstanceUIDs=**")
        ui.viewer().wait_rendered(1)
        ui.screenshot("viewer-series", full_page=False)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_upload_a_folder_a_zip_and_a_dropped_file(server: Server, archive: Archive) -> None:
    folder_uid, folder_files = study_files(
        archive.files / "upload" / "folder",
        patient="FOLDER^FRED",
        patient_id="P-500",
        date="20261101",
        description="FOLDER STUDY",
        series=[("CT", 3)],
    )
    (archive.files / "upload" / "folder" / "readme.txt").write_text("not DICOM")
    zip_uid, zip_files = study_files(
        archive.files / "zipped",
        patient="ZIP^ZOE",
        patient_id="P-600",
        date="20261102",
        description="ZIP STUDY",
        series=[("MR", 2)],
    )
    zip_path = archive.files / "study.zip"
    zip_path.write_bytes(
        _zip(
            {
                **{f"dicom/{p.name}": p.read_bytes() for p in zip_files},
                # An object already in the archive, and a file that is not DICOM.
                "dicom/again.dcm": folder_files[0].read_bytes(),
                "notes/scan.txt": b"hello",
            }
        )
    )
    dropped_uid, dropped = study_files(
        archive.files / "dropped",
        patient="DROP^DAVE",
        patient_id="P-700",
        date="20261103",
        description="DROPPED",
        series=[("US", 1)],
    )
    with ui_page(server) as ui:
        ui.sign_in("tech")
        page = ui.page
        page.get_by_role("link", name="Upload").click()
        page.wait_for_url("**/upload/")

        # A folder (the folder picker), then a ZIP archive once the folder is stored.
        page.get_by_label("A folder").set_input_files(archive.files / "upload" / "folder")
        items = page.locator("#upload-list li.file-item")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#upload-list > li')]"
            ".every(li => li.dataset.state === 'done') && "
            "document.querySelectorAll('#upload-list > li').length === 4",
            timeout=TIMEOUT_MS,
        )
        page.get_by_label("Files or ZIP archives").set_input_files(zip_path)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#upload-list > li')]"
            ".every(li => li.dataset.state === 'done') && "
            "document.querySelectorAll('#upload-list > li').length === 5",
            timeout=TIMEOUT_MS,
        )
        outcome = {
            items.nth(i).locator("> .file-name").inner_text(): items.nth(i).get_attribute(
                "data-outcome"
            )
            for i in range(items.count())
        }
        for path in folder_files:
            assert outcome[f"folder/{path.name}"] == "stored", outcome
        assert outcome["folder/readme.txt"] == "rejected"
        readme = items.filter(has_text="readme.txt")
        assert "Rejected" in readme.inner_text()
        assert "not a DICOM Part 10 file" in readme.inner_text()  # the reason
        zipped = items.filter(has_text="study.zip")
        assert set((outcome["study.zip"] or "").split()) == {
            "stored",
            "already_present",
            "rejected",
        }
        assert "4 objects: 2 stored, 1 already present, 1 rejected" in zipped.inner_text()

        # A file dropped on the drop zone.
        payload = base64.b64encode(dropped[0].read_bytes()).decode()
        page.evaluate(
            """([name, data]) => {
              const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
              const transfer = new DataTransfer();
              transfer.items.add(new File([bytes], name, {type: 'application/dicom'}));
              const zone = document.getElementById('dropzone');
              const init = {dataTransfer: transfer, bubbles: true};
              zone.dispatchEvent(new DragEvent('dragover', init));
              zone.dispatchEvent(new DragEvent('drop', init));
            }""",
            [dropped[0].name, payload],
        )
        page.wait_for_function(
            "() => document.querySelectorAll('#upload-list > li[data-state=done]').length === 6",
            timeout=TIMEOUT_MS,
        )
        assert items.nth(5).get_attribute("data-outcome") == "stored"

        # The studies are linked.
        summary = page.locator("#upload-summary")
        assert "6 of 6 files done" in summary.inner_text()
        for uid in (folder_uid, zip_uid, dropped_uid):
            assert summary.locator(f'a[href="/studies/{uid}/"]').count() == 1
        ui.screenshot("upload")
        summary.locator(f'a[href="/studies/{zip_uid}/"]').click()
        page.wait_for_url(f"**/studies/{zip_uid}/")
        assert "ZIP, ZOE" in page.locator("h1").inner_text()


def test_dashboard_draws_its_charts(server: Server, archive: Archive) -> None:
    with ui_page(server) as ui:
        ui.sign_in("tech")
        ui.page.get_by_role("link", name="Dashboard").click()
        ui.page.wait_for_url("**/dashboard/")
        page = ui.page
        assert page.locator("#total-studies").inner_text() == "3"
        for chart in ("#chart-days", "#chart-modalities", "#chart-activity"):
            bars = page.locator(f"{chart} rect.bar")
            assert bars.count() >= 1, chart
            box = bars.first.bounding_box()
            assert box is not None and box["height"] > 2 and box["width"] > 2, (chart, box)
        modalities = page.locator("#chart-modalities").text_content() or ""
        assert "CT" in modalities and "MR" in modalities and "CR" in modalities
        ui.screenshot("dashboard")


def test_administrator_adds_a_node_and_tests_it(
    server: Server, archive: Archive, storescp: int
) -> None:
    with ui_page(server) as ui:
        ui.sign_in("ward-admin")
        page = ui.page
        page.get_by_role("link", name="Administration").click()
        page.wait_for_url("**/manage/nodes/")
        ui.screenshot("nodes-empty")
        page.get_by_role("link", name="Add a node").click()
        page.locator("#id_name").fill("storescp")
        page.locator("#id_ae_title").fill("STORESCP")
        page.locator("#id_host").fill("127.0.0.1")
        page.locator("#id_port").fill("70000")
        page.locator("#id_description").fill("DCMTK test peer")
        page.get_by_role("button", name="Add the node").click()
        # Refused beside the field; nothing typed is lost.
        error = page.locator("#id_port-error")
        error.wait_for()
        assert "65535" in error.inner_text()
        assert page.locator("#id_ae_title").input_value() == "STORESCP"
        assert page.locator("#id_description").input_value() == "DCMTK test peer"
        ui.screenshot("node-form-error")
        page.locator("#id_port").fill(str(storescp))
        page.get_by_role("button", name="Add the node").click()
        page.wait_for_url("**/manage/nodes/")
        assert "Added the node storescp." in page.locator(".messages").inner_text()
        page.get_by_role("button", name="Test the connection to storescp").click()
        result = page.locator(".echo-result [data-echo]")
        result.wait_for(timeout=TIMEOUT_MS)
        assert result.get_attribute("data-echo") == "ok"
        text = page.locator(".echo-result").first.inner_text()
        assert "Success" in text and "round trip" in text, text
        ui.screenshot("nodes-echo")
        # The other administration pages.
        for link, shot in (
            ("Users and roles", "users"),
            ("Policies", "policies"),
            ("System status", "status"),
            ("Audit trail", "audit"),
        ):
            page.locator("nav.subnav").get_by_role("link", name=link).click()
            page.wait_for_load_state()
            ui.screenshot(shot)
        page.goto(f"{server.url}/manage/status/")
        rows = page.locator("#status-table tr[data-state]")
        states = dict(
            zip(
                rows.locator("th").all_inner_texts(),
                rows.evaluate_all("rs => rs.map(r => r.dataset.state)"),
                strict=True,
            )
        )
        assert states["Database"] == "ok" and states["Storage"] == "ok", states
        assert states["DICOM listener"] == "ok", states


def test_a_user_of_another_hospital_sees_none_of_it(server: Server, archive: Archive) -> None:
    with ui_page(server) as ui:
        ui.sign_in("outsider")
        page = ui.page
        assert ui.rows() == [archive.elsewhere]
        body = page.locator("main").inner_text()
        assert "SMITH, JOHN" not in body and "JONES" not in body
        page.get_by_label("Search", exact=True).fill("smith")
        ui.settle()
        page.wait_for_timeout(800)
        ui.settle()
        assert ui.rows() == [archive.elsewhere]
        ui.screenshot("other-hospital-worklist")
        response = page.goto(f"{server.url}/studies/{archive.smith}/")
        assert response is not None and response.status == 404
        assert "No study" in page.locator("main").inner_text()
        ui.screenshot("not-found")
        thumbnail = page.request.get(f"{server.url}/dicomweb/studies/{archive.smith}/thumbnail")
        assert thumbnail.status == 404
        page.goto(f"{server.url}/dashboard/")
        assert page.locator("#total-studies").inner_text() == "1"
        page.goto(f"{server.url}/audit/?object_uid={archive.smith}")
        assert "No event matches" in page.locator("main").inner_text()


MAIN_PAGES = (
    ("worklist", "/"),
    ("dashboard", "/dashboard/"),
    ("upload-page", "/upload/"),
    ("transfers", "/transfers/"),
    ("audit-trail", "/audit/"),
    ("nodes", "/manage/nodes/"),
    ("node-form", "/manage/nodes/add/"),
    ("users-page", "/manage/users/"),
    ("user-form", "/manage/users/add/"),
    ("policies-page", "/manage/policies/"),
    ("status-page", "/manage/status/"),
    ("account", "/account/"),
    ("password", "/account/password/"),
    ("authenticator", "/account/authenticator/"),
    ("missing-page", "/no/such/page/"),
)


def test_main_pages_have_no_serious_accessibility_violation(
    server: Server, archive: Archive
) -> None:
    problems: dict[str, Any] = {}
    with ui_page(server) as ui:
        page = ui.page
        ui.goto("/")
        page.wait_for_url("**/accounts/login/**")
        found = ui.axe("sign-in")
        if found:
            problems["sign-in"] = found
        ui.sign_in("ward-admin")
        for name, path in (*MAIN_PAGES, ("study-page", f"/studies/{archive.smith}/")):
            ui.goto(path)
            page.wait_for_load_state()
            found = ui.axe(name)
            if found:
                problems[name] = found
        # A form with its error messages shown.
        ui.goto("/manage/nodes/add/")
        page.get_by_role("button", name="Add the node").click()
        page.locator(".field-error").first.wait_for()
        found = ui.axe("node-form-errors")
        if found:
            problems["node-form-errors"] = found
        # The tag browser, opened.
        ui.goto(f"/studies/{archive.smith}/")
        page.locator(".series-card a", has_text="Tags").first.click()
        page.locator("#tags-panel").wait_for()
        found = ui.axe("tag-browser")
        if found:
            problems["tag-browser"] = found
    assert not problems, problems


def test_keyboard_use_and_small_screens(server: Server, archive: Archive) -> None:
    with ui_page(server, viewport={"width": 390, "height": 844}) as ui:
        ui.sign_in("tech")
        page = ui.page
        # The first Tab reaches "Skip to main content", which moves focus to the page.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent.trim()") == (
            "Skip to main content"
        )
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        # The search works from the keyboard alone.
        page.get_by_label("Patient ID", exact=True).focus()
        page.keyboard.type("P-200")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "uid => [...document.querySelectorAll('#results tr[data-study-uid]')]"
            ".map(r => r.dataset.studyUid).join() === uid",
            arg=archive.jones,
        )
        # Focus is visible: the focused element has an outline.
        page.get_by_label("Patient ID", exact=True).focus()
        page.keyboard.press("Shift+Tab")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"
        # Nothing overflows the narrow screen but the table, which scrolls in its frame.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, width
        ui.screenshot("worklist-phone")
        page.goto(f"{server.url}/studies/{archive.smith}/")
        ui.screenshot("study-phone")
