"""Several ``carina import`` processes at once on overlapping files, against the test database.

Processes import the same files (races on one SOP Instance UID), the series of one study at the
same time (concurrent series creation and count updates in one study), and studies of one
patient (concurrent patient creation). Afterwards the index must be exact: one row per object,
study and series counts equal to the rows, ModalitiesInStudy complete, one blob per row and no
orphan blob.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Count, Sum
from pydicom.uid import generate_uid

from carina.archive.models import Instance, Patient, Series, Study
from carina.core.testing import child_env, sha256_of, write_series

SLICES = 15
PROCESSES = 4
TIMEOUT = 180
SUMMARY = re.compile(
    r"Imported into default: (\d+) stored, (\d+) already present, (\d+) replaced, "
    r"(\d+) rejected, (\d+) skipped"
)


def _write_studies(root: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """3 studies x 2 series x SLICES slices; return series folders and expected modalities.

    Study A (CT + PT) and study B (CT + PT) belong to one patient, study C (two CT series)
    to another.
    """
    layout = {
        "A": [("CT", "PID-ONE"), ("PT", "PID-ONE")],
        "B": [("CT", "PID-ONE"), ("PT", "PID-ONE")],
        "C": [("CT", "PID-TWO"), ("CT", "PID-TWO")],
    }
    folders: dict[str, Path] = {}
    modalities: dict[str, str] = {}
    for study, series_list in layout.items():
        study_uid = generate_uid()
        modalities[study_uid] = "\\".join(sorted({m for m, _ in series_list}))
        for number, (modality, patient_id) in enumerate(series_list, start=1):
            name = f"{study}{number}-{modality}"
            folders[name] = root / name
            write_series(
                root / name,
                SLICES,
                study_uid=study_uid,
                size=64,
                modality=modality,
                patient_id=patient_id,
                patient_name=f"TEST^{patient_id}",
                extra={"SeriesNumber": number, "SeriesDescription": name},
            )
    return folders, modalities


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_keep_the_index_exact(tmp_path: Path, hospital: Any) -> None:
    folders, expected_modalities = _write_studies(tmp_path / "incoming")
    # Who imports what: P1 and P2 the very same files in the same order (races on one SOP
    # Instance UID); P3 the other series of the same studies at the same moment (concurrent
    # series creation and count updates in one study); P4 the files of P3 in another order,
    # starting on another study.
    plan = [
        ["A1-CT", "B1-CT", "C1-CT"],
        ["A1-CT", "B1-CT", "C1-CT"],
        ["A2-PT", "B2-PT", "C2-CT"],
        ["C2-CT", "A2-PT", "B2-PT"],
    ]
    assert len(plan) == PROCESSES
    all_files = sorted(p for folder in folders.values() for p in folder.glob("*.dcm"))
    assert len(all_files) == 3 * 2 * SLICES

    blobs = settings.CARINA_STORAGE.path
    assert blobs is not None
    storage_url = f"file://{blobs.resolve()}"
    homes = [tmp_path / f"home{i}" for i in range(PROCESSES)]
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "carina",
                "import",
                "--quiet",
                *(str(folders[name]) for name in names),
            ],
            env=child_env(home, storage_url=storage_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for home, names in zip(homes, plan, strict=True)
    ]
    outputs: list[tuple[int, str, str]] = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=TIMEOUT - (time.monotonic() - started))
            outputs.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()

    totals: Counter[str] = Counter()
    for (code, stdout, stderr), names in zip(outputs, plan, strict=True):
        report = f"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        assert code == 0, report
        assert "database is locked" not in stderr.lower(), report
        assert "deadlock" not in stderr.lower(), report
        assert "Traceback" not in stderr, report
        match = SUMMARY.search(stdout)
        assert match, report
        stored, present, replaced, rejected, skipped = map(int, match.groups())
        assert (replaced, rejected, skipped) == (0, 0, 0), report
        assert stored + present == len(names) * SLICES, report
        totals["stored"] += stored
        totals["already_present"] += present

    # Each object was stored by exactly one process; the others found it already present.
    distinct_sops = len(all_files)
    assert totals["stored"] == distinct_sops
    assert totals["already_present"] == sum(len(n) for n in plan) * SLICES - distinct_sops

    instances = list(Instance.objects.for_hospital(hospital).select_related("series__study"))
    assert len(instances) == distinct_sops
    assert Instance.objects.all_hospitals().count() == distinct_sops
    assert len({i.sop_instance_uid for i in instances}) == distinct_sops

    # Study and series counts equal what the instance rows say.
    series_rows = Series.objects.for_hospital(hospital).annotate(
        rows=Count("instances"), bytes=Sum("instances__size_bytes")
    )
    assert len(series_rows) == 6
    for series in series_rows:
        assert series.number_of_instances == series.rows == SLICES, series.series_description
        assert series.size_bytes == series.bytes, series.series_description
    per_study: dict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        per_study[instance.series.study.study_instance_uid].append(instance)
    studies = list(Study.objects.for_hospital(hospital))
    assert {s.study_instance_uid for s in studies} == set(expected_modalities)
    for study in studies:
        rows = per_study[study.study_instance_uid]
        assert study.number_of_instances == len(rows) == 2 * SLICES
        assert study.number_of_series == len({i.series_id for i in rows}) == 2
        assert study.size_bytes == sum(i.size_bytes for i in rows)
        assert study.modalities_in_study == expected_modalities[study.study_instance_uid]
    assert sorted(expected_modalities.values()) == ["CT", "CT\\PT", "CT\\PT"]
    assert sorted(Patient.objects.for_hospital(hospital).values_list("patient_id", flat=True)) == [
        "PID-ONE",
        "PID-TWO",
    ]

    # One blob per row, identical to the file imported, and nothing else in the blob folder.
    sources = {sha256_of(path): path for path in all_files}
    for instance in instances:
        blob = blobs / instance.blob_key
        assert blob.is_file(), instance.blob_key
        assert instance.sha256 in sources
        assert sha256_of(blob) == instance.sha256
        assert blob.stat().st_size == instance.size_bytes
    on_disk = sorted(p.relative_to(blobs).as_posix() for p in blobs.rglob("*.dcm"))
    assert on_disk == sorted(i.blob_key for i in instances)
    leftovers = [p for p in blobs.rglob("*") if p.is_file() and not p.name.endswith(".dcm")]
    assert leftovers == []
    for home in homes:
        staging = home / "staging"
        assert not staging.exists() or list(staging.iterdir()) == []
