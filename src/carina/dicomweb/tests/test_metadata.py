"""WADO-RS Retrieve Metadata (PS3.18 10.4.1.1.2) against a live Carina: dicomweb-client for
the study, series and instance resources, BulkDataURIs that lead to the bulkdata resource
(also inside sequences), ETag and If-None-Match, 404 for what the hospital lacks, the audit
trail, and a stream whose database queries do not grow with the instances."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from carina.archive.query.tests.conftest import ArchiveBuilder, SeriesPlan
from carina.audit.models import Action, AuditEvent, Outcome
from carina.core.testing import make_ct_slice, write_series
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


class Stored:
    """A study of two series (CT of three slices, then MR of one), stored for the reader."""

    def __init__(self, store: Any, tmp_path: Path) -> None:
        self.study = generate_uid()
        self.ct, self.mr = generate_uid(), generate_uid()
        ct = write_series(
            tmp_path / "ct", 3, study_uid=self.study, series_uid=self.ct, size=8,
            extra={"SeriesNumber": 1},
        )  # fmt: skip
        mr = make_ct_slice(
            study_uid=self.study, series_uid=self.mr, index=0, size=8, modality="MR",
            extra={"SeriesNumber": 2},
        )  # fmt: skip
        self.results = store([*ct, mr])
        self.ct_sops = [r.sop_instance_uid for r in self.results[:3]]
        self.mr_sop = self.results[3].sop_instance_uid

    def url(self, *parts: str) -> str:
        return "/dicomweb/studies/" + "/".join([self.study, *parts])


@pytest.fixture
def stored(store: Any, tmp_path: Path) -> Stored:
    return Stored(store, tmp_path)


def sop_of(data_set: dict[str, Any]) -> str:
    return str(data_set["00080018"]["Value"][0])


def test_series_metadata_is_every_instance_ready_for_ohif(
    dicomweb: DICOMwebClient, stored: Stored
) -> None:
    data_sets = dicomweb.retrieve_series_metadata(stored.study, stored.ct)
    assert [sop_of(ds) for ds in data_sets] == stored.ct_sops
    first = data_sets[0]
    for tag in (
        "0020000D", "0020000E", "00080016", "00080060", "00200013", "00280010", "00280011",
        "00280100", "00280101", "00280102", "00280103", "00280002", "00280004", "00200032",
        "00200037", "00280030", "00281052", "00281053", "00100010", "00100020",
    ):  # fmt: skip
        assert first[tag].get("Value"), tag
    assert first["00200032"]["Value"] == [0.0, 0.0, 0.0]
    assert data_sets[2]["00200032"]["Value"] == [0.0, 0.0, 2.5]
    sop = stored.ct_sops[0]
    uri = stored.url("series", stored.ct, "instances", sop, "bulkdata", "7FE00010")
    assert first["7FE00010"] == {"vr": "OW", "BulkDataURI": uri}
    assert first["00083002"] == {"vr": "UI", "Value": [ExplicitVRLittleEndian]}
    # The URI names the bulkdata resource of that instance, path 7FE00010.
    match = resolve(uri)
    assert match.url_name == "bulkdata"
    assert match.kwargs == {
        "study_uid": stored.study,
        "series_uid": stored.ct,
        "sop_uid": sop,
        "path": "7FE00010",
    }
    # It reads back as a pydicom data set (the attributes are well-formed DICOM JSON).
    ds = Dataset.from_json(first, bulk_data_uri_handler=lambda *args: b"")
    assert ds.Rows == 8 and ds.SOPInstanceUID == sop


def test_study_metadata_is_every_instance_in_series_order(
    dicomweb: DICOMwebClient, stored: Stored
) -> None:
    data_sets = dicomweb.retrieve_study_metadata(stored.study)
    assert [sop_of(ds) for ds in data_sets] == [*stored.ct_sops, stored.mr_sop]
    assert data_sets[3]["7FE00010"]["BulkDataURI"] == stored.url(
        "series", stored.mr, "instances", stored.mr_sop, "bulkdata", "7FE00010"
    )


def test_instance_metadata_is_an_array_of_one(
    dicomweb: DICOMwebClient, http: requests.Session, live_server: Any, stored: Stored
) -> None:
    sop = stored.ct_sops[1]
    data_set = dicomweb.retrieve_instance_metadata(stored.study, stored.ct, sop)
    assert sop_of(data_set) == sop
    assert data_set["00200013"]["Value"] == [2]
    url = live_server.url + stored.url("series", stored.ct, "instances", sop, "metadata")
    assert http.get(url, timeout=30).json() == [data_set]


def test_bulk_data_inside_a_sequence_points_at_its_tag_path(
    dicomweb: DICOMwebClient, store: Any
) -> None:
    ds = make_ct_slice(study_uid=generate_uid(), series_uid=generate_uid(), index=0, size=8)
    icon = Dataset()
    icon.Rows = icon.Columns = 64
    icon.SamplesPerPixel = 1
    icon.PhotometricInterpretation = "MONOCHROME2"
    icon.BitsAllocated = icon.BitsStored = 8
    icon.HighBit = 7
    icon.PixelRepresentation = 0
    icon.PixelData = bytes(range(256)) * 16
    ds.IconImageSequence = [icon]
    ds.add_new(0x00291010, "OB", bytes(4000))  # a long private binary value
    ds.add_new(0x00290010, "LO", "CARINA TEST")
    store([ds])
    data_set = dicomweb.retrieve_instance_metadata(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    base = (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/bulkdata"
    )
    item = data_set["00880200"]["Value"][0]
    assert item["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{base}/00880200/0/7FE00010"}
    assert item["00280010"]["Value"] == [64]
    assert data_set["00291010"] == {"vr": "OB", "BulkDataURI": f"{base}/00291010"}
    assert resolve(f"{base}/00880200/0/7FE00010").kwargs["path"] == "00880200/0/7FE00010"


def test_etag_and_if_none_match(
    http: requests.Session, live_server: Any, stored: Stored, store: Any
) -> None:
    url = live_server.url + stored.url("series", stored.ct, "metadata")
    first = http.get(url, timeout=30)
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "application/dicom+json"
    assert first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong
    assert len(first.json()) == 3
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = http.get(url, headers={"If-None-Match": header}, timeout=30)
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["ETag"] == etag
    changed = http.get(url, headers={"If-None-Match": '"other"'}, timeout=30)
    assert changed.status_code == 200 and len(changed.json()) == 3
    # Another slice arrives in the series: the old copy is no longer current.
    store([make_ct_slice(study_uid=stored.study, series_uid=stored.ct, index=3, size=8)])
    after = http.get(url, headers={"If-None-Match": etag}, timeout=30)
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert len(after.json()) == 4
    # Each resource has its own tag; the same resource keeps it.
    study_url = live_server.url + stored.url("metadata")
    study_tag = http.get(study_url, timeout=30).headers["ETag"]
    assert study_tag not in (etag, after.headers["ETag"])
    assert http.get(study_url, timeout=30).headers["ETag"] == study_tag
    sop = stored.ct_sops[0]
    instance_url = live_server.url + stored.url("series", stored.ct, "instances", sop, "metadata")
    instance_tag = http.get(instance_url, timeout=30).headers["ETag"]
    assert (
        http.get(instance_url, headers={"If-None-Match": instance_tag}, timeout=30).status_code
        == 304
    )


@pytest.mark.parametrize(
    "path",
    [
        "1.2.3.999/metadata",
        "{study}/series/1.2.3.999/metadata",
        "{study}/series/{ct}/instances/1.2.3.999/metadata",
        "{study}/series/{mr}/instances/{ct_sop}/metadata",
        "1.2.3.999/series/{ct}/metadata",
    ],
)
def test_unknown_uids_are_404_json(
    http: requests.Session, live_server: Any, stored: Stored, path: str
) -> None:
    url = f"{live_server.url}/dicomweb/studies/" + path.format(
        study=stored.study, ct=stored.ct, mr=stored.mr, ct_sop=stored.ct_sops[0]
    )
    response = http.get(url, timeout=30)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert "in this archive" in response.json()["error"]


def test_another_hospitals_study_is_404_and_its_own_copy_is_its_own(
    outsider_dicomweb: DICOMwebClient,
    live_server: Any,
    outsider: Any,
    stored: Stored,
    store: Any,
    other_hospital: Hospital,
) -> None:
    from carina.dicomweb.tests.conftest import token_for

    token = token_for(live_server.url, "outsider")
    for path in ("metadata", f"series/{stored.ct}/metadata"):
        response = requests.get(
            f"{live_server.url}{stored.url(path)}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 404
    # The other hospital stores one slice with the same UIDs: it sees that one only.
    copy = make_ct_slice(
        study_uid=stored.study, series_uid=stored.ct, index=0, size=8, sop_uid=stored.ct_sops[0]
    )
    store([copy], hospital=other_hospital)
    data_sets = outsider_dicomweb.retrieve_study_metadata(stored.study)
    assert [sop_of(ds) for ds in data_sets] == stored.ct_sops[:1]


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/dicom+json", 200),
        ("application/json", 200),
        ("*/*", 200),
        ('multipart/related; type="application/dicom+xml"', 406),
        ("application/xml", 406),
    ],
)
def test_accept(
    http: requests.Session, live_server: Any, stored: Stored, accept: str, status: int
) -> None:
    response = http.get(
        live_server.url + stored.url("metadata"), headers={"Accept": accept}, timeout=30
    )
    assert response.status_code == status


def test_each_request_leaves_one_audit_event(
    http: requests.Session, live_server: Any, stored: Stored, hospital: Hospital
) -> None:
    before = AuditEvent.unscoped.filter(action=Action.WEB_RETRIEVE).count()
    study = http.get(live_server.url + stored.url("metadata"), timeout=30)
    assert len(study.json()) == 4
    series = http.get(live_server.url + stored.url("series", stored.mr, "metadata"), timeout=30)
    cached = http.get(
        live_server.url + stored.url("series", stored.mr, "metadata"),
        headers={"If-None-Match": series.headers["ETag"]},
        timeout=30,
    )
    assert cached.status_code == 304
    missing = http.get(live_server.url + stored.url("series", "1.2.3", "metadata"), timeout=30)
    assert missing.status_code == 404
    events = list(AuditEvent.unscoped.filter(action=Action.WEB_RETRIEVE).order_by("id"))[before:]
    assert [(e.object_type, e.count, e.outcome) for e in events] == [
        ("study", 4, Outcome.SUCCESS),
        ("series", 1, Outcome.SUCCESS),
        ("series", 0, Outcome.SUCCESS),
        ("series", 0, Outcome.FAILURE),
    ]
    assert events[0].object_uid == stored.study
    assert events[0].patient_id == "PID001"
    assert events[0].actor == "reader"
    assert events[0].hospital == hospital
    assert events[1].object_uid == stored.mr
    assert "not modified" in events[2].detail


def test_the_stream_reads_a_chunk_at_a_time(
    client: Client, reader: Any, hospital: Hospital
) -> None:
    """A study's metadata is streamed: the number of queries does not grow with the number
    of instances, and the answer is not one list built in memory."""
    client.force_login(reader)
    builder = ArchiveBuilder(hospital)
    small = builder.study(patient_id="P1", series=(SeriesPlan(instances=3),))
    with transaction.atomic():
        large = builder.study(
            patient_id="P2",
            series=(SeriesPlan(instances=450), SeriesPlan(instances=150, number=2)),
        )

    def fetch(uid: str) -> tuple[list[dict[str, Any]], int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/dicomweb/studies/{uid}/metadata")
            assert response.streaming
            body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
        return json.loads(body), len(queries.captured_queries)

    few, few_queries = fetch(small.study_instance_uid)
    many, many_queries = fetch(large.study_instance_uid)
    assert (len(few), len(many)) == (3, 600)
    assert many_queries == few_queries
    assert many[0]["7FE00010"]["BulkDataURI"].startswith(
        f"/dicomweb/studies/{large.study_instance_uid}/series/"
    )
    assert many[0]["00080008"]["Value"] == ["ORIGINAL", "PRIMARY", "AXIAL"]
