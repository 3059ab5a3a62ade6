"""The S3 blob store against a real HTTP S3 endpoint (moto's standalone server).

Every object goes through the one ingest pipeline and is read back through the configured
storage, so these tests see what a user of an S3-backed archive sees: the bytes they sent, in
the bucket under the configured prefix, exactly once, and a clear error (with nothing left
behind) when the bucket cannot be written.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from carina.archive.ingest import IngestStatus, Origin, ingest
from carina.archive.ingest.errors import StorageUnavailableError
from carina.archive.models import Instance, Patient, Series, Source, Study
from carina.archive.storage import BlobStorageError, get_storage, reset_storage
from carina.config.env import parse_storage_url
from carina.core.testing import free_port, shipped_file, wait_http, write_series

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
REGION = "us-east-1"
ACCESS_KEY = "carina-test-key"
SECRET_KEY = "carina-test-secret"
PREFIX = "archive/blobs"

SAMPLE_FILES = [
    "CT_small.dcm",
    "MR_small_RLE.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
    "liver.dcm",
]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on a free local port, for the tests of this module."""
    if not MOTO_SERVER.exists():
        pytest.fail(f"{MOTO_SERVER} is missing: install the dev extras (moto[server])")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(f"{endpoint}/", timeout=60)
        except TimeoutError:
            process.terminate()
            pytest.fail(f"moto_server did not start: {log.read_text(errors='replace')}")
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials; never the developer's own AWS profile or configuration."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A fresh, empty bucket for each test."""
    name = f"carina-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


def _storage_url(endpoint: str, bucket: str) -> str:
    return (
        f"s3://{bucket}/{PREFIX}?endpoint_url={endpoint}&region={REGION}"
        f"&access_key_id={ACCESS_KEY}&secret_access_key={SECRET_KEY}"
    )


def _use_bucket(settings: Any, tmp_path: Path, endpoint: str, bucket: str) -> None:
    settings.CARINA_STORAGE = parse_storage_url(_storage_url(endpoint, bucket), tmp_path)
    reset_storage()


@pytest.fixture
def s3_storage(
    carina_storage: Path, settings: Any, tmp_path: Path, s3_endpoint: str, bucket: str
) -> str:
    """Point the archive at ``bucket`` (under PREFIX) for this test; return the bucket name."""
    _use_bucket(settings, tmp_path, s3_endpoint, bucket)
    return bucket


