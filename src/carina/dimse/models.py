"""Known remote DICOM nodes of each hospital: who may call Carina, and where Carina may send.

A node is a peer Application Entity (PS3.7 Annex D, PS3.8 7.1.1): its AE title, the host and
port it listens on, and which DIMSE services it may use. The listener looks a calling AE title
up among the nodes of the hospital picked by the called AE title (docs/dimse.md).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from carina.config.env import ConfigError, validate_ae_title
from carina.core.models import TimeStampedModel
from carina.tenancy.models import TenantModel


def validate_ae_title_field(value: str) -> None:
    """Model-field form of :func:`carina.config.env.validate_ae_title` (PS3.5 6.2, VR AE)."""
    try:
        validate_ae_title(value)
    except ConfigError as exc:
        raise ValidationError(str(exc)) from None


class Service(models.TextChoices):
    """The DIMSE services a node may use (PS3.4 Annexes A, B, C)."""

    ECHO = "echo", "Verification (C-ECHO)"
    STORE = "store", "Storage (C-STORE)"
    QUERY = "query", "Query (C-FIND)"
    RETRIEVE = "retrieve", "Retrieve (C-MOVE, C-GET)"


class Kind(models.TextChoices):
    """How Carina reaches a node it sends to."""

    DIMSE = "dimse", "DICOM (DIMSE C-STORE)"
    DICOMWEB = "dicomweb", "DICOMweb (STOW-RS)"


class RemoteNode(TimeStampedModel, TenantModel):
    """A peer node a hospital knows: a modality, workstation, router or other archive.

    One row holds every role a node plays (docs/routing.md): it may call Carina (echo, store,
    query, retrieve), be a C-MOVE destination, and be a send destination of transfers and
    forwarding rules (``is_move_destination``: "objects may be moved or sent to this node").
    A DICOMweb node is reached with STOW-RS (PS3.18 10.5) at ``dicomweb_url`` instead of
    DIMSE; it has no AE title and never calls Carina over DIMSE.
    """

    name = models.CharField(max_length=64, help_text="Short name used by `carina send --to`.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DIMSE)
    ae_title = models.CharField(
        "AE title",
        max_length=16,
        blank=True,
        validators=[validate_ae_title_field],
        help_text="Required for a DICOM node; empty for a DICOMweb node.",
    )
    host = models.CharField(max_length=255, help_text="Host name or IP address it listens on.")
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    description = models.TextField(blank=True)
    enabled = models.BooleanField(
        default=True, help_text="A disabled node's associations are rejected."
    )
    may_echo = models.BooleanField("may verify (C-ECHO)", default=True)
    may_store = models.BooleanField("may store (C-STORE)", default=True)
    may_query = models.BooleanField("may query (C-FIND)", default=True)
    may_retrieve = models.BooleanField("may retrieve (C-MOVE, C-GET)", default=True)
    is_move_destination = models.BooleanField(
        "C-MOVE destination", default=True, help_text="Objects may be moved or sent to this node."
    )
    use_tls = models.BooleanField(
        "TLS",
        default=False,
        help_text="Connect with TLS (PS3.15 B.1): Carina presents CARINA_DICOM_TLS_CERT and "
        "verifies the node against CARINA_DICOM_TLS_CA (or the system's CAs).",
    )
    preferred_transfer_syntax = models.CharField(
        max_length=64,
        blank=True,
        help_text="Send in this transfer syntax when the node accepts it and Carina can "
        "convert to it without loss; empty: as stored.",
    )
    max_associations = models.PositiveSmallIntegerField(
        "maximum parallel associations",
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(32)],
        help_text="At most this many transfers are sent to the node at the same time.",
    )
    dicomweb_url = models.URLField(
        "DICOMweb URL",
        max_length=500,
        blank=True,
        help_text="The DICOMweb root, e.g. https://pacs.example/dicomweb (STOW-RS goes to "
        "its /studies).",
    )
    #: Sent as ``Authorization: Bearer …``; never shown by the API or written to a log.
    dicomweb_token = models.CharField("DICOMweb token", max_length=4000, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "remote DICOM node"
        constraints = [
            models.UniqueConstraint(fields=["hospital", "name"], name="node_name_unique"),
            # The calling AE title must identify one node of the hospital, and a C-MOVE
            # destination AE title must resolve to one host and port (DICOMweb nodes have
            # none).
            models.UniqueConstraint(
                fields=["hospital", "ae_title"],
                name="node_ae_unique",
                condition=~models.Q(ae_title=""),
            ),
        ]

    def __str__(self) -> str:
        if self.kind == Kind.DICOMWEB:
            return f"{self.name} ({self.dicomweb_url})"
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port})"

    @property
    def is_dicomweb(self) -> bool:
        return self.kind == Kind.DICOMWEB

    def may(self, service: Service) -> bool:
        """Whether this node may use ``service`` (an enabled node with the permission)."""
        allowed = {
            Service.ECHO: self.may_echo,
            Service.STORE: self.may_store,
            Service.QUERY: self.may_query,
            Service.RETRIEVE: self.may_retrieve,
        }[service]
        return self.enabled and allowed and self.kind == Kind.DIMSE

    @property
    def services(self) -> list[str]:
        """The names of the services this node may use, for messages and listings."""
        names = [s.value for s in Service if getattr(self, f"may_{s.value}")]
        if self.is_move_destination:
            names.append("move-destination")
        return names
