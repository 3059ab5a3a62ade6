"""``/api/transfers/``, ``/api/rules/``, ``/api/nodes/{pk}/test/``: who may send, see, cancel
and retry; filters and pages of the transfer log; another hospital's transfers are absent;
rules; the node test's outcome and round trip; a DICOMweb destination (STOW-RS to a live
Carina with a token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from carina.api.tests.conftest import PASSWORD, client_for, make_user
from carina.archive.models import Instance
from carina.core.testing import free_port
from carina.dimse.actions import NodeOptions, check_connection, do_add_node
from carina.routing.models import Transfer, TransferStatus
from carina.routing.runner import run_transfer
from carina.routing.tests.conftest import add_destination, archive_ct_study, counting_scp
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(hospital: Hospital, other_hospital: Hospital) -> dict[str, Any]:
    return {
        "admin": make_user("t-admin", hospital, "hospital_admin"),
        "tech": make_user("t-tech", hospital, "technologist"),
        "rad": make_user("t-rad", hospital, "radiologist"),
        "physician": make_user("t-phys", hospital, "physician"),
        "other": make_user("o-admin", other_hospital, "hospital_admin"),
    }


def test_send_list_cancel_retry_with_permissions_and_isolation(
    hospital: Hospital, other_hospital: Hospital, people: dict[str, Any], tmp_path: Path
) -> None:
    study = archive_ct_study(hospital, tmp_path / "in", 3, patient_name="DOE^JANE")
    add_destination(hospital, "pacs2", "PACS2", free_port())
    second = add_destination(hospital, "pacs3", "PACS3", free_port())
    tech, rad, admin = (client_for(people[k]) for k in ("tech", "rad", "admin"))

    answer = tech.post(
        "/api/transfers/",
        {"destinations": ["pacs2", str(second.pk)], "study_instance_uid": study.study_uid},
        format="json",
        HTTP_X_REQUEST_ID="req-123",
    )
    assert answer.status_code == 202, answer.content
    made = answer.json()
    assert [t["destination_name"] for t in made] == ["pacs2", "pacs3"]
    assert all(t["status"] == "queued" and t["progress"] == "0 / 3" for t in made)
    assert all(t["requested_by"] == "t-tech" and t["correlation_id"] == "req-123" for t in made)
    rad.post(
        "/api/transfers/",
        {"destinations": ["pacs2"], "series_instance_uid": study.series_uid},
        format="json",
    )
    # Users see their own; the administrator sees the hospital's.
    assert tech.get("/api/transfers/").json()["count"] == 2
    assert rad.get("/api/transfers/").json()["count"] == 1
    log = admin.get("/api/transfers/").json()
    assert log["count"] == 3
    assert admin.get("/api/transfers/", {"user": "t-rad"}).json()["count"] == 1
    assert admin.get("/api/transfers/", {"destination_name": "pacs3"}).json()["count"] == 1
    assert admin.get("/api/transfers/", {"patient_name": "doe"}).json()["count"] == 3
    assert admin.get("/api/transfers/", {"status": "failed"}).json()["count"] == 0
    page = admin.get("/api/transfers/", {"limit": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    # Someone else's transfer is absent for the radiologist, and cannot be cancelled.
    first = made[0]["id"]
    assert rad.post(f"/api/transfers/{first}/cancel/").status_code == 404  # not theirs
    cancelled = tech.post(f"/api/transfers/{first}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = tech.post(f"/api/transfers/{first}/cancel/")
    assert again.status_code == 400 and "already ended" in again.json()["detail"]
    retried = admin.post(f"/api/transfers/{first}/retry/")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    # A physician may not send; another hospital's administrator sees none of it.
    physician = client_for(people["physician"])
    refused = physician.post(
        "/api/transfers/",
        {"destinations": ["pacs2"], "study_instance_uid": study.study_uid},
        format="json",
    )
    assert refused.status_code == 403 and "send objects" in refused.json()["detail"]
    other = client_for(people["other"])
    assert other.get("/api/transfers/").json()["count"] == 0
    assert other.get(f"/api/transfers/{first}/").status_code == 404
    assert other.post(f"/api/transfers/{first}/cancel/").status_code == 404
    foreign = other.post(
        "/api/transfers/",
        {"destinations": ["pacs2"], "study_instance_uid": study.study_uid},
        format="json",
    )
    assert foreign.status_code == 400 and "No node 'pacs2' in other" in str(foreign.json())
    add_destination(other_hospital, "theirs", "THEIRS", free_port())
    unknown = other.post(
        "/api/transfers/",
        {"destinations": ["theirs"], "study_instance_uid": study.study_uid},
        format="json",
    )
    assert unknown.status_code == 404 and "No study" in unknown.json()["detail"]
    assert Transfer.objects.for_hospital(other_hospital).count() == 0


def test_a_transfers_failures_are_listed_with_their_reasons(
    hospital: Hospital, people: dict[str, Any], tmp_path: Path
) -> None:
    study = archive_ct_study(hospital, tmp_path / "in", 2)
    with counting_scp("MRONLY", sop_classes=["1.2.840.10008.5.1.4.1.1.4"]) as scp:
        add_destination(hospital, "mr-only", "MRONLY", scp.port)
        admin = client_for(people["admin"])
        (made,) = admin.post(
            "/api/transfers/",
            {"destinations": ["mr-only"], "sop_instance_uids": study.uids},
            format="json",
        ).json()
        run_transfer(made["id"])
    detail = admin.get(f"/api/transfers/{made['id']}/").json()
    assert detail["status"] == "failed"
    assert {f["sop_instance_uid"] for f in detail["failures"]} == set(study.uids)
    assert all("CT Image Storage" in f["reason"] for f in detail["failures"])


def test_rules_through_the_api(hospital: Hospital, people: dict[str, Any]) -> None:
    add_destination(hospital, "pacs2", "PACS2", 11112)
    admin = client_for(people["admin"])
    made = admin.post(
        "/api/rules/",
        {
            "name": "CT to pacs2",
            "trigger": "stable",
            "stable_seconds": 120,
            "modality": "CT",
            "keys": {"AccessionNumber": "ACC*"},
            "destinations": ["pacs2"],
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    rule = made.json()
    assert rule["destinations"] == ["pacs2"] and rule["created_by_name"] == "t-admin"
    changed = admin.patch(f"/api/rules/{rule['id']}/", {"enabled": False}, format="json")
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert changed.json()["destinations"] == ["pacs2"]
    bad = admin.post(
        "/api/rules/",
        {"name": "bad", "keys": {"NoSuchKey": "1"}, "destinations": ["pacs2"]},
        format="json",
    )
    assert bad.status_code == 400
    assert client_for(people["tech"]).get("/api/rules/").status_code == 403
    assert client_for(people["other"]).get(f"/api/rules/{rule['id']}/").status_code == 404
    assert admin.delete(f"/api/rules/{rule['id']}/").status_code == 204


def test_test_connection_reports_the_outcome_and_round_trip(
    hospital: Hospital, people: dict[str, Any]
) -> None:
    admin = client_for(people["admin"])
    with counting_scp("ECHOSCP") as scp:
        node = add_destination(hospital, "echo", "ECHOSCP", scp.port)
        answer = admin.post(f"/api/nodes/{node.pk}/test/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["ok"] is True and body["rtt_ms"] > 0
    assert "C-ECHO to ECHOSCP: success" in body["message"]
    down = add_destination(hospital, "down", "DOWN", free_port())
    body = admin.post(f"/api/nodes/{down.pk}/test/").json()
    assert body["ok"] is False and body["rtt_ms"] is None
    assert "could not connect" in body["message"]
    assert client_for(people["tech"]).post(f"/api/nodes/{node.pk}/test/").status_code == 403
    assert client_for(people["other"]).post(f"/api/nodes/{node.pk}/test/").status_code == 404


def test_a_dicomweb_destination_gets_the_study_over_stow_rs(
    hospital: Hospital, other_hospital: Hospital, live_server: Any, tmp_path: Path
) -> None:
    """The destination is a DICOMweb server (a live Carina, the other hospital's STOW-RS),
    reached with a bearer token."""
    make_user("stower", other_hospital, "technologist")
    token = requests.post(
        f"{live_server.url}/api/auth/token/",
        json={"username": "stower", "password": PASSWORD},
        timeout=30,
    ).json()["access"]
    node, _ = do_add_node(
        hospital,
        "cloud",
        ae_title="",
        host="",
        port=0,
        options=NodeOptions(
            kind="dicomweb", dicomweb_url=f"{live_server.url}/dicomweb/", dicomweb_token=token
        ),
    )
    assert node.dicomweb_url == f"{live_server.url}/dicomweb"
    assert f"{node.host}:{node.port}" in live_server.url
    probe = check_connection(node)
    assert probe.ok and probe.rtt is not None, probe.message
    study = archive_ct_study(hospital, tmp_path / "in", 4)
    admin = client_for(make_user("t-admin", hospital, "hospital_admin"))
    (made,) = admin.post(
        "/api/transfers/",
        {"destinations": ["cloud"], "study_instance_uid": study.study_uid},
        format="json",
    ).json()
    run_transfer(made["id"])
    transfer = Transfer.objects.for_hospital(hospital).get(pk=made["id"])
    assert transfer.status == TransferStatus.SUCCEEDED, transfer.last_error
    arrived = Instance.objects.for_hospital(other_hospital).values_list(
        "sop_instance_uid", flat=True
    )
    assert sorted(arrived) == sorted(study.uids)
    # A refused token: the probe says so.
    node.dicomweb_token = "wrong"
    assert "401" in check_connection(node).message