def _object_keys(client: Any, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def _read_back(key: str) -> bytes:
    body = get_storage().open(key)
    try:
        return body.read()
    finally:
        body.close()


def _origin() -> Origin:
    return Origin(Source.IMPORT, "test_storage_s3")


def test_storage_url_selects_the_s3_backend(s3_storage: str, s3_endpoint: str) -> None:
    storage = get_storage()
    assert storage.describe() == f"s3://{s3_storage}/{PREFIX}"
    location = storage.location  # type: ignore[attr-defined]
    assert location.endpoint_url == s3_endpoint
    assert location.region == REGION


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_ingested_file_reads_back_identical_from_the_bucket(
    name: str, s3_storage: str, s3_client: Any, hospital: Any
) -> None:
    path = shipped_file(name)
    sent = path.read_bytes()

    result = ingest(path, hospital=hospital, origin=_origin())

    assert result.status == IngestStatus.STORED
    assert result.size_bytes == len(sent)
    assert _read_back(result.blob_key) == sent
    # The object is in the bucket, under the configured prefix, and nowhere else.
    assert _object_keys(s3_client, s3_storage) == [f"{PREFIX}/{result.blob_key}"]
    head = s3_client.head_object(Bucket=s3_storage, Key=f"{PREFIX}/{result.blob_key}")
    assert head["ContentLength"] == len(sent)
    instance = Instance.objects.for_hospital(hospital).get(pk=result.instance_id)
    assert instance.blob_key == result.blob_key
    assert get_storage().exists(instance.blob_key)
    assert list(get_storage().iter_keys()) == [result.blob_key]


def test_several_files_and_a_series_all_read_back(
    s3_storage: str, s3_client: Any, hospital: Any, tmp_path: Path
) -> None:
    series = write_series(tmp_path / "series", 4, size=32)
    paths = [shipped_file(name) for name in SAMPLE_FILES] + series

    results = [ingest(path, hospital=hospital, origin=_origin()) for path in paths]

    assert [r.status for r in results] == [IngestStatus.STORED] * len(paths)
    for path, result in zip(paths, results, strict=True):
        instance = Instance.objects.for_hospital(hospital).get(pk=result.instance_id)
        assert _read_back(instance.blob_key) == path.read_bytes(), path.name
    expected = sorted(f"{PREFIX}/{r.blob_key}" for r in results)
    assert _object_keys(s3_client, s3_storage) == expected
    assert sorted(get_storage().iter_keys()) == sorted(r.blob_key for r in results)
    assert Instance.objects.for_hospital(hospital).count() == len(paths)
    study = Study.objects.for_hospital(hospital).get(
        study_instance_uid=results[-1].study_instance_uid
    )
    assert study.number_of_instances == len(series)
    assert study.size_bytes == sum(p.stat().st_size for p in series)


def test_same_object_twice_is_stored_once(
    s3_storage: str, s3_client: Any, hospital: Any, tmp_path: Path
) -> None:
    original = shipped_file("CT_small.dcm")
    copy = tmp_path / "copy-of-ct.dcm"
    copy.write_bytes(original.read_bytes())

    first = ingest(original, hospital=hospital, origin=_origin())
    second = ingest(original, hospital=hospital, origin=_origin())
    third = ingest(copy, hospital=hospital, origin=_origin())

    assert first.status == IngestStatus.STORED
    assert second.status == IngestStatus.ALREADY_PRESENT
    assert third.status == IngestStatus.ALREADY_PRESENT
    assert second.instance_id == third.instance_id == first.instance_id
    assert second.blob_key == first.blob_key
    assert _object_keys(s3_client, s3_storage) == [f"{PREFIX}/{first.blob_key}"]
    assert Instance.objects.for_hospital(hospital).count() == 1
    study = Study.objects.for_hospital(hospital).get()
    assert study.number_of_instances == 1
    assert study.size_bytes == original.stat().st_size


def test_missing_bucket_fails_cleanly(
    carina_storage: Path,
    settings: Any,
    tmp_path: Path,
    s3_endpoint: str,
    s3_client: Any,
    hospital: Any,
) -> None:
    _use_bucket(settings, tmp_path, s3_endpoint, f"carina-missing-{uuid.uuid4().hex[:12]}")
    path = shipped_file("CT_small.dcm")

    with pytest.raises(StorageUnavailableError) as caught:
        ingest(path, hospital=hospital, origin=_origin())

    assert str(path) in caught.value.message
    assert caught.value.dimse_status == 0xA700
    assert caught.value.http_status == 503
    for model in (Instance, Series, Study, Patient):
        assert model.objects.all_hospitals().count() == 0, model.__name__
    staging = Path(settings.CARINA_STAGING_DIR)
    assert not staging.exists() or list(staging.iterdir()) == []


def test_open_streams_the_object_in_chunks(s3_storage: str, hospital: Any) -> None:
    path = shipped_file("liver.dcm")
    sent = path.read_bytes()
    result = ingest(path, hospital=hospital, origin=_origin())

    body = get_storage().open(result.blob_key)
    assert not isinstance(body, bytes | bytearray)
    chunks: list[bytes] = []
    try:
        while chunk := body.read(8192):
            assert len(chunk) <= 8192
            chunks.append(chunk)
    finally:
        body.close()

    assert len(chunks) >= len(sent) // 8192
    assert b"".join(chunks) == sent


def test_open_missing_key_raises_blob_storage_error(s3_storage: str) -> None:
    with pytest.raises(BlobStorageError, match="missing"):
        get_storage().open("1/00/nothing/here/none-0000000000000000.dcm")


def test_probe_passes_on_a_writable_bucket_and_leaves_nothing(
    s3_storage: str, s3_client: Any
) -> None:
    get_storage().probe()

    assert _object_keys(s3_client, s3_storage) == []


def test_probe_raises_on_a_missing_bucket(
    carina_storage: Path, settings: Any, tmp_path: Path, s3_endpoint: str
) -> None:
    missing = f"carina-missing-{uuid.uuid4().hex[:12]}"
    _use_bucket(settings, tmp_path, s3_endpoint, missing)

    with pytest.raises(BlobStorageError, match=missing):
        get_storage().probe()


def test_delete_removes_the_object(s3_storage: str, s3_client: Any, hospital: Any) -> None:
    result = ingest(shipped_file("MR_small_RLE.dcm"), hospital=hospital, origin=_origin())
    storage = get_storage()
    assert storage.exists(result.blob_key)

    storage.delete(result.blob_key)

    assert not storage.exists(result.blob_key)
    assert _object_keys(s3_client, s3_storage) == []
    with pytest.raises(BlobStorageError):
        storage.open(result.blob_key)
    storage.delete(result.blob_key)  # deleting a missing object is not an error
