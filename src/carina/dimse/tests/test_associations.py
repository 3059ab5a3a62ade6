"""Who may associate: the called AE title picks the hospital, the calling AE title is checked
against that hospital's nodes and policy; C-ECHO as DCMTK's echoscu and Carina's SCU see it."""

from __future__ import annotations

from pathlib import Path

import pytest

from carina.archive.models import Instance
from carina.core.testing import write_series
from carina.dimse import scu
from carina.dimse.actions import NodeOptions, do_add_node
from carina.dimse.listener import Listener
from carina.dimse.tests.conftest import HOST, SCU_AE, dcmtk, scu_args
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)


def test_echoscu_is_answered_by_the_default_hospital(listener: Listener) -> None:
    result = dcmtk("echoscu", "-v", *scu_args(listener.port))
    assert result.returncode == 0, result.stderr
    assert "Received Echo Response (Success)" in result.stderr


def test_unknown_called_ae_title_is_rejected_and_nothing_is_stored(
    listener: Listener, tmp_path: Path, hospital: Hospital
) -> None:
    echo = dcmtk("echoscu", *scu_args(listener.port, called="NOBODY"))
    assert echo.returncode != 0
    assert "Rejected Permanent, Source: Service User" in echo.stderr
    assert "Called AE Title Not Recognized" in echo.stderr

    paths = write_series(tmp_path / "s", 2)
    store = dcmtk("storescu", *scu_args(listener.port, called="NOBODY"), *map(str, paths))
    assert store.returncode != 0
    assert "Called AE Title Not Recognized" in store.stderr
    assert Instance.objects.all_hospitals().count() == 0

    # The SCU library reports the same reason.
    with pytest.raises(scu.DimseError, match="Called AE title not recognised"):
        scu.echo(HOST, listener.port, "NOBODY", SCU_AE)


def test_unknown_calling_ae_title_follows_the_hospitals_policy(
    listener: Listener, other_hospital: Hospital
) -> None:
    # "other" answers to OTHERAE and, like every new hospital, rejects unknown callers.
    assert other_hospital.unknown_calling_ae_policy == "reject"
    refused = dcmtk("echoscu", *scu_args(listener.port, called="OTHERAE"))
    assert refused.returncode != 0
    assert "Calling AE Title Not Recognized" in refused.stderr

    do_add_node(other_hospital, "ws1", ae_title=SCU_AE, host=HOST, port=104)
    known = dcmtk("echoscu", *scu_args(listener.port, called="OTHERAE"))
    assert known.returncode == 0, known.stderr

    stranger = dcmtk("echoscu", *scu_args(listener.port, called="OTHERAE", calling="STRANGER"))
    assert stranger.returncode != 0
    other_hospital.unknown_calling_ae_policy = "accept"
    other_hospital.save()
    accepted = dcmtk("echoscu", *scu_args(listener.port, called="OTHERAE", calling="STRANGER"))
    assert accepted.returncode == 0, accepted.stderr


def test_a_disabled_node_is_rejected_even_where_strangers_are_accepted(
    listener: Listener, hospital: Hospital
) -> None:
    assert hospital.unknown_calling_ae_policy == "accept"
    do_add_node(
        hospital,
        "old-ct",
        ae_title="OLDCT",
        host=HOST,
        port=104,
        options=NodeOptions(enabled=False),
    )
    result = dcmtk("echoscu", *scu_args(listener.port, calling="OLDCT"))
    assert result.returncode != 0
    assert "Calling AE Title Not Recognized" in result.stderr


def test_scu_echo_returns_the_status_and_round_trip_time(
    listener: Listener, hospital: Hospital
) -> None:
    result = scu.echo(HOST, listener.port, "CARINA", SCU_AE)
    assert result.ok and result.status == 0x0000
    assert 0 < result.rtt < 10

    node, _ = do_add_node(hospital, "self", ae_title="CARINA", host=HOST, port=listener.port)
    assert scu.echo(node, calling_ae=SCU_AE).ok  # a node gives host, port and AE title


def test_a_node_without_the_echo_permission_is_refused(
    listener: Listener, hospital: Hospital
) -> None:
    do_add_node(
        hospital,
        "ws",
        ae_title=SCU_AE,
        host=HOST,
        port=104,
        options=NodeOptions(may_echo=False),
    )
    result = scu.echo(HOST, listener.port, "CARINA", SCU_AE)
    assert result.status == 0x0124  # Refused: Not Authorized


def test_scu_echo_to_a_closed_port_says_so() -> None:
    from carina.core.testing import free_port

    port = free_port()
    with pytest.raises(scu.DimseError, match=f"could not connect to CARINA@{HOST}:{port}"):
        scu.echo(HOST, port, "CARINA", SCU_AE, timeout=5)
