"""Shared test cases of the REST API's resources (NetBox-style ``APIViewTestCases``).

A resource's test class derives from :class:`ResourceCase` and declares its URL, a factory
for objects in a hospital (:meth:`ResourceCase.make`), filter examples, the payloads of its
writes and the permissions it asks for; the base class then checks, for that resource:

* **list**: the current hospital's objects, never another hospital's, in a pinned number of
  database queries whatever the page holds (no query per row);
* **filter**: each example keeps the objects it should and drops the others;
* **retrieve**: an object of the hospital; **other hospital**: its objects answer 404, on
  reads and writes alike, and stay unchanged;
* **permission denied**: each role gets 200 or 403 as the permission matrix
  (:data:`carina.accounts.access.MATRIX`) says for the permission the resource asks for;
* **create, update, delete** where the resource offers them, by a role that may and one that
  may not; write methods it does not offer answer 405 (403 to a role that may not write).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient  # type: ignore[import-untyped]

from carina.accounts.access import MATRIX, Permission
from carina.accounts.models import Role
from carina.api.tests.conftest import StoreStudy, client_for
from carina.tenancy.models import Hospital

#: The user of each role in hospital A (the ``users`` fixture of conftest.py).
ROLE_USERS = {
    Role.HOSPITAL_ADMIN: "admin",
    Role.RADIOLOGIST: "radiologist",
    Role.TECHNOLOGIST: "technologist",
    Role.PHYSICIAN: "physician",
}
#: Rows added before the first read of a list, and before the second.
FEW, MORE = 2, 18


def may(role: Role, permission: Permission | None) -> bool:
    """Whether ``role`` has ``permission`` in its hospital (``None``: anyone signed in)."""
    return permission is None or permission in MATRIX[role]


@dataclass
class World:
    """Hospital A (the caller's), hospital B (another one), their users and a way to store
    studies; ``serial`` numbers the objects a test makes."""

    hospital: Hospital
    other_hospital: Hospital
    users: dict[str, Any]
    store_study: StoreStudy
    serial: Iterator[int]

    def client(self, name: str) -> APIClient:
        return client_for(self.users[name])

    def next(self) -> int:
        return next(self.serial)


class ResourceCase:
    """The tests every resource gets; a subclass declares the resource."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.django_db]

    #: The list's URL, e.g. ``/api/nodes/``; an object is at ``{url}{key}/``.
    url: ClassVar[str]
    #: The field of a row that is the object's key in its URL.
    key: ClassVar[str] = "id"
    #: The permission to read (``None``: anyone signed in) and to write (``None``: no role;
    #: only a system administrator writes).
    read: ClassVar[Permission | None] = Permission.VIEW
    write: ClassVar[Permission | None] = None
    #: Writes it offers that are tested elsewhere (they need files or a DICOM peer), and where.
    tested_elsewhere: ClassVar[dict[str, str]] = {}
    #: Who reads the list in the list tests.
    lister: ClassVar[str] = "admin"
    #: Database queries of one list request, whatever the number of rows on the page
    #: (authentication, hospital choice and the audit record included).
    list_queries: ClassVar[int]
    #: Further queries per row on the page: 0 (O(1) lists), except where a known fix waits
    #: (the class says which); pinned so that the fix shows.
    list_queries_per_row: ClassVar[int] = 0

    @pytest.fixture
    def world(
        self,
        hospital: Hospital,
        other_hospital: Hospital,
        users: dict[str, Any],
        store_study: StoreStudy,
    ) -> World:
        return World(hospital, other_hospital, users, store_study, iter(range(1_000_000)))

    # -- what a resource declares ------------------------------------------------------------

    def make(self, world: World, hospital: Hospital) -> str:
        """Make one object in ``hospital``; answer its key."""
        raise NotImplementedError

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        """Query strings, each with the objects of ``{first, second}`` it keeps (two objects
        made by :meth:`make` in hospital A)."""
        return []

    def sees_every_object(self, role: Role) -> bool:
        """Whether ``role`` sees every object of the hospital (not only its own)."""
        return True

    # -- helpers ---------------------------------------------------------------------------

    def detail(self, key: str) -> str:
        return f"{self.url}{key}/"

    def keys(self, response: Any) -> set[str]:
        assert response.status_code == 200, response.content
        return {str(row[self.key]) for row in response.json()["results"]}

    @property
    def writes(self) -> set[str]:
        """The writes the resource offers (its test cases, and those tested elsewhere)."""
        cases = {"create": CreateCase, "update": UpdateCase, "delete": DeleteCase}
        return {w for w, case in cases.items() if isinstance(self, case)} | set(
            self.tested_elsewhere
        )

    def writer(self) -> str:
        """A user who may write: the first role the matrix allows, else a system admin."""
        for role, name in ROLE_USERS.items():
            if self.write is not None and may(role, self.write):
                return name
        return "system"

    def refused_writers(self) -> list[str]:
        """The users of the roles that may not write (every role when ``write`` is None)."""
        return [
            name
            for role, name in ROLE_USERS.items()
            if self.write is None or not may(role, self.write)
        ]

    # -- the tests -------------------------------------------------------------------------

    def test_list_holds_this_hospitals_objects_only(self, world: World) -> None:
        mine = {self.make(world, world.hospital) for _ in range(2)}
        theirs = self.make(world, world.other_hospital)
        found = self.keys(world.client(self.lister).get(f"{self.url}?limit=1000"))
        assert mine <= found
        assert theirs not in found

    def test_list_costs_the_same_queries_for_few_and_many_rows(self, world: World) -> None:
        client = world.client(self.lister)

        def read() -> tuple[int, int]:
            with CaptureQueriesContext(connection) as queries:
                answer = client.get(self.url, HTTP_X_CARINA_HOSPITAL=world.hospital.slug)
            assert answer.status_code == 200, answer.content
            return len(queries), len(answer.json()["results"])

        for _ in range(FEW):
            self.make(world, world.hospital)
        few_queries, few_rows = read()
        for _ in range(MORE):
            self.make(world, world.hospital)
        many_queries, many_rows = read()
        assert many_rows - few_rows >= MORE
        per_row = self.list_queries_per_row
        assert (few_queries, many_queries) == (
            self.list_queries + per_row * few_rows,
            self.list_queries + per_row * many_rows,
        )

    def test_filters_keep_the_matching_objects(self, world: World) -> None:
        first, second = self.make(world, world.hospital), self.make(world, world.hospital)
        examples = self.filters(world, first, second)
        assert examples, "declare filter examples"
        client = world.client(self.lister)
        for query, kept in examples:
            found = self.keys(client.get(f"{self.url}?{query}&limit=1000")) & {first, second}
            assert (query, found) == (query, kept)

    def test_retrieve(self, world: World) -> None:
        key = self.make(world, world.hospital)
        answer = world.client(self.lister).get(self.detail(key))
        assert answer.status_code == 200, answer.content
        assert str(answer.json()[self.key]) == key

    def test_another_hospitals_object_is_404_on_every_method(self, world: World) -> None:
        """Hospital A's administrator asks for hospital B's object: absent (404), or refused
        (403) for a write the administrator may not do anywhere; B's object stays as it was."""
        key = self.make(world, world.other_hospital)

        def seen_from_b() -> Any:
            answer = world.client("system").get(
                self.detail(key), HTTP_X_CARINA_HOSPITAL=world.other_hospital.slug
            )
            assert answer.status_code == 200, answer.content
            return answer.json()

        before = seen_from_b()
        client = world.client("admin")
        client.credentials(HTTP_X_CARINA_HOSPITAL=world.hospital.slug)
        answers = {"get": (client.get(self.detail(key)), 404)}
        writes = 404 if self.write is not None and may(Role.HOSPITAL_ADMIN, self.write) else 403
        if "update" in self.writes:
            payload = self.update_payload(world) if isinstance(self, UpdateCase) else {}
            answers["patch"] = (client.patch(self.detail(key), payload, format="json"), writes)
        if "delete" in self.writes:
            answers["delete"] = (client.delete(self.detail(key)), writes)
        for method, (answer, expected) in answers.items():
            assert (method, answer.status_code) == (method, expected), answer.content
            assert "detail" in answer.json()
        assert seen_from_b() == before

    def test_each_role_reads_as_the_matrix_says(self, world: World) -> None:
        key = self.make(world, world.hospital)
        for role, name in ROLE_USERS.items():
            client = world.client(name)
            listed, record = client.get(self.url), client.get(self.detail(key))
            if not may(role, self.read):
                assert (role, listed.status_code, record.status_code) == (role, 403, 403)
                assert role.label in listed.json()["detail"]
                continue
            assert (role, listed.status_code) == (role, 200), listed.content
            expected = 200 if self.sees_every_object(role) else 404
            assert (role, record.status_code) == (role, expected), record.content

    def test_writes_not_offered_answer_405(self, world: World) -> None:
        """Writes the resource does not offer, and writes to the whole list (never offered),
        answer 405 to a system administrator, and 403 or 405 to a role that may not write."""
        key = self.make(world, world.hospital)
        calls: dict[str, Callable[[APIClient], Any]] = {
            "create": lambda c: c.post(self.url, {}, format="json"),
            "update": lambda c: c.patch(self.detail(key), {}, format="json"),
            "replace": lambda c: c.put(self.detail(key), {}, format="json"),
            "delete": lambda c: c.delete(self.detail(key)),
            "update the list": lambda c: c.patch(self.url, {}, format="json"),
            "delete the list": lambda c: c.delete(self.url),
        }
        offered = self.writes | ({"replace"} if "update" in self.writes else set())
        for write, call in calls.items():
            if write in offered:
                continue
            answer = call(world.client("system"))
            assert (write, answer.status_code) == (write, 405), answer.content
            for name in self.refused_writers():
                status = call(world.client(name)).status_code
                assert (write, name, status in {403, 405}) == (write, name, True)


class CreateCase(ResourceCase):
    """The resource offers POST on its list: refused to a role that may not write, 201 for
    one that may, and the new object can be read."""

    def create_payload(self, world: World) -> dict[str, Any]:
        raise NotImplementedError

    def test_create(self, world: World) -> None:
        for name in self.refused_writers():
            answer = world.client(name).post(self.url, self.create_payload(world), format="json")
            assert (name, answer.status_code) == (name, 403), answer.content
        client = world.client(self.writer())
        answer = client.post(self.url, self.create_payload(world), format="json")
        assert answer.status_code == 201, answer.content
        key = str(answer.json()[self.key])
        assert client.get(self.detail(key)).status_code == 200


class UpdateCase(ResourceCase):
    """The resource offers PATCH (and PUT) on its objects."""

    def update_payload(self, world: World) -> dict[str, Any]:
        raise NotImplementedError

    def test_update(self, world: World) -> None:
        key = self.make(world, world.hospital)
        payload = self.update_payload(world)
        for name in self.refused_writers():
            answer = world.client(name).patch(self.detail(key), payload, format="json")
            assert (name, answer.status_code) == (name, 403), answer.content
        client = world.client(self.writer())
        answer = client.patch(self.detail(key), payload, format="json")
        assert answer.status_code == 200, answer.content
        shown = client.get(self.detail(key)).json()
        assert {k: shown[k] for k in payload} == payload


class DeleteCase(ResourceCase):
    """The resource offers DELETE on its objects."""

    def test_delete(self, world: World) -> None:
        key = self.make(world, world.hospital)
        for name in self.refused_writers():
            answer = world.client(name).delete(self.detail(key))
            assert (name, answer.status_code) == (name, 403), answer.content
        client = world.client(self.writer())
        assert client.delete(self.detail(key)).status_code == 204
        assert client.get(self.detail(key)).status_code == 404


__all__ = [
    "FEW",
    "MORE",
    "ROLE_USERS",
    "CreateCase",
    "DeleteCase",
    "ResourceCase",
    "UpdateCase",
    "World",
    "may",
]
