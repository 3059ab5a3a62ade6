"""C-STORE from DCMTK and from Carina's SCU: every object arrives in the archive of the hospital
that was called, in the transfer syntax it was sent in, with its data set intact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, generate_uid

from carina.archive.models import Instance
from carina.core.testing import shipped_file, write_series
from carina.dimse import scu
from carina.dimse.listener import Listener
from carina.dimse.scu import StoreProgress
from carina.dimse.tests.conftest import (
    HOST,
    SCU_AE,
    assert_archived_as_sent,
    dcmtk,
    scu_args,
)
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)


def test_storescu_series_is_archived_as_sent(
    listener: Listener, hospital: Hospital, tmp_path: Path, spool: Path
) -> None:
    paths = write_series(tmp_path / "ct", 5)
    result = dcmtk("storescu", *scu_args(listener.port), *map(str, paths))
    assert result.returncode == 0, result.stderr
    assert Instance.objects.for_hospital(hospital).count() == 5
    for path in paths:
        assert_archived_as_sent(hospital, path, same_bytes=True)
    assert list(spool.iterdir()) == []  # the spooled data sets are gone


@pytest.mark.parametrize(
    ("proposal", "name"),
    [
        ("-xr", "MR_small_RLE.dcm"),
        ("-xv", "MR_small_jp2klossless.dcm"),
        ("-xw", "693_J2KI.dcm"),
        ("-xs", "SC_rgb_jpeg_gdcm.dcm"),
        ("-xy", "SC_rgb_dcmtk_+eb+cy+np.dcm"),
        ("-xx", "JPGExtended.dcm"),
        ("-xt", "MR_small_jpeg_ls_lossless.dcm"),
        ("-xd", "image_dfl.dcm"),
        ("-xb", "MR_small_bigendian.dcm"),
        ("-xi", "MR_small_implicit.dcm"),
    ],
)
def test_storescu_proposals_store_each_syntax_as_received(
    listener: Listener, hospital: Hospital, tmp_path: Path, proposal: str, name: str
) -> None:
    path = tmp_path / name
    shutil.copy(shipped_file(name), path)
    result = dcmtk("storescu", proposal, "-R", *scu_args(listener.port), str(path))
    assert result.returncode == 0, result.stderr
    assert_archived_as_sent(hospital, path)


def test_a_synthesized_rle_series_is_stored_compressed(
    listener: Listener, hospital: Hospital, tmp_path: Path
) -> None:
    paths = write_series(tmp_path / "rle", 3)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless, generate_instance_uid=False)
        ds.save_as(path, enforce_file_format=True)
    result = dcmtk("storescu", "-xr", *scu_args(listener.port), *map(str, paths))
    assert result.returncode == 0, result.stderr
    for path in paths:
        instance = assert_archived_as_sent(hospital, path, same_bytes=True)
        assert instance.transfer_syntax_uid == RLELossless


def _mixed_folder(folder: Path) -> list[Path]:
    """Objects in nine transfer syntaxes, with distinct SOP Instance UIDs."""
    paths = write_series(folder / "ct", 3)
    implicit = pydicom.dcmread(paths[0])
    implicit.SOPInstanceUID = implicit.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    implicit.save_as(folder / "ct" / "implicit.dcm", enforce_file_format=True)
    paths.append(folder / "ct" / "implicit.dcm")
    for name in [
        "MR_small_RLE.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "SC_rgb_dcmtk_+eb+cy+np.dcm",
        "JPGExtended.dcm",
        "693_J2KI.dcm",
        "emri_small_jpeg_ls_lossless.dcm",
        "image_dfl.dcm",
    ]:
        target = folder / "other" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shipped_file(name), target)
        paths.append(target)
    return paths


def test_dcmsend_sends_a_mixed_syntax_folder_and_each_object_keeps_its_syntax(
    listener: Listener, hospital: Hospital, tmp_path: Path
) -> None:
    paths = _mixed_folder(tmp_path / "mixed")
    syntaxes = {
        str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID) for p in paths
    }
    assert len(syntaxes) == 9
    result = dcmtk("dcmsend", *scu_args(listener.port), "+sd", "+r", str(tmp_path / "mixed"))
    assert result.returncode == 0, result.stderr
    assert Instance.objects.for_hospital(hospital).count() == len(paths)
    for path in paths:
        # dcmsend proposes the uncompressed syntaxes in one context, explicit little endian
        # first, and converts an implicit VR file itself; compressed files go as they are.
        converted = ExplicitVRLittleEndian if path.name == "implicit.dcm" else None
        assert_archived_as_sent(hospital, path, syntax=converted)


def test_scu_store_streams_files_over_one_association_with_progress(
    listener: Listener, hospital: Hospital, tmp_path: Path
) -> None:
    paths = _mixed_folder(tmp_path / "mixed")
    progress: list[StoreProgress] = []
    report = scu.store(paths, HOST, listener.port, "CARINA", SCU_AE, on_progress=progress.append)
    assert not report.failed, report.failed
    assert report.sent == len(paths)
    assert [p.done for p in progress] == list(range(1, len(paths) + 1))
    assert {p.total for p in progress} == {len(paths)}
    for path in paths:
        # pynetdicom sends the file's data set bytes unchanged, so they arrive unchanged.
        assert_archived_as_sent(hospital, path, same_bytes=True)

    again = scu.store(paths, HOST, listener.port, "CARINA", SCU_AE)
    assert again.sent == len(paths)  # already present is success
    assert Instance.objects.for_hospital(hospital).count() == len(paths)


def test_objects_sent_to_one_hospitals_ae_title_stay_in_that_hospital(
    listener: Listener, hospital: Hospital, other_hospital: Hospital, tmp_path: Path
) -> None:
    other_hospital.unknown_calling_ae_policy = "accept"
    other_hospital.save()
    to_default = write_series(tmp_path / "a", 2, patient_id="A")
    to_other = write_series(tmp_path / "b", 3, patient_id="B")
    both = shipped_file("CT_small.dcm")
    assert dcmtk("storescu", *scu_args(listener.port), *map(str, to_default)).returncode == 0
    assert (
        dcmtk("storescu", *scu_args(listener.port, called="OTHERAE"), *map(str, to_other))
    ).returncode == 0
    for called in ("CARINA", "OTHERAE"):
        assert dcmtk("storescu", *scu_args(listener.port, called=called), str(both)).returncode == 0

    def uids(h: Hospital) -> set[str]:
        return set(Instance.objects.for_hospital(h).values_list("sop_instance_uid", flat=True))

    ct_small = str(pydicom.dcmread(both, stop_before_pixels=True).SOPInstanceUID)
    sent_a = {str(pydicom.dcmread(p).SOPInstanceUID) for p in to_default}
    sent_b = {str(pydicom.dcmread(p).SOPInstanceUID) for p in to_other}
    assert uids(hospital) == sent_a | {ct_small}
    assert uids(other_hospital) == sent_b | {ct_small}
    # The same object sent to both is two archive copies, one per hospital.
    assert Instance.objects.all_hospitals().filter(sop_instance_uid=ct_small).count() == 2
