"""State changes of routing (``do_*``), each atomic: asking for transfers, cancelling and
retrying them, and managing forwarding rules (docs/routing.md).

A transfer is created with one :class:`TransferItem` per instance, queued, and its ID put on
the queue once the transaction has committed; the worker does the rest
(:mod:`carina.routing.runner`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from carina.archive.models import Instance
from carina.archive.query import QueryError
from carina.config.env import ConfigError, validate_ae_title
from carina.core.request_id import current_request_id
from carina.dimse.models import RemoteNode
from carina.routing import conf
from carina.routing.auditing import record_transfer
from carina.routing.models import (
    FINISHED,
    ForwardingRule,
    ItemStatus,
    Level,
    Origin,
    Transfer,
    TransferItem,
    TransferStatus,
    Trigger,
)
from carina.routing.queue import publish_on_commit
from carina.tenancy.models import Hospital


class TransferError(ValueError):
    """A transfer that cannot be asked for, cancelled or retried; the message says why."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        #: The object named does not exist in the hospital (HTTP 404).
        self.not_found = not_found


class RuleError(ValueError):
    """A forwarding rule that cannot be saved; the message says why."""


@dataclass(frozen=True)
class Requester:
    """Who asks for a transfer: a user (web, API), the command line, or a rule."""

    origin: str = Origin.USER
    user: Any = None
    name: str = ""
    correlation_id: str = ""
    rule: ForwardingRule | None = None

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        return str(self.user.get_username()) if self.user is not None else ""


def check_destination(node: RemoteNode) -> None:
    """Raise TransferError unless ``node`` may be sent to now."""
    if not node.enabled:
        raise TransferError(f"The node {node.name!r} is disabled; enable it first.")
    if not node.is_move_destination:
        raise TransferError(
            f"The node {node.name!r} is not a send destination (its C-MOVE destination "
            "setting is off)."
        )


def _ordered(instances: QuerySet[Instance]) -> QuerySet[Instance]:
    return instances.select_related("series__study__patient").order_by(
        "series__study_id",
        F("series__series_number").asc(nulls_last=True),
        "series_id",
        F("instance_number").asc(nulls_last=True),
        "id",
    )


def select_instances(
    hospital: Hospital,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_instance_uids: Sequence[str] | None = None,
) -> tuple[str, str, list[Instance]]:
    """The level, the UID asked for and the hospital's instances it names (raises
    TransferError, ``not_found`` when it names nothing of this hospital)."""
    given = [v for v in (study_uid, series_uid, sop_instance_uids) if v]
    if len(given) != 1:
        raise TransferError("Name exactly one of: a study, a series, or a list of instances.")
    instances = Instance.objects.for_hospital(hospital)
    if study_uid:
        found = list(_ordered(instances.filter(series__study__study_instance_uid=study_uid)))
        level, uid, what = Level.STUDY, study_uid, f"study {study_uid}"
    elif series_uid:
        found = list(_ordered(instances.filter(series__series_instance_uid=series_uid)))
        level, uid, what = Level.SERIES, series_uid, f"series {series_uid}"
    else:
        uids = list(dict.fromkeys(sop_instance_uids or []))
        found = list(_ordered(instances.filter(sop_instance_uid__in=uids)))
        missing = set(uids) - {i.sop_instance_uid for i in found}
        if missing:
            raise TransferError(
                f"No instance {', '.join(sorted(missing)[:5])} in {hospital.slug}.",
                not_found=True,
            )
        level, uid, what = Level.INSTANCES, "", "instances"
    if not found:
        raise TransferError(f"No {what} in {hospital.slug}.", not_found=True)
    return level, uid, found


