"""Every resource of the REST API through the shared cases of :mod:`resource_cases`: list,
filter, retrieve, create, update, delete, permission denied, another hospital's objects, and
the number of queries of a list.

Each class declares its resource: the URL, how to make an object in a hospital, filter
examples, write payloads and the permissions its view asks for (the roles that hold them come
from the permission matrix).
"""

from __future__ import annotations

from typing import Any, ClassVar

from carina.accounts.access import Permission
from carina.accounts.models import Membership, Role
from carina.api.models import Upload
from carina.api.tests.conftest import PASSWORD, make_user
from carina.api.tests.resource_cases import (
    CreateCase,
    DeleteCase,
    ResourceCase,
    UpdateCase,
    World,
    may,
)
from carina.archive.models import Patient
from carina.audit.actions import do_record
from carina.dimse.actions import do_add_node
from carina.dimse.models import RemoteNode
from carina.routing.actions import RuleFields, do_save_rule
from carina.routing.models import ForwardingRule, Transfer, TransferStatus
from carina.tenancy.actions import do_add_hospital
from carina.tenancy.models import Hospital

# -- hospitals, users, memberships -----------------------------------------------------------


class TestHospitals(CreateCase, UpdateCase):
    """Everyone reads the hospitals they belong to; only system administrators add or
    change one (``manage_hospitals``, which no role has); none is deleted through the API."""

    url = "/api/hospitals/"
    read = None
    write = Permission.MANAGE_HOSPITALS
    list_queries = 5

    def make(self, world: World, hospital: Hospital) -> str:
        """A new hospital whose administrator is ``hospital``'s (so it is theirs to see)."""
        n = world.next()
        made, _ = do_add_hospital(f"h{n}{hospital.slug}", f"Hospital {n}", [f"H{n}AE"])
        admin = world.users["admin" if hospital == world.hospital else "other_admin"]
        Membership.objects.create(user=admin, hospital=made, role=Role.HOSPITAL_ADMIN)
        for name in ("radiologist", "technologist", "physician"):
            if hospital == world.hospital:
                role = Role(world.users[name].memberships.get(hospital=hospital).role)
                Membership.objects.create(user=world.users[name], hospital=made, role=role)
        return str(made.pk)

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        slug = Hospital.objects.get(pk=first).slug
        return [(f"slug={slug}", {first}), ("slug=nowhere", set())]

    def create_payload(self, world: World) -> dict[str, Any]:
        n = world.next()
        return {"slug": f"north{n}", "name": "North clinic", "ae_titles": [f"NORTH{n}"]}

    def update_payload(self, world: World) -> dict[str, Any]:
        return {"name": "Renamed clinic"}


class TestUsers(CreateCase, UpdateCase, DeleteCase):
    """A hospital's members, managed by those who may manage users (deleting one takes them
    out of the hospital)."""

    url = "/api/users/"
    read = Permission.MANAGE_USERS
    write = Permission.MANAGE_USERS
    list_queries = 7

    def make(self, world: World, hospital: Hospital) -> str:
        return str(make_user(f"member{world.next()}", hospital, Role.PHYSICIAN).pk)

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        username = world.client("admin").get(self.detail(first)).json()["username"]
        return [(f"username={username}", {first}), ("is_active=false", set())]

    def create_payload(self, world: World) -> dict[str, Any]:
        return {"username": f"newdoc{world.next()}", "password": PASSWORD, "role": "physician"}

    def update_payload(self, world: World) -> dict[str, Any]:
        return {"first_name": "Ann", "role": Role.RADIOLOGIST.value}


class TestMemberships(CreateCase, UpdateCase, DeleteCase):
    """Who has which role in the hospital."""

    url = "/api/memberships/"
    read = Permission.MANAGE_USERS
    write = Permission.MANAGE_USERS
    list_queries = 5

    def make(self, world: World, hospital: Hospital) -> str:
        n = world.next()
        role = Role.PHYSICIAN if n % 2 else Role.TECHNOLOGIST
        user = make_user(f"member{n}", hospital, role)
        return str(Membership.objects.get(user=user, hospital=hospital).pk)

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        role = Membership.objects.get(pk=first).role
        return [(f"role={role}", {first})]

    def create_payload(self, world: World) -> dict[str, Any]:
        loner = make_user(f"loner{world.next()}", world.other_hospital, Role.PHYSICIAN)
        return {"username": loner.username, "role": Role.PHYSICIAN.value}

    def update_payload(self, world: World) -> dict[str, Any]:
        return {"role": Role.RADIOLOGIST.value}


