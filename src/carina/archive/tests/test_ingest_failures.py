"""A failure at any step of the pipeline leaves no orphan blob, no row without a blob, no
staging file, and fires no side effect."""

from __future__ import annotations

import errno
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.db import OperationalError, connection
from pydicom.uid import generate_uid

from carina.archive import signals
from carina.archive.ingest import IngestError, IngestStatus, Origin, ingest
from carina.archive.ingest import hot_path as hot_path_module
from carina.archive.ingest import index as index_module
from carina.archive.ingest.errors import NotDicomError, StorageUnavailableError
from carina.archive.models import Instance, Source, Study
from carina.archive.storage import BlobStorageError, get_storage
from carina.core.testing import write_series
from carina.tenancy.models import Hospital


class InjectedError(RuntimeError):
    """An injected failure."""


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    """Side effects the archive queued (instance_stored signals that were delivered)."""
    calls: list[dict[str, Any]] = []

    def receiver(sender: object, **kwargs: Any) -> None:
        kwargs["in_transaction"] = connection.in_atomic_block
        calls.append(kwargs)

    signals.instance_stored.connect(receiver, weak=False)
    yield calls
    signals.instance_stored.disconnect(receiver)


@pytest.fixture
def series(tmp_path: Path) -> list[Path]:
    study = generate_uid()
    return [
        *write_series(tmp_path / "a", 2, study_uid=study, modality="CT"),
        *write_series(tmp_path / "b", 1, study_uid=study, modality="PT"),
    ]


def _raise(*args: object, **kwargs: object) -> None:
    raise InjectedError("injected")


#: Steps of the general path, met by a new series of a known study (the third file).
INDEX_GENERAL_STEPS = ["_record_mismatches", "_locked_study", "_series", "_add_modality"]
#: Those, and steps of the common case (carina.archive.ingest.hot_path), met by the next image
#: of a known series (the second file): before anything is written, and after the instance
#: row and the series' count are written but before the study's.
INDEX_STEPS = [
    *((index_module, step, 2) for step in INDEX_GENERAL_STEPS),
    (hot_path_module, "differs", 1),
    (hot_path_module, "merged_modalities", 1),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("module", "step", "index"), INDEX_STEPS)
def test_failure_while_indexing_rolls_back_and_removes_the_blob(
    module: ModuleType,
    step: str,
    index: int,
    series: list[Path],
    hospital: Hospital,
    monkeypatch: pytest.MonkeyPatch,
    snapshot: Callable[[], dict[str, object]],
    received: list[dict[str, Any]],
) -> None:
    ingest(series[0], hospital=hospital, origin=Origin(Source.IMPORT))
    received.clear()
    before = snapshot()
    monkeypatch.setattr(module, step, _raise)
    with pytest.raises(InjectedError):
        ingest(series[index], hospital=hospital, origin=Origin(Source.IMPORT))
    assert snapshot() == before
    assert received == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("step", ["resolve_patient", "_series", "_add_modality"])
def test_failure_while_indexing_a_new_study_leaves_nothing(
    step: str,
    series: list[Path],
    hospital: Hospital,
    monkeypatch: pytest.MonkeyPatch,
    snapshot: Callable[[], dict[str, object]],
    received: list[dict[str, Any]],
) -> None:
    before = snapshot()
    monkeypatch.setattr(index_module, step, _raise)
    with pytest.raises(InjectedError):
        ingest(series[0], hospital=hospital, origin=Origin(Source.IMPORT))
    assert snapshot() == before
    assert received == []


@pytest.mark.django_db(transaction=True)
def test_failure_at_commit_leaves_nothing(
    series: list[Path],
    hospital: Hospital,
    monkeypatch: pytest.MonkeyPatch,
    snapshot: Callable[[], dict[str, object]],
    received: list[dict[str, Any]],
) -> None:
    before = snapshot()

    def failing_commit() -> None:
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(connection, "commit", failing_commit)
    with pytest.raises(StorageUnavailableError) as caught:
        ingest(series[0], hospital=hospital, origin=Origin(Source.IMPORT), name="slice0.dcm")
    assert caught.value.message == "slice0.dcm: the archive database failed: disk I/O error"
    assert caught.value.dimse_status == 0xA700
    monkeypatch.undo()
    assert snapshot() == before
    assert received == []


