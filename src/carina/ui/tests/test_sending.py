"""The send dialog queues transfers of a study or a series to the hospital's destinations
(carina.routing), refuses bad choices beside their field, and the transfer log shows them
with cancel and retry; another hospital's nodes and transfers are out of reach."""

from __future__ import annotations

import pytest
from django.test import Client

from carina.dimse.actions import NodeOptions, do_add_node
from carina.routing.models import Transfer, TransferStatus
from carina.tenancy.models import Hospital

from .conftest import StoredStudy, StoreStudy

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(store_study: StoreStudy) -> StoredStudy:
    return store_study(patient_name="SEND^ME", series=[("CT", 2), ("SR", 1)])


def test_send_a_study_and_a_series(
    clients: dict[str, Client], study: StoredStudy, hospital: Hospital
) -> None:
    node, _ = do_add_node(hospital, "archive", ae_title="ARCHIVE", host="127.0.0.1", port=104)
    do_add_node(
        hospital, "off", ae_title="OFF", host="h", port=1, options=NodeOptions(enabled=False)
    )
    client = clients["technologist"]
    url = f"/studies/{study.study_uid}/send/"
    page = client.get(url).content.decode()
    assert "archive (ARCHIVE@127.0.0.1:104)" in page
    assert "OFF@" not in page  # a disabled node is no destination
    assert "The whole study (3 instances)" in page
    done = client.post(url, {"destinations": [node.pk], "what": "study"}, follow=True)
    assert "Queued 1 transfer (3 instances) to archive." in done.content.decode()
    client.post(url, {"destinations": [node.pk], "what": study.series_uids[0]})
    transfers = list(Transfer.objects.for_hospital(hospital).order_by("pk"))
    assert [(t.level, t.total, t.requested_by_name) for t in transfers] == [
        ("study", 3, "a-technologist"),
        ("series", 2, "a-technologist"),
    ]
    log = client.get("/transfers/").content.decode()
    assert log.count("data-transfer=") == 2
    assert "Cancel transfer" in log


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"what": "study"}, "Choose at least one destination."),
        ({"destinations": ["999999"], "what": "study"}, "Select a valid choice."),
        ({"destinations": ["NODE"], "what": "1.2.3"}, "Select a valid choice. 1.2.3 is not one"),
    ],
)
def test_bad_choices_are_explained(
    clients: dict[str, Client],
    study: StoredStudy,
    hospital: Hospital,
    data: dict[str, object],
    message: str,
) -> None:
    node, _ = do_add_node(hospital, "archive", ae_title="ARCHIVE", host="127.0.0.1", port=104)
    if data.get("destinations") == ["NODE"]:
        data = {**data, "destinations": [node.pk]}
    response = clients["technologist"].post(f"/studies/{study.study_uid}/send/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Transfer.objects.for_hospital(hospital).exists()


def test_another_hospitals_node_cannot_be_chosen(
    clients: dict[str, Client], study: StoredStudy, other_hospital: Hospital, hospital: Hospital
) -> None:
    theirs, _ = do_add_node(other_hospital, "theirs", ae_title="THEIRS", host="h", port=104)
    response = clients["technologist"].post(
        f"/studies/{study.study_uid}/send/", {"destinations": [theirs.pk], "what": "study"}
    )
    assert response.status_code == 400
    assert "No destination yet" in response.content.decode()
    assert "theirs" not in response.content.decode()
    assert not Transfer.objects.for_hospital(other_hospital).exists()
    assert not Transfer.objects.for_hospital(hospital).exists()


def test_sending_needs_the_role(clients: dict[str, Client], study: StoredStudy) -> None:
    assert clients["physician"].get(f"/studies/{study.study_uid}/send/").status_code == 403
    assert clients["physician"].get("/transfers/").status_code == 403


def test_cancel_and_retry_from_the_log(
    clients: dict[str, Client], study: StoredStudy, hospital: Hospital, other_hospital: Hospital
) -> None:
    node, _ = do_add_node(hospital, "archive", ae_title="ARCHIVE", host="127.0.0.1", port=104)
    client = clients["technologist"]
    client.post(f"/studies/{study.study_uid}/send/", {"destinations": [node.pk], "what": "study"})
    transfer = Transfer.objects.for_hospital(hospital).get()
    # Another hospital cannot touch it.
    other = clients["other_admin"].post(
        "/transfers/", {"transfer": transfer.pk, "action": "cancel"}, follow=True
    )
    assert f"No transfer {transfer.pk} in other." in other.content.decode()
    done = client.post("/transfers/", {"transfer": transfer.pk, "action": "cancel"}, follow=True)
    assert f"Transfer {transfer.pk} is cancelled." in done.content.decode()
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.CANCELLED
    again = client.post("/transfers/", {"transfer": transfer.pk, "action": "cancel"}, follow=True)
    assert "has already ended" in again.content.decode()
    retried = client.post("/transfers/", {"transfer": transfer.pk, "action": "retry"}, follow=True)
    assert f"Transfer {transfer.pk} is queued again." in retried.content.decode()
