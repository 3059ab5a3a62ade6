"""Prometheus metrics at ``/metrics`` (docs/operations.md, "Metrics").

**Several processes, one answer.** The web server runs several gunicorn workers, and objects
also arrive through the DICOM listener, the task worker and ``carina import``: each is its own
process. prometheus-client's multiprocess mode adds them up: every process writes its
counters and histograms to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (set by the
settings to ``CARINA_HOME/metrics`` before this module is imported), and a scrape reads them
all (:class:`~prometheus_client.multiprocess.MultiProcessCollector`). Counters of a process
that has ended stay in the sum, so totals never go down while Carina runs; ``carina serve``
empties the folder when it starts (:func:`reset_folder`).

Figures the database already knows — storage used per hospital, queue depth, build
information — are read at scrape time (:class:`ScrapeTimeCollector`), not counted.

What is counted, and where:

* ``carina_instances_received_total{source,status}``, ``carina_received_bytes_total{source}``,
  ``carina_ingest_duration_seconds{source}``: the archive's ``instance_stored`` signal, sent
  after the commit of every object stored (new or replacing one; not an object already
  present). ``source``: dimse, stow, upload, api, import, …
* ``carina_dicom_associations_total{result}``: ``accepted`` when an association ends,
  ``rejected`` when one is refused — from the audit events the listener records
  (``carina.audit.signals.events_recorded``).
* ``carina_http_requests_total{method,route,status}`` and
  ``carina_http_request_duration_seconds{method,route}``: :class:`HttpMetricsMiddleware`.
  ``route`` is the URL pattern (``api/studies/<uid>/``), never the path, so that a UID never
  becomes a label. The duration is until the view answered; a streamed body (ZIP, CSV) is
  sent afterwards.
* ``carina_queue_depth{queue}``: what the functions given to :func:`register_queue_depth`
  answer at scrape time (``0`` for ``default`` while no task queue registered one).
* ``carina_storage_used_bytes{hospital}``, ``carina_stored_instances{hospital}``,
  ``carina_stored_studies{hospital}``: from the index at scrape time.
* ``carina_build_info{version,python,django}``: always 1.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import os
import platform
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponseBase
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from carina.archive.models import Study
from carina.audit.models import Action

logger = logging.getLogger(__name__)

#: The Prometheus text format that every Prometheus version reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
ENV_FOLDER = "PROMETHEUS_MULTIPROC_DIR"

#: Seconds: from a small object on a fast disk to a large one on a busy S3 bucket.
INGEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

INSTANCES_RECEIVED = Counter(
    "carina_instances_received",
    "DICOM instances stored (new or replacing one), by how they arrived.",
    ["source", "status"],
)
BYTES_RECEIVED = Counter(
    "carina_received_bytes",
    "Bytes of the DICOM instances stored, by how they arrived.",
    ["source"],
)
INGEST_SECONDS = Histogram(
    "carina_ingest_duration_seconds",
    "Seconds to ingest one instance (read, parse, store the blob, index), by source.",
    ["source"],
    buckets=INGEST_BUCKETS,
)
ASSOCIATIONS = Counter(
    "carina_dicom_associations",
    "DICOM associations: accepted (counted when they end) or rejected.",
    ["result"],
)
HTTP_REQUESTS = Counter(
    "carina_http_requests",
    "HTTP requests answered, by method, URL pattern and status code.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "carina_http_request_duration_seconds",
    "Seconds until the view answered, by method and URL pattern.",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
)

# --- Multiprocess folder --------------------------------------------------------------------


def folder() -> Path | None:
    """The multiprocess folder, or None when prometheus-client counts in this process only."""
    path = os.environ.get(ENV_FOLDER)
    return Path(path) if path else None


def reset_folder() -> None:
    """Empty the multiprocess folder: ``carina serve`` calls it before it starts the
    processes (files of processes of an earlier run must not add to the new one's)."""
    path = folder()
    if path is None:
        return
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


# --- Recording ------------------------------------------------------------------------------

_warned = threading.Event()


def _safely(record: Callable[[], None]) -> None:
    """Count without ever failing the work being counted (a missing metrics folder, a full
    disk); the first failure is logged."""
    try:
        record()
    except Exception:
        if not _warned.is_set():
            _warned.set()
            logger.exception("metrics could not be recorded (folder %s)", folder())


def on_instance_stored(
    sender: Any,
    origin: Any = None,
    status: Any = None,
    size_bytes: int | None = None,
    seconds: float | None = None,
    **kwargs: Any,
) -> None:
    """The archive's ``instance_stored`` signal."""
    source = str(getattr(getattr(origin, "source", None), "value", None) or "unknown")

    def record() -> None:
        INSTANCES_RECEIVED.labels(source=source, status=str(status or "stored")).inc()
        if size_bytes:
            BYTES_RECEIVED.labels(source=source).inc(size_bytes)
        if seconds is not None:
            INGEST_SECONDS.labels(source=source).observe(seconds)

    _safely(record)


def on_audit_events(sender: Any, events: list[Any] | None = None, **kwargs: Any) -> None:
    """The audit trail's ``events_recorded`` signal: DICOM associations."""
    for event in events or []:
        result = _ASSOCIATION_RESULTS.get(event.action)
        if result is not None:
            _safely(ASSOCIATIONS.labels(result=result).inc)


_ASSOCIATION_RESULTS = {Action.ASSOCIATION: "accepted", Action.ASSOCIATION_REJECTED: "rejected"}


# --- HTTP -----------------------------------------------------------------------------------

_GROUP = re.compile(r"\(\?P<(\w+)>")


@functools.lru_cache(maxsize=1024)
def readable_route(route: str) -> str:
    """A URL pattern as people read it: ``^studies/(?P<uid>[0-9.]+)/$`` → ``studies/<uid>/``
    (named groups become ``<name>``; anchors go)."""
    out: list[str] = []
    i = 0
    while i < len(route):
        group = _GROUP.match(route, i)
        if group:
            depth, j = 1, group.end()
            while j < len(route) and depth:
                if route[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(route[j], 0)
                j += 1
            out.append(f"<{group.group(1)}>")
            i = j
        elif route[i] in "^$":
            i += 1
        elif route[i] == "\\" and i + 1 < len(route):
            out.append(route[i + 1])
            i += 2
        else:
            out.append(route[i])
            i += 1
    return "".join(out)


def route_of(request: HttpRequest) -> str:
    """The metric label of a request's route."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return readable_route(match.route)
    static = "/" + str(settings.STATIC_URL).lstrip("/")
    return "(static)" if request.path.startswith(static) else "(unmatched)"


class HttpMetricsMiddleware:
    """Counts and times every request (``carina_http_*``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        method = request.method if request.method in _METHODS else "other"
        route = route_of(request)

        def record() -> None:
            HTTP_SECONDS.labels(method=method, route=route).observe(seconds)
            HTTP_REQUESTS.labels(method=method, route=route, status=str(response.status_code)).inc()

        _safely(record)
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# --- Scrape-time figures --------------------------------------------------------------------

QueueDepth = Callable[[], int]
_queues: dict[str, QueueDepth] = {}


def register_queue_depth(queue: str, depth: QueueDepth) -> None:
    """Report ``depth()`` as ``carina_queue_depth{queue=…}`` at each scrape (the task queue
    registers its queues here; a failing function is left out of that scrape)."""
    _queues[queue] = depth


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover - a source tree without installation
        return "unknown"


class ScrapeTimeCollector(Collector):
    """Figures read when Prometheus asks: storage, queues, build."""

    def collect(self) -> Iterator[Metric]:
        yield from self._storage()
        queues = GaugeMetricFamily(
            "carina_queue_depth", "Tasks waiting in each task queue.", labels=["queue"]
        )
        if not _queues:
            queues.add_metric(["default"], 0)
        for name, depth in sorted(_queues.items()):
            try:
                queues.add_metric([name], float(depth()))
            except Exception:
                logger.exception("the depth of queue %s could not be read", name)
        yield queues
        build = GaugeMetricFamily(
            "carina_build_info",
            "Carina's version and platform (always 1).",
            labels=["version", "python", "django"],
        )
        build.add_metric(
            [_package_version("carina"), platform.python_version(), django.get_version()], 1
        )
        yield build

    def _storage(self) -> Iterator[Metric]:
        used = GaugeMetricFamily(
            "carina_storage_used_bytes",
            "Bytes of the DICOM objects stored, per hospital (from the index).",
            labels=["hospital"],
        )
        instances = GaugeMetricFamily(
            "carina_stored_instances", "Instances stored, per hospital.", labels=["hospital"]
        )
        studies = GaugeMetricFamily(
            "carina_stored_studies", "Studies stored, per hospital.", labels=["hospital"]
        )
        try:
            rows = (
                Study.objects.all_hospitals()
                .values("hospital__slug")
                .annotate(
                    studies=Count("pk"),
                    instances=Sum("number_of_instances"),
                    size=Sum("size_bytes"),
                )
                .order_by("hospital__slug")
            )
            for row in rows:
                slug = [row["hospital__slug"]]
                used.add_metric(slug, float(row["size"] or 0))
                instances.add_metric(slug, float(row["instances"] or 0))
                studies.add_metric(slug, float(row["studies"]))
        except Exception:
            logger.exception("the storage figures could not be read from the database")
        yield from (used, instances, studies)


def exposition() -> bytes:
    """Every metric in the Prometheus text format: the counters of every process (or of
    this one, without a multiprocess folder), then the scrape-time figures."""
    path = folder()
    if path is None:
        counted = REGISTRY
    else:
        path.mkdir(parents=True, exist_ok=True)
        counted = CollectorRegistry()
        MultiProcessCollector(counted, path=str(path))  # type: ignore[no-untyped-call]
    scraped = CollectorRegistry()
    scraped.register(ScrapeTimeCollector())
    return bytes(generate_latest(counted) + generate_latest(scraped))


# --- Who may read them ----------------------------------------------------------------------

TOKEN_FILE = "metrics_token"


def metrics_token() -> str:
    """The token a remote scraper sends (``Authorization: Bearer …``): the setting
    ``CARINA_METRICS_TOKEN``, else the first line of ``CARINA_HOME/metrics_token``; "" =
    none (loopback only)."""
    configured = str(getattr(settings, "CARINA_METRICS_TOKEN", "") or "")
    if configured:
        return configured
    path = Path(settings.CARINA_HOME) / TOKEN_FILE
    try:
        return path.read_text().strip().splitlines()[0].strip()
    except (OSError, IndexError):
        return ""


def refusal(request: HttpRequest) -> str | None:
    """Why ``request`` may not read the metrics, or None when it may: it comes from this
    machine (loopback), or it carries the metrics token."""
    try:
        if ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", ""))).is_loopback:
            return None
    except ValueError:
        pass
    token = metrics_token()
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return None
    return (
        "The metrics are served to this machine (loopback) only, or to a caller that sends "
        "'Authorization: Bearer <token>' with the token of CARINA_HOME/metrics_token "
        "(docs/operations.md, 'Metrics')."
    )


__all__ = [
    "CONTENT_TYPE",
    "HttpMetricsMiddleware",
    "exposition",
    "on_audit_events",
    "on_instance_stored",
    "refusal",
    "register_queue_depth",
    "reset_folder",
]
