"""Every API list answers in a fixed number of database queries, whatever the page holds.

Each list is read with a few rows and with many more; both reads must cost the same number of
queries (no query per row), and that number is pinned here so that a regression shows. The
numbers include the request's own work (authentication, hospital choice, the audit record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.api.models import Upload
from carina.api.tests.conftest import StoreStudy, client_for, make_user
from carina.audit.actions import do_record
from carina.dimse.actions import do_add_node
from carina.routing.models import Transfer
from carina.tenancy.actions import do_add_hospital
from carina.tenancy.models import Hospital

#: Queries per list request, with any number of rows on the page.
PINNED = {
    "studies": 6,
    "series": 6,
    "instances": 6,
    "patients": 6,
    "nodes": 5,
    "audit": 5,
    "transfers": 6,
    "uploads": 6,
    "hospitals": 5,
    "users": 7,
    "memberships": 5,
}

#: Rows added before the first read, and before the second.
FEW, MORE = 2, 18

Adder = Callable[[int], None]


def adder_for(
    resource: str, hospital: Hospital, users: dict[str, Any], store_study: StoreStudy
) -> Adder:
    """A function adding ``n`` rows that the ``resource`` list shows."""
    added = iter(range(1_000_000))

    def studies(n: int) -> None:
        for _ in range(n):
            index = next(added)
            store_study(series=[("CT", 1)], patient_id=f"Q{index:04d}", patient_name=f"Q^{index}")

    def series(n: int) -> None:
        store_study(series=[("CT", 1)] * n)

    def instances(n: int) -> None:
        store_study(series=[("CT", n)])

    def nodes(n: int) -> None:
        for _ in range(n):
            index = next(added)
            do_add_node(hospital, f"node{index}", ae_title=f"NODE{index}", host="n.test", port=104)

    def audit(n: int) -> None:
        for _ in range(n):
            do_record(hospital=hospital, actor="someone", actor_kind="user", action="login")

    def transfers(n: int) -> None:
        node, _ = do_add_node(hospital, "target", ae_title="TARGET", host="t.test", port=104)
        for _ in range(n):
            Transfer.objects.create(
                hospital=hospital,
                destination=node,
                destination_name=node.name,
                destination_ae=node.ae_title,
                level="study",
                object_uid="1.2.3",
                requested_by=users["admin"],
                requested_by_name="a-admin",
            )

    def uploads(n: int) -> None:
        for _ in range(n):
            Upload.objects.create(
                hospital=hospital, user=users["admin"], username="a-admin", status="done"
            )

    def hospitals(n: int) -> None:
        for _ in range(n):
            index = next(added)
            do_add_hospital(f"extra{index}", f"Extra {index}", [f"EXTRA{index}"])

    def members(n: int) -> None:
        for _ in range(n):
            make_user(f"member{next(added)}", hospital, "physician")

    adders: dict[str, Adder] = {
        "studies": studies,
        "series": series,
        "instances": instances,
        "patients": studies,
        "nodes": nodes,
        "audit": audit,
        "transfers": transfers,
        "uploads": uploads,
        "hospitals": hospitals,
        "users": members,
        "memberships": members,
    }
    return adders[resource]


def read_list(client: APIClient, resource: str) -> tuple[int, int]:
    """Read the list's first page: the number of queries and of rows on it."""
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(f"/api/{resource}/", HTTP_X_CARINA_HOSPITAL="default")
    assert answer.status_code == 200, answer.content
    return len(queries), len(answer.json()["results"])


@pytest.mark.parametrize("resource", list(PINNED))
def test_a_list_costs_the_same_queries_for_few_and_many_rows(
    resource: str, hospital: Hospital, users: dict[str, Any], store_study: StoreStudy
) -> None:
    # A hospital administrator sees all of a hospital; only a system administrator lists
    # hospitals beyond their own.
    client = client_for(users["system" if resource == "hospitals" else "admin"])
    add = adder_for(resource, hospital, users, store_study)
    add(FEW)
    few_queries, few_rows = read_list(client, resource)
    add(MORE)
    many_queries, many_rows = read_list(client, resource)

    assert many_rows - few_rows >= MORE  # the audit list also shows the first read
    assert (resource, many_queries) == (resource, few_queries)
    assert (resource, few_queries) == (resource, PINNED[resource])
