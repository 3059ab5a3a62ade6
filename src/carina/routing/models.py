"""Transfers (objects sent to a destination node), their instances, and forwarding rules.

The database is the source of truth for background work (docs/routing.md): a transfer's row
says whether it waits (``queued``, with the time of its next attempt), is being sent
(``sending``, under a worker's lease) or is finished; each of its instances has a
:class:`TransferItem` that says whether it was delivered, so that a transfer resumed after a
crash or a retry sends only what is still to send. A :class:`RuleMatch` records that an
instance matched a rule; its ``forwarded_at`` is set in the same transaction that creates
the transfers, so an instance is forwarded once per rule.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from carina.archive.models import Instance, Study
from carina.core.models import TimeStampedModel
from carina.dimse.models import RemoteNode
from carina.tenancy.models import TenantModel


class TransferStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTLY_FAILED = "partly_failed", "Partly failed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


#: Statuses of transfers still to be done (the queue depth counts them).
ACTIVE = (TransferStatus.QUEUED, TransferStatus.SENDING)
#: Statuses a transfer ends in.
FINISHED = (
    TransferStatus.SUCCEEDED,
    TransferStatus.PARTLY_FAILED,
    TransferStatus.FAILED,
    TransferStatus.CANCELLED,
)


class Level(models.TextChoices):
    """What a transfer was asked to send."""

    STUDY = "study", "Study"
    SERIES = "series", "Series"
    INSTANCES = "instances", "Selected instances"


class Origin(models.TextChoices):
    """Who asked for a transfer."""

    USER = "user", "User (web or API)"
    CLI = "cli", "Command line"
    RULE = "rule", "Forwarding rule"


class Transfer(TenantModel):
    """One object set sent to one destination node."""

    #: Null once the node is removed; its name and AE title stay for the log.
    destination = models.ForeignKey(
        RemoteNode, on_delete=models.SET_NULL, null=True, blank=True, related_name="transfers"
    )
    destination_name = models.CharField(max_length=64)
    destination_ae = models.CharField(max_length=16, blank=True)
    level = models.CharField(max_length=16, choices=Level.choices)
    #: The StudyInstanceUID or SeriesInstanceUID asked for ("" for a selection).
    object_uid = models.CharField(max_length=64, blank=True)
    #: The study of the (first) instance, and its patient, for the log and its filters.
    study_instance_uid = models.CharField(max_length=64, blank=True)
    patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=324, blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.USER)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    #: The user name, the OS user of the command line, or "rule NAME".
    requested_by_name = models.CharField(max_length=150, blank=True)
    rule = models.ForeignKey(
        "ForwardingRule",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="transfers",
    )
    status = models.CharField(
        max_length=16, choices=TransferStatus.choices, default=TransferStatus.QUEUED
    )
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    bytes_sent = models.BigIntegerField(default=0)
    #: Attempts started so far, and the limit before the transfer fails.
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=6)
    #: When a queued transfer may be (re)tried.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    #: When a message naming it was last put on the queue.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    #: A sending transfer belongs to ``worker`` (host:pid) until then (renewed as it sends).
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=128, blank=True)
    #: The last reason an attempt failed (the final one once the transfer failed).
    last_error = models.TextField(blank=True)
    #: The correlation ID of the request that asked for it (logs and audit trail).
    correlation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["hospital", "created_at"], name="transfer_hospital_time"),
            models.Index(fields=["hospital", "status"], name="transfer_hospital_status"),
            models.Index(fields=["status", "next_attempt_at"], name="transfer_due"),
            models.Index(fields=["destination", "status"], name="transfer_destination"),
            models.Index(fields=["hospital", "requested_by"], name="transfer_requester"),
        ]

    def __str__(self) -> str:
        return f"transfer {self.pk} to {self.destination_name} ({self.status})"

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt to the end (or to now while it runs)."""
        if self.started_at is None:
            return None
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class ItemStatus(models.TextChoices):
    PENDING = "pending", "To send"
    SENT = "sent", "Delivered"
    FAILED = "failed", "Failed"