@pytest.mark.django_db(transaction=True)
def test_storage_failure_is_out_of_resources_and_leaves_nothing(
    series: list[Path],
    hospital: Hospital,
    monkeypatch: pytest.MonkeyPatch,
    snapshot: Callable[[], dict[str, object]],
) -> None:
    storage = get_storage()
    original_put = storage.put

    def put_then_fail(key: str, staged: Path) -> None:
        original_put(key, staged)  # the bytes reach the store, then the call fails
        raise BlobStorageError("device unplugged")

    monkeypatch.setattr(storage, "put", put_then_fail)
    before = snapshot()
    with pytest.raises(StorageUnavailableError) as caught:
        ingest(series[0], hospital=hospital, origin=Origin(Source.IMPORT), name="slice0.dcm")
    assert caught.value.dimse_status == 0xA700
    assert caught.value.http_status == 503
    assert caught.value.message == "slice0.dcm: the archive storage failed: device unplugged"
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_full_disk_while_receiving_is_reported(
    series: list[Path],
    hospital: Hospital,
    monkeypatch: pytest.MonkeyPatch,
    snapshot: Callable[[], dict[str, object]],
) -> None:
    real_open = Path.open

    class FullFile(io.BytesIO):
        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_full(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if self.suffix == ".part" and "w" in mode:
            return FullFile()
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_full)
    before = snapshot()
    with pytest.raises(StorageUnavailableError) as caught:
        ingest(series[0], hospital=hospital, origin=Origin(Source.DIMSE, "CT1"), name="C-STORE")
    assert "no space left" in caught.value.reason
    monkeypatch.undo()
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_sender_dropping_mid_object_stores_nothing(
    series: list[Path],
    hospital: Hospital,
    snapshot: Callable[[], dict[str, object]],
) -> None:
    class Dropping(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 1000:
                raise ConnectionResetError("peer reset")
            return super().read(min(size or 512, 512))

    before = snapshot()
    with pytest.raises(NotDicomError) as caught:
        ingest(
            Dropping(series[0].read_bytes()),
            hospital=hospital,
            origin=Origin(Source.STOW),
            name="part 1",
        )
    assert "could not be read completely" in caught.value.reason
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_side_effects_run_after_commit_only(
    series: list[Path],
    hospital: Hospital,
    received: list[dict[str, Any]],
) -> None:
    result = ingest(series[0], hospital=hospital, origin=Origin(Source.DIMSE, "MODALITY1"))
    assert len(received) == 1
    call = received[0]
    assert call["instance_id"] == result.instance_id
    assert call["status"] == IngestStatus.STORED
    assert call["origin"] == Origin(Source.DIMSE, "MODALITY1")
    assert call["in_transaction"] is False
    # Storing the same object again is not news: no second side effect.
    again = ingest(series[0], hospital=hospital, origin=Origin(Source.DIMSE, "MODALITY1"))
    assert again.status == IngestStatus.ALREADY_PRESENT
    assert len(received) == 1


@pytest.mark.django_db(transaction=True)
def test_a_failing_side_effect_does_not_undo_the_store(
    series: list[Path],
    hospital: Hospital,
) -> None:
    def broken_receiver(sender: object, **kwargs: Any) -> None:
        raise InjectedError("routing is down")

    signals.instance_stored.connect(broken_receiver, weak=False)
    try:
        result = ingest(series[0], hospital=hospital, origin=Origin(Source.IMPORT))
    finally:
        signals.instance_stored.disconnect(broken_receiver)
    assert result.status == IngestStatus.STORED
    assert Instance.objects.for_hospital(hospital).count() == 1
    assert Study.objects.for_hospital(hospital).get().number_of_instances == 1


def test_every_error_class_maps_to_dimse_and_http() -> None:
    from carina.archive.ingest import errors

    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, IngestError)
    ]
    assert len(classes) >= 9
    for cls in classes:
        assert 0xA700 <= cls.dimse_status < 0xD000, cls
        assert 400 <= cls.http_status < 600, cls
