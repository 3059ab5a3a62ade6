"""Known DICOM nodes: administrators add, change, test (C-ECHO against DCMTK's storescp, with
the round-trip time) and remove them; bad input is explained beside each field with every
value kept; other roles and other hospitals get 403 and 404."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from django.test import Client

from carina.audit.models import Action, AuditEvent, Outcome
from carina.core.testing import free_port
from carina.dimse.actions import do_add_node
from carina.dimse.models import RemoteNode
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db

VALID = {
    "name": "ct-scanner",
    "kind": "dimse",
    "ae_title": "CT01",
    "host": "127.0.0.1",
    "port": "104",
    "description": "CT in room 2",
    "enabled": "on",
    "may_echo": "on",
    "may_store": "on",
    "is_move_destination": "on",
    "max_associations": "2",
    "preferred_transfer_syntax": "",
}


@pytest.fixture
def storescp() -> Iterator[int]:
    """DCMTK's storescp listening on a free port (AE title STORESCP)."""
    port = free_port()
    process = subprocess.Popen(
        ["/usr/bin/storescp", "-aet", "STORESCP", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


def nodes_of(hospital: Hospital) -> list[RemoteNode]:
    return list(RemoteNode.objects.for_hospital(hospital).order_by("name"))


def test_an_administrator_adds_a_node(clients: dict[str, Client], hospital: Hospital) -> None:
    admin = clients["admin"]
    assert admin.get("/manage/nodes/add/").status_code == 200
    response = admin.post("/manage/nodes/add/", VALID, follow=True)
    assert response.redirect_chain[-1][0] == "/manage/nodes/"
    page = response.content.decode()
    assert "Added the node ct-scanner." in page
    assert "CT01" in page and "127.0.0.1:104" in page
    (node,) = nodes_of(hospital)
    assert (node.ae_title, node.port, node.may_query, node.is_move_destination) == (
        "CT01",
        104,
        False,
        True,
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"ae_title": "BAD\\TITLE"}, "ae_title", "backslash"),
        ({"ae_title": "A" * 17}, "ae_title", "at most 16 characters"),
        ({"ae_title": ""}, "ae_title", "A DICOM node needs its AE title."),
        ({"port": "70000"}, "port", "less than or equal to 65535"),
        ({"port": "abc"}, "port", "Enter a whole number."),
        ({"host": ""}, "host", "Give the host name or IP address"),
        ({"host": "pacs host"}, "host", "A host name has no spaces."),
        ({"name": ""}, "name", "This field is required."),
        ({"kind": "dicomweb", "dicomweb_url": ""}, "dicomweb_url", "needs its DICOMweb URL"),
        ({"kind": "dicomweb", "dicomweb_url": "ftp://x"}, "dicomweb_url", "Enter a valid URL."),
        ({"max_associations": "99"}, "max_associations", "less than or equal to 32"),
    ],
)
def test_bad_input_is_explained_beside_the_field_and_kept(
    clients: dict[str, Client],
    hospital: Hospital,
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    data = {**VALID, **changes}
    response = clients["admin"].post("/manage/nodes/add/", data)
    assert response.status_code == 400
    page = response.content.decode()
    error = re.search(rf'<p class="field-error" id="id_{field}-error">(.*?)</p>', page, re.S)
    assert error is not None, page
    assert message in error.group(1).replace("&#x27;", "'")
    assert 'value="CT in room 2"' in page or "CT in room 2</textarea>" in page  # kept
    assert "The node was not saved" in page
    assert nodes_of(hospital) == []


def test_names_and_ae_titles_are_unique_in_a_hospital(
    clients: dict[str, Client], hospital: Hospital, other_hospital: Hospital
) -> None:
    do_add_node(hospital, "ct-scanner", ae_title="CT01", host="10.0.0.1", port=104)
    page = clients["admin"].post("/manage/nodes/add/", VALID).content.decode()
    assert "A node called &#x27;ct-scanner&#x27; exists already" in page
    other_name = {**VALID, "name": "second"}
    page = clients["admin"].post("/manage/nodes/add/", other_name).content.decode()
    assert "The node &#x27;ct-scanner&#x27; already has AE title &#x27;CT01&#x27;" in page
    # Another hospital may use the same name and AE title.
    response = clients["other_admin"].post("/manage/nodes/add/", VALID)
    assert response.status_code == 302
    assert len(nodes_of(other_hospital)) == 1


def test_change_and_remove_a_node(clients: dict[str, Client], hospital: Hospital) -> None:
    node, _ = do_add_node(hospital, "ct-scanner", ae_title="CT01", host="10.0.0.1", port=104)
    admin = clients["admin"]
    form = admin.get(f"/manage/nodes/{node.pk}/").content.decode()
    assert 'value="CT01"' in form and "disabled" in form  # the name cannot change
    response = admin.post(f"/manage/nodes/{node.pk}/", {**VALID, "name": "x", "port": "11112"})
    assert response.status_code == 302
    node.refresh_from_db()
    assert (node.name, node.port) == ("ct-scanner", 11112)
    assert (
        "Remove the node ct-scanner?"
        in admin.get(f"/manage/nodes/{node.pk}/delete/").content.decode()
    )
    assert admin.post(f"/manage/nodes/{node.pk}/delete/").status_code == 302
    assert nodes_of(hospital) == []


def test_the_echo_test_reaches_storescp_and_shows_the_round_trip(
    clients: dict[str, Client], hospital: Hospital, storescp: int
) -> None:
    node, _ = do_add_node(hospital, "archive", ae_title="STORESCP", host="127.0.0.1", port=storescp)
    response = clients["admin"].post(f"/manage/nodes/{node.pk}/echo/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-echo="ok"' in page
    assert re.search(r"\d+\.\d+ s round trip", page) or re.search(r"\d s round trip", page)
    assert "C-ECHO to STORESCP: success" in page
    event = AuditEvent.objects.for_hospital(hospital).get(action=Action.ECHO)
    assert event.actor == "a-admin" and event.outcome == Outcome.SUCCESS
    assert event.destination_ae == "STORESCP"


def test_the_echo_test_reports_a_node_that_does_not_answer(
    clients: dict[str, Client], hospital: Hospital
) -> None:
    node, _ = do_add_node(hospital, "gone", ae_title="GONE", host="127.0.0.1", port=free_port())
    # Without HTMX: back to the list, with the outcome as a message.
    response = clients["admin"].post(f"/manage/nodes/{node.pk}/echo/", follow=True)
    page = response.content.decode()
    assert "gone: could not connect to GONE@127.0.0.1" in page
    assert 'class="message error"' in page


def test_only_node_managers_see_nodes(clients: dict[str, Client], hospital: Hospital) -> None:
    node, _ = do_add_node(hospital, "ct", ae_title="CT01", host="10.0.0.1", port=104)
    for role in ("radiologist", "technologist", "physician"):
        assert clients[role].get("/manage/nodes/").status_code == 403, role
        assert clients[role].post(f"/manage/nodes/{node.pk}/echo/").status_code == 403
    other = clients["other_admin"]
    assert "ct" not in re.findall(r">([\w-]+)</a>", other.get("/manage/nodes/").content.decode())
    for path in (f"/manage/nodes/{node.pk}/", f"/manage/nodes/{node.pk}/delete/"):
        assert other.get(path).status_code == 404
    assert other.post(f"/manage/nodes/{node.pk}/echo/").status_code == 404
    assert other.post(f"/manage/nodes/{node.pk}/delete/").status_code == 404
    assert nodes_of(hospital) == [node]


def test_the_administration_menu_is_for_administrators(clients: dict[str, Client]) -> None:
    assert "Administration" in clients["admin"].get("/").content.decode()
    assert "Administration" not in clients["radiologist"].get("/").content.decode()
