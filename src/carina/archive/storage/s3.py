"""Blobs in an S3-compatible bucket, through django-storages and boto3.

Uploads stream from the staged file (boto3's managed transfer, multipart for large objects);
reads stream the object body. An S3 PUT is durable when it returns (the service's guarantee).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError
from storages.backends.s3 import S3Storage

from carina.archive.storage.base import BlobStorageError
from carina.config.env import StorageLocation


class S3BlobStorage:
    """Blob storage in an S3 bucket (``CARINA_STORAGE_URL=s3://bucket/prefix?endpoint_url=…``)."""

    def __init__(self, location: StorageLocation) -> None:
        self.location = location
        options: dict[str, Any] = {
            "bucket_name": location.bucket,
            "location": location.prefix,
            "file_overwrite": True,
            "default_acl": None,
        }
        if location.endpoint_url:
            options["endpoint_url"] = location.endpoint_url
        if location.region:
            options["region_name"] = location.region
        if location.access_key_id:
            options["access_key"] = location.access_key_id
        if location.secret_access_key:
            options["secret_key"] = location.secret_access_key
        self._storage = S3Storage(**options)

    @property
    def _client(self) -> Any:
        return self._storage.connection.meta.client

    def _name(self, key: str) -> str:
        return cast(str, self._storage._normalize_name(key))

    def put(self, key: str, staged: Path) -> None:
        try:
            self._client.upload_file(str(staged), self.location.bucket, self._name(key))
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise BlobStorageError(f"cannot upload blob {key} to {self.describe()}: {exc}") from exc
        staged.unlink(missing_ok=True)

    def open(self, key: str) -> BinaryIO:
        try:
            response = self._client.get_object(Bucket=self.location.bucket, Key=self._name(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise BlobStorageError(f"blob {key} is missing from {self.describe()}") from exc
            raise BlobStorageError(f"cannot read blob {key} from {self.describe()}: {exc}") from exc
        except BotoCoreError as exc:
            raise BlobStorageError(f"cannot reach {self.describe()}: {exc}") from exc
        return cast(BinaryIO, response["Body"])

    def delete(self, key: str) -> None:
        try:
            self._storage.delete(key)
        except (BotoCoreError, ClientError) as exc:
            raise BlobStorageError(f"cannot delete blob {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            return bool(self._storage.exists(key))
        except (BotoCoreError, ClientError) as exc:
            raise BlobStorageError(f"cannot reach {self.describe()}: {exc}") from exc

    def iter_keys(self) -> Iterator[str]:
        prefix = f"{self.location.prefix}/" if self.location.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(prefix) :]

    def probe(self) -> None:
        key = f".probe/{uuid.uuid4().hex}"
        try:
            self._client.put_object(Bucket=self.location.bucket, Key=self._name(key), Body=b"")
            self._client.delete_object(Bucket=self.location.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as exc:
            raise BlobStorageError(f"{self.describe()} is not writable: {exc}") from exc

    def describe(self) -> str:
        suffix = f"/{self.location.prefix}" if self.location.prefix else ""
        return f"s3://{self.location.bucket}{suffix}"
