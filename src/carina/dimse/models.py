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


class RemoteNode(TimeStampedModel, TenantModel):
    """A peer DICOM node a hospital knows: a modality, workstation, router or other archive."""

    name = models.CharField(max_length=64, help_text="Short name used by `carina send --to`.")
    ae_title = models.CharField("AE title", max_length=16, validators=[validate_ae_title_field])
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

    class Meta:
        ordering = ["name"]
        verbose_name = "remote DICOM node"
        constraints = [
            models.UniqueConstraint(fields=["hospital", "name"], name="node_name_unique"),
            # The calling AE title must identify one node of the hospital, and a C-MOVE
            # destination AE title must resolve to one host and port.
            models.UniqueConstraint(fields=["hospital", "ae_title"], name="node_ae_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port})"

    def may(self, service: Service) -> bool:
        """Whether this node may use ``service`` (an enabled node with the permission)."""
        allowed = {
            Service.ECHO: self.may_echo,
            Service.STORE: self.may_store,
            Service.QUERY: self.may_query,
            Service.RETRIEVE: self.may_retrieve,
        }[service]
        return self.enabled and allowed

    @property
    def services(self) -> list[str]:
        """The names of the services this node may use, for messages and listings."""
        names = [s.value for s in Service if getattr(self, f"may_{s.value}")]
        if self.is_move_destination:
            names.append("move-destination")
        return names