class TransferItem(models.Model):
    """One instance of a transfer: delivered once, or why not."""

    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="items")
    #: Null once the instance is deleted from the archive (the item then fails).
    instance = models.ForeignKey(
        Instance, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    #: The destination's C-STORE status (or the STOW-RS Failure Reason), when it answered.
    dimse_status = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=1000, blank=True)
    #: The transfer syntax it was sent in.
    sent_as = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["transfer", "sop_instance_uid"], name="transfer_item_unique"
            )
        ]
        indexes = [models.Index(fields=["transfer", "status"], name="transfer_item_status")]

    def __str__(self) -> str:
        return f"{self.sop_instance_uid} ({self.status})"


class Trigger(models.TextChoices):
    STABLE = "stable", "When the study is stable"
    INSTANCE = "instance", "On every instance"


#: Where a list of rules keeps each rule's destinations read with the page (one query).
PREFETCHED_DESTINATIONS = "prefetched_destinations"


class ForwardingRule(TimeStampedModel, TenantModel):
    """Send what matches to chosen destinations, automatically (docs/routing.md).

    Conditions left empty match everything. ``modality``, ``body_part`` and
    ``study_description`` and every key of ``keys`` match through the shared query engine
    (PS3.4 C.2.2.2: single value, wildcard, range, list of UIDs), exactly as a C-FIND or
    QIDO-RS search would; ``calling_ae`` is the AE title that stored the instance.
    """

    name = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.STABLE)
    #: A study is stable when no instance arrived for this many seconds.
    stable_seconds = models.PositiveIntegerField(default=60)
    calling_ae = models.CharField("calling AE title", max_length=16, blank=True)
    modality = models.CharField(max_length=64, blank=True)
    body_part = models.CharField("body part examined", max_length=64, blank=True)
    study_description = models.CharField(max_length=64, blank=True)
    #: Further matching keys, DICOM keyword → value as in a QIDO-RS search.
    keys = models.JSONField(default=dict, blank=True)
    destinations = models.ManyToManyField(RemoteNode, related_name="forwarding_rules")
    created_by_name = models.CharField(max_length=150, blank=True)
    #: Instances received before this were checked against the rule by the sweep.
    scanned_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["hospital", "name"], name="rule_name_unique")
        ]

    def __str__(self) -> str:
        return f"rule {self.name}"

    def destination_nodes(self) -> list[RemoteNode]:
        """The rule's destinations, by name (read through the hospital's scope: the
        relation's manager would be RemoteNode's scoped one), or as a list prefetched them
        (:data:`PREFETCHED_DESTINATIONS`)."""
        prefetched: list[RemoteNode] | None = getattr(self, PREFETCHED_DESTINATIONS, None)
        if prefetched is not None:
            return prefetched
        nodes = RemoteNode.objects.for_hospital(self.hospital_id)
        return list(nodes.filter(forwarding_rules=self).order_by("name"))

    def set_destination_nodes(self, nodes: list[RemoteNode]) -> None:
        through = ForwardingRule.destinations.through
        through.objects.filter(forwardingrule=self).delete()
        through.objects.bulk_create(
            [through(forwardingrule=self, remotenode=node) for node in nodes]
        )


class RuleMatch(models.Model):
    """An instance that matched a rule; forwarded once (``forwarded_at``)."""

    rule = models.ForeignKey(ForwardingRule, on_delete=models.CASCADE, related_name="matches")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    forwarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "instance"], name="rule_match_once")]
        indexes = [models.Index(fields=["rule", "forwarded_at"], name="rule_match_pending")]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.instance_id}"


class WorkerHeartbeat(models.Model):
    """A running ``carina worker`` process, as its heartbeat last wrote it (not a hospital's
    row: workers serve every hospital). The worker writes its row when it is ready and then
    every few seconds, and deletes it when it stops cleanly; a row that stops being renewed
    is a worker that died or hangs (docs/routing.md, "Worker liveness")."""

    #: The process, as a transfer's owner names it: ``host:pid``.
    name = models.CharField(max_length=128, unique=True)
    #: Celery's node name (``carina@host``).
    node = models.CharField(max_length=255)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    #: Tasks it runs at once (threads).
    concurrency = models.PositiveIntegerField()
    #: Its broker, without password ("embedded queue" for the broker-less default).
    broker = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname", "pid"]

    def __str__(self) -> str:
        return f"{self.node} (pid {self.pid})"