def create_transfers(
    hospital: Hospital,
    destinations: Iterable[RemoteNode],
    instances: list[Instance],
    *,
    level: str,
    object_uid: str,
    requester: Requester,
) -> list[Transfer]:
    """One queued transfer per destination with an item per instance (in the caller's
    transaction); their messages go out after the commit."""
    now = timezone.now()
    first = instances[0]
    study = first.series.study
    # The request's (or association's) ID, so the transfer's log lines and audit event can
    # be found from it (carina.core.request_id).
    correlation_id = requester.correlation_id or current_request_id() or uuid.uuid4().hex
    transfers = []
    for node in destinations:
        transfer = Transfer.objects.create(
            hospital=hospital,
            destination=node,
            destination_name=node.name,
            destination_ae=node.ae_title,
            level=level,
            object_uid=object_uid,
            study_instance_uid=study.study_instance_uid,
            patient_id=study.patient.patient_id,
            patient_name=study.patient.patient_name,
            origin=requester.origin,
            requested_by=requester.user,
            requested_by_name=requester.display_name,
            rule=requester.rule,
            total=len(instances),
            max_attempts=conf.max_attempts(),
            next_attempt_at=now,
            enqueued_at=now,
            correlation_id=correlation_id,
        )
        TransferItem.objects.bulk_create(
            (
                TransferItem(
                    transfer=transfer,
                    instance=instance,
                    sop_instance_uid=instance.sop_instance_uid,
                    sop_class_uid=instance.sop_class_uid,
                )
                for instance in instances
            ),
            batch_size=500,
        )
        transfers.append(transfer)
    publish_on_commit(t.pk for t in transfers)
    return transfers


def do_send(
    hospital: Hospital,
    destinations: Sequence[RemoteNode],
    *,
    requester: Requester,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_instance_uids: Sequence[str] | None = None,
) -> list[Transfer]:
    """Send a study, a series or a selection of instances to one or more of the hospital's
    destinations: one transfer per destination (raises TransferError)."""
    nodes = list(dict.fromkeys(destinations))
    if not nodes:
        raise TransferError("Choose at least one destination.")
    for node in nodes:
        if node.hospital_id != hospital.pk:
            raise TransferError(f"No node {node.name!r} in {hospital.slug}.", not_found=True)
        check_destination(node)
    with transaction.atomic():
        level, uid, instances = select_instances(
            hospital,
            study_uid=study_uid,
            series_uid=series_uid,
            sop_instance_uids=sop_instance_uids,
        )
        return create_transfers(
            hospital, nodes, instances, level=level, object_uid=uid, requester=requester
        )


def _locked(hospital: Hospital, transfer_id: int) -> Transfer:
    transfer = (
        Transfer.objects.for_hospital(hospital).select_for_update().filter(pk=transfer_id).first()
    )
    if transfer is None:
        raise TransferError(f"No transfer {transfer_id} in {hospital.slug}.", not_found=True)
    return transfer


def do_cancel(hospital: Hospital, transfer_id: int, by: str) -> Transfer:
    """Cancel a queued or sending transfer: nothing more is sent (an instance on the wire
    finishes). Raises TransferError for a finished transfer."""
    with transaction.atomic():
        transfer = _locked(hospital, transfer_id)
        if transfer.status in FINISHED:
            raise TransferError(
                f"Transfer {transfer_id} has already ended ({transfer.get_status_display()})."
            )
        transfer.status = TransferStatus.CANCELLED
        transfer.finished_at = timezone.now()
        transfer.last_error = f"cancelled by {by}" if by else "cancelled"
        transfer.save(update_fields=["status", "finished_at", "last_error", "updated_at"])
        record_transfer(transfer)
    return transfer


def do_retry(hospital: Hospital, transfer_id: int) -> Transfer:
    """Queue a failed, partly failed or cancelled transfer again: its instances not yet
    delivered are sent (never those already delivered), with a fresh attempt count."""
    with transaction.atomic():
        transfer = _locked(hospital, transfer_id)
        if transfer.status not in (
            TransferStatus.FAILED,
            TransferStatus.PARTLY_FAILED,
            TransferStatus.CANCELLED,
        ):
            raise TransferError(
                f"Transfer {transfer_id} is {transfer.get_status_display().lower()}: only a "
                "failed, partly failed or cancelled transfer can be retried."
            )
        if transfer.worker:
            raise TransferError(
                f"Transfer {transfer_id} is still stopping (an instance is on the wire); "
                "retry it in a moment."
            )
        if transfer.destination_id is None:
            raise TransferError(f"The destination {transfer.destination_name!r} was removed.")
        check_destination(transfer.destination)  # type: ignore[arg-type]
        TransferItem.objects.filter(transfer=transfer, status=ItemStatus.FAILED).update(
            status=ItemStatus.PENDING
        )
        now = timezone.now()
        transfer.status = TransferStatus.QUEUED
        transfer.attempts = 0
        transfer.max_attempts = conf.max_attempts()
        transfer.failed = 0
        transfer.last_error = ""
        transfer.next_attempt_at = now
        transfer.enqueued_at = now
        transfer.finished_at = None
        transfer.save()
        publish_on_commit([transfer.pk])
    return transfer


