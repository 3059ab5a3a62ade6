"""``/metrics``: valid Prometheus text, the counters of what happened (objects received, HTTP
requests, DICOM associations) summed over every process, figures read at scrape time, and
only for this machine or a caller with the metrics token."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from pydicom.uid import generate_uid

from carina.archive.ingest import Origin, ingest
from carina.archive.models import Source
from carina.core.testing import child_env, make_ct_slice, run_carina, write_series
from carina.dimse.listener import Listener, ListenerConfig
from carina.dimse.scu import DimseError, echo
from carina.ops import metrics
from carina.tenancy.models import Hospital

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Client | None = None) -> Samples:
    """Every sample of ``/metrics``, parsed by prometheus-client's own parser (it raises on
    text that is not valid exposition format)."""
    answer = (client or Client()).get("/metrics")
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.content.decode()):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"{key} twice"
            samples[key] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the metric did not change"
        time.sleep(0.05)


@pytest.mark.django_db
def test_ingest_and_http_requests_are_counted(
    hospital: Hospital,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    before = scrape()
    path = tmp_path / "ct.dcm"
    make_ct_slice(study_uid=generate_uid(), series_uid=generate_uid(), index=0).save_as(
        path, enforce_file_format=True
    )
    size = path.stat().st_size
    with django_capture_on_commit_callbacks(execute=True):
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, "test"), name="ct.dcm")
    client = Client()
    assert client.get("/api/health/live/").status_code == 200
    assert client.get("/api/studies/").status_code == 401
    after = scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("carina_instances_received_total", source="import", status="stored") == 1
    assert grew("carina_received_bytes_total", source="import") == size
    assert grew("carina_ingest_duration_seconds_count", source="import") == 1
    assert grew("carina_ingest_duration_seconds_sum", source="import") > 0
    route = {"method": "GET", "route": "api/health/live/"}
    assert grew("carina_http_requests_total", **route, status="200") == 1
    assert grew("carina_http_request_duration_seconds_count", **route) == 1
    assert grew("carina_http_request_duration_seconds_bucket", **route, le="+Inf") == 1
    # A router's pattern reads as the URL (no regular expression, no UID).
    assert grew("carina_http_requests_total", method="GET", route="api/studies/", status="401")
    # Read from the index at scrape time.
    assert value(after, "carina_storage_used_bytes", hospital="default") == size
    assert value(after, "carina_stored_instances", hospital="default") == 1
    assert value(after, "carina_stored_studies", hospital="default") == 1
    assert value(after, "carina_queue_depth", queue="default") == 0
    build = [k for k in after if k[0] == "carina_build_info"]
    assert len(build) == 1 and dict(build[0][1])["version"]


@pytest.mark.django_db
def test_queue_depth_is_pluggable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_queues", {})
    metrics.register_queue_depth("routing", lambda: 7)
    metrics.register_queue_depth("broken", lambda: 1 // 0)
    samples = scrape()
    assert value(samples, "carina_queue_depth", queue="routing") == 7
    assert ("carina_queue_depth", frozenset({("queue", "default")})) not in samples
    assert ("carina_queue_depth", frozenset({("queue", "broken")})) not in samples


@pytest.fixture
def listener(hospital: Hospital, tmp_path: Path) -> Iterator[Listener]:
    config = ListenerConfig.from_settings(host="127.0.0.1", port=0, spool_dir=tmp_path / "spool")
    started = Listener(config).start()
    yield started
    started.stop(grace_period=5)


@pytest.mark.django_db(transaction=True)
def test_dicom_associations_are_counted(listener: Listener) -> None:
    def count(result: str) -> float:
        return value(scrape(), "carina_dicom_associations_total", result=result)

    accepted, rejected = count("accepted"), count("rejected")
    assert echo("127.0.0.1", listener.port, "CARINA", "METRICSCU").ok
    wait_for(lambda: count("accepted") == accepted + 1)
    with pytest.raises(DimseError):
        echo("127.0.0.1", listener.port, "NOSUCHAE", "METRICSCU")
    wait_for(lambda: count("rejected") == rejected + 1)
    assert count("accepted") == accepted + 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_other_processes_are_added_up(hospital: Hospital, tmp_path: Path) -> None:
    """Objects imported by another process (``carina import``) show in this one's scrape."""
    before = value(scrape(), "carina_instances_received_total", source="import", status="stored")
    files = write_series(tmp_path / "series", 3)
    env = child_env(Path(django_settings.CARINA_HOME))
    done = run_carina(["import", str(tmp_path / "series"), "--quiet"], env)
    assert done.returncode == 0, done.stderr
    after = value(scrape(), "carina_instances_received_total", source="import", status="stored")
    assert after - before == len(files)


@pytest.mark.django_db
def test_only_this_machine_or_the_token_holder_reads_them(settings: Any, tmp_path: Path) -> None:
    remote = Client(REMOTE_ADDR="192.0.2.10")
    refused = remote.get("/metrics")
    assert refused.status_code == 403
    assert "loopback" in refused.json()["detail"]
    assert "carina_" not in refused.content.decode()
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    # The token of CARINA_HOME/metrics_token.
    settings.CARINA_HOME = tmp_path
    (tmp_path / "metrics_token").write_text("s3cret-scraper-token\n")
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    allowed = remote.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token")
    assert allowed.status_code == 200
    assert b"carina_build_info" in allowed.content
    assert scrape(remote.__class__(REMOTE_ADDR="127.0.0.1"))


def test_routes_read_as_urls() -> None:
    assert metrics.readable_route("api/^studies/(?P<uid>[0-9.]{1,64})/zip/$") == (
        "api/studies/<uid>/zip/"
    )
    assert metrics.readable_route("dicomweb/studies/<str:study_uid>/") == (
        "dicomweb/studies/<str:study_uid>/"
    )
    assert metrics.readable_route(r"^a/(?P<x>(?:\d+|[a-f]{2}))\.json$") == "a/<x>.json"