# -- the archive -----------------------------------------------------------------------------


class ArchiveCase(ResourceCase):
    """The archive is read by anyone in the hospital, and deleted with ``delete``; it is
    written by storing DICOM objects (uploads, STOW-RS, C-STORE), never through these."""

    read = Permission.VIEW
    write = Permission.DELETE
    list_queries = 6

    def store(self, world: World, hospital: Hospital) -> Any:
        n = world.next()
        return world.store_study(
            hospital,
            series=[("MR" if n % 2 else "CT", 1)],
            patient_id=f"R{n:04d}",
            patient_name=f"PATIENT^N{n}",
            AccessionNumber=f"ACC{n:04d}",
        )


class TestPatients(ArchiveCase):
    """Patients are read only: they come with their studies and go with the last one."""

    url = "/api/patients/"

    def make(self, world: World, hospital: Hospital) -> str:
        stored = self.store(world, hospital)
        return str(Patient.objects.for_hospital(hospital).get(patient_id=stored.patient_id).pk)

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        patient = Patient.unscoped.get(pk=first)
        return [
            (f"patient_id={patient.patient_id}", {first}),
            (f"patient_name={patient.patient_name}", {first}),
            ("patient_name=PATIENT", {first, second}),
        ]


class TestStudies(ArchiveCase, DeleteCase):
    url = "/api/studies/"
    key = "study_instance_uid"

    def make(self, world: World, hospital: Hospital) -> str:
        return self.store(world, hospital).study_uid

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        study = world.client("admin").get(self.detail(first)).json()
        return [
            (f"accession={study['accession_number']}", {first}),
            (f"modality={study['modalities_in_study'][0]}", {first}),
            ("modality=CT,MR", {first, second}),
            (f"patient_id={study['patient']['patient_id']}", {first}),
            (f"q={study['accession_number'].lower()}", {first}),
        ]


class TestSeries(ArchiveCase, DeleteCase):
    url = "/api/series/"
    key = "series_instance_uid"

    def make(self, world: World, hospital: Hospital) -> str:
        return self.store(world, hospital).series_uids[0]

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        series = world.client("admin").get(self.detail(first)).json()
        return [
            (f"modality={series['modality']}", {first}),
            (f"study={series['study_instance_uid']}", {first}),
        ]


class TestInstances(ArchiveCase, DeleteCase):
    url = "/api/instances/"
    key = "sop_instance_uid"

    def make(self, world: World, hospital: Hospital) -> str:
        return self.store(world, hospital).sop_uids[0]

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        instance = world.client("admin").get(self.detail(first)).json()
        return [(f"series={instance['series_instance_uid']}", {first})]


# -- uploads, nodes, routing, audit ----------------------------------------------------------


class TestUploads(ResourceCase):
    """Uploads: those who may store see their own, administrators every one."""

    url = "/api/uploads/"
    read = Permission.STORE
    write = Permission.STORE
    tested_elsewhere: ClassVar[dict[str, str]] = {"create": "test_uploads.py (files)"}
    list_queries = 6

    def make(self, world: World, hospital: Hospital) -> str:
        n = world.next()
        admin = world.users["admin" if hospital == world.hospital else "other_admin"]
        upload = Upload.objects.create(
            hospital=hospital,
            user=admin,
            username=admin.username,
            status="done" if n % 2 else "failed",
        )
        return str(upload.pk)

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        status = Upload.unscoped.get(pk=first).status
        return [(f"status={status}", {first})]

    def sees_every_object(self, role: Role) -> bool:
        return role == Role.HOSPITAL_ADMIN


