"""Rendered images of stored instances, and the cache that keeps them (docs/dicomweb/rendered.md).

A rendition is one frame of one stored object rendered one way (:class:`Rendering`). Its cache
key is a hash of the object's SHA-256, the instance's primary key, the frame number and the
rendering parameters: a replaced object has another SHA-256 and a deleted one is no longer
found by the views, so a stale entry is never served — it is simply never asked for again and
ages out.

Two stores, chosen by settings:

* embedded mode (``CARINA_CACHE_URL`` unset): files under ``CARINA_CACHE_DIR/renditions``,
  written atomically (temporary file + rename), bounded by ``CARINA_CACHE_MAX_BYTES``
  (default 1 GiB): once a process has written a tenth of that since it last looked, it lists
  the folder and deletes the least recently used files (a hit refreshes a file's time) until
  the total is under 90 % of the bound;
* server mode (``CARINA_CACHE_URL=redis://host:port/db``): Redis keys
  ``CARINA_CACHE_PREFIX`` + key, each expiring after ``CARINA_CACHE_TTL`` seconds
  (default 7 days); give Redis a ``maxmemory`` with an LRU policy to bound it further.

A cache that cannot be reached or written is logged and bypassed: the image is rendered
anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Protocol

import redis
from django.conf import settings
from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

from carina.archive.models import Instance
from carina.archive.pixels.render import NoImageError, RenderError, Rendering, render_frames
from carina.archive.storage import get_storage
from carina.archive.storage.base import BlobStorageError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1024**3
DEFAULT_TTL = 7 * 24 * 3600
DEFAULT_PREFIX = "carina:rendition:"
ENCAPSULATED_DOCUMENT = Tag(0x0042, 0x0011)
ENCAPSULATED_LENGTH = Tag(0x0042, 0x0015)


class RenditionCache(Protocol):
    def get(self, key: str) -> bytes | None:
        """The cached bytes, or ``None``."""

    def put(self, key: str, data: bytes) -> None:
        """Keep ``data`` under ``key`` (best effort)."""

    def describe(self) -> str:
        """Where the cache lives."""


def cache_key(instance: Instance, frame: int, rendering: Rendering) -> str:
    """The key of a rendition: object content, instance, frame and rendering parameters."""
    raw = f"{instance.sha256}:{instance.pk}:{frame}:{rendering.token()}"
    return hashlib.sha256(raw.encode()).hexdigest()


class FileCache:
    """Renditions as files ``<root>/<2 hex>/<key>``, least recently used evicted first."""

    #: Bytes written per root since this process last measured it (see :meth:`put`).
    _unmeasured: dict[Path, int] = {}
    _lock = threading.Lock()

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def describe(self) -> str:
        return f"file:{self.root}"

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if not data:  # a write a crash cut short: a miss
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently *used* goes first
        return data

    def put(self, key: str, data: bytes) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(temp, path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("rendition cache %s: cannot write %s: %s", self.describe(), key, exc)
            return
        with self._lock:
            # A process that has not measured the folder yet does so on its first write.
            written = self._unmeasured.get(self.root, self.max_bytes) + len(data)
            self._unmeasured[self.root] = written
        if written >= self.max_bytes // 10:
            self.evict()

    def evict(self) -> int:
        """Delete least recently used files until the folder holds at most 90 % of the
        bound (when it holds more than the bound); returns how many were deleted."""
        with self._lock:
            self._unmeasured[self.root] = 0
        entries: list[tuple[float, int, Path]] = []
        now = time.time()
        for path in self.root.glob("*/*"):
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.name.startswith(".tmp-"):
                if now - stat.st_mtime > 3600:  # left by a crashed writer
                    path.unlink(missing_ok=True)
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return 0
        removed = 0
        for _, size, path in sorted(entries):
            if total <= self.max_bytes * 0.9:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        log.info("rendition cache %s: evicted %d files", self.describe(), removed)
        return removed


class RedisCache:
    """Renditions as Redis strings that expire after ``ttl`` seconds."""

    def __init__(self, client: redis.Redis, prefix: str, ttl: int) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def describe(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"redis://{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db')}"

    def get(self, key: str) -> bytes | None:
        try:
            value = self.client.get(self.prefix + key)
        except redis.RedisError as exc:
            log.warning("rendition cache %s unavailable: %s", self.describe(), exc)
            return None
        return value if isinstance(value, bytes) and value else None

    def put(self, key: str, data: bytes) -> None:
        try:
            self.client.set(self.prefix + key, data, ex=self.ttl)
        except redis.RedisError as exc:
            log.warning("rendition cache %s unavailable: %s", self.describe(), exc)


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _redis(url: str) -> redis.Redis:
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            # Short timeouts: a Redis that does not answer must not hold up an image.
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            _clients[url] = client
        return client


def get_cache() -> RenditionCache:
    """The rendition cache the settings name (read at each call, so tests may change them)."""
    url = str(getattr(settings, "CARINA_CACHE_URL", "") or "")
    if url:
        return RedisCache(
            _redis(url),
            str(getattr(settings, "CARINA_CACHE_PREFIX", DEFAULT_PREFIX)),
            int(getattr(settings, "CARINA_CACHE_TTL", DEFAULT_TTL)),
        )
    return FileCache(
        Path(settings.CARINA_CACHE_DIR) / "renditions",
        int(getattr(settings, "CARINA_CACHE_MAX_BYTES", DEFAULT_MAX_BYTES)),
    )


def rendition(instance: Instance, frame: int, rendering: Rendering, *, cached: bool) -> bytes:
    """Frame ``frame`` of ``instance`` rendered as ``rendering`` says; from the cache when
    ``cached`` and present there, else rendered (and then kept when ``cached``)."""
    cache = get_cache() if cached else None
    key = cache_key(instance, frame, rendering)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    frames = renditions(instance, [frame], rendering)
    try:
        data = next(frames)
    finally:
        frames.close()  # closes the blob now, not when the generator is collected
    if cache is not None:
        cache.put(key, data)
    return data


def encapsulated_document(instance: Instance) -> bytes:
    """The document an Encapsulated Document instance holds (PS3.3 C.24.2: Encapsulated
    Document (0042,0011)), cut to Encapsulated Document Length (0042,0015) when given, so
    that the DICOM padding byte is not part of it."""
    try:
        source = get_storage().open(instance.blob_key)
    except BlobStorageError as exc:
        raise RenderError(f"The stored object could not be read: {exc}", 500) from exc
    try:
        ds = dcmread(source, specific_tags=[ENCAPSULATED_DOCUMENT, ENCAPSULATED_LENGTH])
    except (InvalidDicomError, EOFError, ValueError, OSError) as exc:
        raise RenderError(f"The stored object cannot be read: {exc}", 500) from exc
    finally:
        source.close()
    if ENCAPSULATED_DOCUMENT not in ds:
        raise NoImageError(f"Instance {instance.sop_instance_uid} holds no document.")
    data = bytes(ds[ENCAPSULATED_DOCUMENT].value or b"")
    length = ds.get(ENCAPSULATED_LENGTH)
    if length is not None and length.value is not None and 0 <= int(length.value) <= len(data):
        data = data[: int(length.value)]
    return data


def renditions(
    instance: Instance, frames: Iterable[int], rendering: Rendering
) -> Generator[bytes, None, None]:
    """``frames`` of ``instance`` rendered one after the other, reading the blob once and
    holding one frame at a time (never cached: these are the multipart answers)."""
    try:
        source = get_storage().open(instance.blob_key)
    except BlobStorageError as exc:
        raise RenderError(f"The stored object could not be read: {exc}", 500) from exc
    try:
        yield from render_frames(source, frames, rendering)
    finally:
        source.close()
