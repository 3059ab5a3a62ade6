"""Test helpers shared by every app's tests: DICOM objects to ingest, processes to start,
and the environment a child process needs to reach the test database."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from django.db import connection
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid


def shipped_file(name: str) -> Path:
    """A file shipped in pydicom or pydicom-data (never downloaded)."""
    found = get_testdata_file(name, download=False)
    if found is None:
        charset = get_charset_files(name)
        found = charset[0] if charset else None
    if found is None:
        raise FileNotFoundError(f"{name} is not shipped in pydicom or pydicom-data")
    return Path(str(found))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_ct_slice(
    *,
    study_uid: str,
    series_uid: str,
    index: int,
    size: int = 128,
    patient_id: str = "PID001",
    patient_name: str = "TEST^PATIENT",
    modality: str = "CT",
    sop_uid: str | None = None,
    extra: dict[str, object] | None = None,
) -> Dataset:
    """One slice of a synthetic axial CT series (Explicit VR Little Endian, 16-bit)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    sop = UID(sop_uid) if sop_uid else generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20261120"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC001"
    ds.StudyDescription = "CT CHEST"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [0.0, 0.0, float(index) * 1.25]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.78, 0.78]
    ds.SliceThickness = 1.25
    ds.Rows = size
    ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    rng = np.random.default_rng(index)
    ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
    return ds


def write_series(
    folder: Path,
    count: int,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    **kwargs: object,
) -> list[Path]:
    """Write ``count`` slices of one series as Part 10 files into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    study = study_uid or generate_uid()
    series = series_uid or generate_uid()
    paths = []
    for index in range(count):
        ds = make_ct_slice(study_uid=study, series_uid=series, index=index, **kwargs)  # type: ignore[arg-type]
        path = folder / f"slice{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(home: Path, storage_url: str = "", **extra: str) -> dict[str, str]:
    """Environment for a ``carina`` child process sharing the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARINA_")}
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        database_url = f"sqlite:///{settings_dict['NAME']}"
    else:
        user = settings_dict.get("USER") or "postgres"
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        database_url = f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"
    env.update(CARINA_HOME=str(home), CARINA_DATABASE_URL=database_url)
    if storage_url:
        env["CARINA_STORAGE_URL"] = storage_url
    env.update(extra)
    return env


def run_carina(
    args: Iterable[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``carina ARGS`` as a child process and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "carina", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_http(url: str, timeout: float = 60) -> int:
    """Poll ``url`` until it answers; return the HTTP status."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s: {last}")
