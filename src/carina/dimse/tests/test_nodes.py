"""Known remote nodes: ``do_add_node`` and ``carina nodes add`` are idempotent, validate what
they are given, and keep each hospital's nodes to itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from carina.core.testing import child_env, run_carina
from carina.dimse.actions import NodeError, NodeOptions, do_add_node
from carina.dimse.models import RemoteNode, Service
from carina.dimse.nodes import node_by_name, node_for_ae
from carina.tenancy.managers import UnscopedQueryError
from carina.tenancy.models import Hospital


@pytest.mark.django_db
def test_add_node_is_idempotent_and_updates_only_what_is_given(hospital: Hospital) -> None:
    node, created = do_add_node(hospital, "ct1", ae_title="CT1", host="10.0.0.5", port=104)
    assert created
    assert node.services == ["echo", "store", "query", "retrieve", "move-destination"]
    again, created = do_add_node(hospital, "ct1", ae_title="CT1", host="10.0.0.5", port=104)
    assert not created and again.pk == node.pk

    do_add_node(
        hospital,
        "ct1",
        ae_title="CT1",
        host="ct1.example",
        port=11112,
        options=NodeOptions(may_query=False, may_retrieve=False, description="CT room 1"),
    )
    node.refresh_from_db()
    assert (node.host, node.port, node.description) == ("ct1.example", 11112, "CT room 1")
    assert node.may(Service.STORE) and not node.may(Service.QUERY)
    do_add_node(hospital, "ct1", ae_title="CT1", host="ct1.example", port=11112)
    node.refresh_from_db()
    assert not node.may_query  # options left out keep their values
    do_add_node(
        hospital,
        "ct1",
        ae_title="CT1",
        host="ct1.example",
        port=11112,
        options=NodeOptions(enabled=False),
    )
    node.refresh_from_db()
    assert not node.may(Service.ECHO)  # a disabled node may do nothing


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "ae_title", "host", "port", "message"),
    [
        ("x", "BAD\\AE", "h", 104, "not a valid DICOM AE title"),
        ("x", "A" * 17, "h", 104, "not a valid DICOM AE title"),
        ("x", "   ", "h", 104, "not a valid DICOM AE title"),
        ("x", "AE", "two words", 104, "give a host name or an IP address"),
        ("x", "AE", "h", 0, "a port is between 1 and 65535"),
        ("x", "AE", "h", 70000, "a port is between 1 and 65535"),
        ("", "AE", "h", 104, "use 1 to 64 characters"),
    ],
)
def test_add_node_refuses_bad_values(
    hospital: Hospital, name: str, ae_title: str, host: str, port: int, message: str
) -> None:
    with pytest.raises(NodeError, match=message):
        do_add_node(hospital, name, ae_title=ae_title, host=host, port=port)
    assert RemoteNode.objects.for_hospital(hospital).count() == 0


@pytest.mark.django_db
def test_an_ae_title_identifies_one_node_per_hospital(
    hospital: Hospital, other_hospital: Hospital
) -> None:
    do_add_node(hospital, "ct1", ae_title="MODALITY", host="h", port=104)
    with pytest.raises(NodeError, match="already used by node 'ct1' of hospital 'default'"):
        do_add_node(hospital, "ct2", ae_title="MODALITY", host="h", port=104)
    # Another hospital may know a node with the same AE title: nodes are per hospital.
    do_add_node(other_hospital, "ct2", ae_title="MODALITY", host="h", port=104)
    assert node_for_ae(hospital, "MODALITY ").name == "ct1"  # type: ignore[union-attr]
    assert node_for_ae(other_hospital, "MODALITY").name == "ct2"  # type: ignore[union-attr]
    assert node_by_name(hospital, "ct2") is None
    with pytest.raises(UnscopedQueryError):
        list(RemoteNode.objects.all())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_carina_nodes_add_and_list(tmp_path: Path, hospital: Hospital) -> None:
    env = child_env(tmp_path / "home")
    added = run_carina(
        [
            "nodes",
            "add",
            "pacs2",
            "--hospital",
            "default",
            "--ae",
            "PACS2",
            "--host",
            "10.1.2.3",
            "--port",
            "104",
            "--no-retrieve",
        ],
        env,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == (
        "Added node 'pacs2' of hospital 'default': PACS2 at 10.1.2.3:104; "
        "services: echo, store, query, move-destination."
    )
    again = run_carina(
        [
            "nodes",
            "add",
            "pacs2",
            "--ae",
            "PACS2",
            "--host",
            "10.1.2.3",
            "--port",
            "104",
            "--disable",
        ],
        env,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Updated node 'pacs2' of hospital 'default'")
    assert "(disabled)" in again.stdout
    node = RemoteNode.objects.for_hospital(hospital).get()
    assert (node.ae_title, node.enabled, node.may_retrieve) == ("PACS2", False, False)

    bad = run_carina(["nodes", "add", "x", "--ae", "BAD\\AE", "--host", "h", "--port", "104"], env)
    assert bad.returncode == 2
    assert "not a valid DICOM AE title" in bad.stderr
    nowhere = run_carina(
        ["nodes", "add", "x", "--hospital", "nowhere", "--ae", "X", "--host", "h", "--port", "1"],
        env,
    )
    assert nowhere.returncode == 2
    assert "no hospital 'nowhere'" in nowhere.stderr

    listed = run_carina(["nodes", "list"], env)
    assert (
        listed.stdout
        == "default\tpacs2\tPACS2\t10.1.2.3:104\tdisabled\techo,store,query,move-destination\n"
    )