class TestNodes(CreateCase, UpdateCase, DeleteCase):
    """Everyone in the hospital sees its DICOM nodes; ``manage_nodes`` changes them."""

    url = "/api/nodes/"
    read = Permission.VIEW
    write = Permission.MANAGE_NODES
    list_queries = 5

    def make(self, world: World, hospital: Hospital) -> str:
        n = world.next()
        node, _ = do_add_node(hospital, f"node{n}", ae_title=f"NODE{n}", host="n.test", port=104)
        return str(node.pk)

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        node = RemoteNode.unscoped.get(pk=first)
        return [(f"name={node.name}", {first}), (f"ae_title={node.ae_title}", {first})]

    def create_payload(self, world: World) -> dict[str, Any]:
        n = world.next()
        return {"name": f"ct{n}", "ae_title": f"CT{n}", "host": "10.0.0.5", "port": 104}

    def update_payload(self, world: World) -> dict[str, Any]:
        return {"port": 11112, "enabled": False}


class TestTransfers(ResourceCase):
    """The transfer log: those who may send see their own transfers, those who see the audit
    trail every one. Sending (POST) needs a DICOM peer: routing/tests/test_api.py."""

    url = "/api/transfers/"
    read = Permission.SEND
    write = Permission.SEND
    tested_elsewhere: ClassVar[dict[str, str]] = {"create": "routing/tests/test_api.py"}
    list_queries = 6

    def make(self, world: World, hospital: Hospital) -> str:
        n = world.next()
        node, _ = do_add_node(hospital, f"dest{n}", ae_title=f"DEST{n}", host="t.test", port=104)
        admin = world.users["admin" if hospital == world.hospital else "other_admin"]
        transfer = Transfer.objects.create(
            hospital=hospital,
            destination=node,
            destination_name=node.name,
            destination_ae=node.ae_title,
            level="study",
            object_uid="1.2.3",
            requested_by=admin,
            requested_by_name=admin.username,
            status=TransferStatus.FAILED if n % 2 else TransferStatus.QUEUED,
        )
        return str(transfer.pk)

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        transfer = Transfer.unscoped.get(pk=first)
        return [
            (f"status={transfer.status}", {first}),
            (f"destination_name={transfer.destination_name}", {first}),
            ("user=a-admin", {first, second}),
        ]

    def sees_every_object(self, role: Role) -> bool:
        return may(role, Permission.VIEW_AUDIT)


class TestRules(CreateCase, UpdateCase, DeleteCase):
    """Forwarding rules: those who manage the hospital's nodes."""

    url = "/api/rules/"
    read = Permission.MANAGE_NODES
    write = Permission.MANAGE_NODES
    # The destinations of the page's rules are read with the page (RuleViewSet.scope).
    list_queries = 6

    def destination(self, world: World, hospital: Hospital) -> RemoteNode:
        n = world.next()
        node, _ = do_add_node(hospital, f"dest{n}", ae_title=f"DEST{n}", host="t.test", port=104)
        return node

    def make(self, world: World, hospital: Hospital) -> str:
        node = self.destination(world, hospital)
        enabled = ForwardingRule.objects.for_hospital(hospital).count() % 2 == 0
        rule = do_save_rule(
            hospital, f"rule{world.next()}", RuleFields(enabled=enabled, modality="CT"), [node]
        )
        return str(rule.pk)

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        enabled = world.client("admin").get(self.detail(first)).json()["enabled"]
        return [(f"enabled={str(enabled).lower()}", {first})]

    def create_payload(self, world: World) -> dict[str, Any]:
        node = self.destination(world, world.hospital)
        return {"name": f"new{world.next()}", "destinations": [node.name], "modality": "MR"}

    def update_payload(self, world: World) -> dict[str, Any]:
        return {"enabled": False, "modality": "US"}


class TestAudit(ResourceCase):
    """The audit trail: everyone reads their own events, ``view_audit`` the hospital's;
    nothing changes or removes an event (every write answers 405)."""

    url = "/api/audit/"
    read = None
    write = None
    list_queries = 5

    def make(self, world: World, hospital: Hospital) -> str:
        n = world.next()
        event = do_record(hospital=hospital, actor=f"someone{n}", actor_kind="user", action="login")
        return str(event.pk)

    def filters(self, world: World, first: str, second: str) -> list[tuple[str, set[str]]]:
        actor = world.client("admin").get(self.detail(first)).json()["actor"]
        return [(f"actor={actor}", {first}), ("action=dicom.store", set())]

    def sees_every_object(self, role: Role) -> bool:
        return may(role, Permission.VIEW_AUDIT)