# --- forwarding rules -------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFields:
    """What a forwarding rule says (every field but its name and destinations)."""

    enabled: bool = True
    trigger: str = Trigger.STABLE
    stable_seconds: int = 60
    calling_ae: str = ""
    modality: str = ""
    body_part: str = ""
    study_description: str = ""
    keys: dict[str, str] | None = None


def _clean_rule(name: str, fields: RuleFields, destinations: Sequence[RemoteNode]) -> RuleFields:
    from carina.routing.rules import spec_for

    if not name or len(name) > 64:
        raise RuleError("A rule's name has 1 to 64 characters.")
    if fields.trigger not in Trigger.values:
        raise RuleError(f"The trigger is one of {', '.join(Trigger.values)}.")
    if not 0 <= fields.stable_seconds <= 7 * 86400:
        raise RuleError("A study is stable after 0 to 604800 seconds without new instances.")
    calling_ae = fields.calling_ae.strip()
    if calling_ae:
        try:
            calling_ae = validate_ae_title(calling_ae, "calling AE title")
        except ConfigError as exc:
            raise RuleError(str(exc)) from None
    keys = {str(k): str(v) for k, v in (fields.keys or {}).items()}
    cleaned = RuleFields(
        fields.enabled,
        fields.trigger,
        fields.stable_seconds,
        calling_ae,
        fields.modality.strip(),
        fields.body_part.strip(),
        fields.study_description.strip(),
        keys,
    )
    try:
        spec_for(cleaned.modality, cleaned.body_part, cleaned.study_description, keys)
    except QueryError as exc:
        raise RuleError(f"The rule's conditions cannot be matched: {exc}") from None
    if not destinations:
        raise RuleError("Choose at least one destination.")
    for node in destinations:
        if not node.is_move_destination:
            raise RuleError(f"The node {node.name!r} is not a send destination.")
    return cleaned


def do_save_rule(
    hospital: Hospital,
    name: str,
    fields: RuleFields,
    destinations: Sequence[RemoteNode],
    *,
    by: str = "",
    rule_id: int | None = None,
) -> ForwardingRule:
    """Create the rule (``rule_id`` None) or change rule ``rule_id`` of ``hospital``."""
    name = name.strip()
    for node in destinations:
        if node.hospital_id != hospital.pk:
            raise RuleError(f"No node {node.name!r} in {hospital.slug}.")
    cleaned = _clean_rule(name, fields, destinations)
    values = {
        "name": name,
        "enabled": cleaned.enabled,
        "trigger": cleaned.trigger,
        "stable_seconds": cleaned.stable_seconds,
        "calling_ae": cleaned.calling_ae,
        "modality": cleaned.modality,
        "body_part": cleaned.body_part,
        "study_description": cleaned.study_description,
        "keys": cleaned.keys or {},
    }
    try:
        with transaction.atomic():
            rules = ForwardingRule.objects.for_hospital(hospital)
            same_name = rules.filter(name=name)
            if rule_id is not None:
                same_name = same_name.exclude(pk=rule_id)
            if same_name.exists():
                raise RuleError(f"A rule called {name!r} exists already in {hospital.slug}.")
            if rule_id is None:
                rule = ForwardingRule.objects.create(
                    hospital=hospital, created_by_name=by, **values
                )
            else:
                found = rules.select_for_update().filter(pk=rule_id).first()
                if found is None:
                    raise RuleError(f"No rule {rule_id} in {hospital.slug}.")
                rule = found
                for key, value in values.items():
                    setattr(rule, key, value)
                rule.save()
            rule.set_destination_nodes(list(destinations))
    except IntegrityError as exc:
        raise RuleError(f"The rule {name!r} could not be saved: {exc}") from None
    return rule


def do_delete_rule(hospital: Hospital, rule_id: int) -> bool:
    """Remove a rule; its transfers stay in the log. Returns whether it existed."""
    with transaction.atomic():
        deleted, _ = ForwardingRule.objects.for_hospital(hospital).filter(pk=rule_id).delete()
    return deleted > 0
