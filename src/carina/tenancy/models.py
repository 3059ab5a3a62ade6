"""Hospitals (tenants) and the AE titles they answer to."""

from __future__ import annotations

from django.db import models

from carina.core.models import TimeStampedModel
from carina.tenancy.managers import TenantManager


class DuplicatePolicy(models.TextChoices):
    """What to do when a SOP Instance UID arrives again with different bytes."""

    REJECT = "reject", "Reject the new object (default)"
    KEEP_NEWEST = "keep_newest", "Replace the stored object with the new one"


class UnknownCallingAEPolicy(models.TextChoices):
    """What the DICOM listener does with a calling AE title that is not a known node."""

    ACCEPT = "accept", "Accept (and flag it)"
    REJECT = "reject", "Reject the association"


class Hospital(TimeStampedModel):
    """A tenant: every archive row belongs to exactly one hospital."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    duplicate_policy = models.CharField(
        max_length=16, choices=DuplicatePolicy.choices, default=DuplicatePolicy.REJECT
    )
    unknown_calling_ae_policy = models.CharField(
        max_length=16, choices=UnknownCallingAEPolicy.choices, default=UnknownCallingAEPolicy.REJECT
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class HospitalAETitle(models.Model):
    """An AE title this archive answers to on behalf of one hospital (the called AE)."""

    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="ae_titles")
    ae_title = models.CharField(max_length=16, unique=True)

    class Meta:
        ordering = ["ae_title"]
        verbose_name = "AE title"

    def __str__(self) -> str:
        return self.ae_title


class TenantModel(models.Model):
    """Base of every hospital-owned row: a hospital and a manager that insists on a scope.

    ``objects`` refuses unscoped queries; ``unscoped`` is the plain manager Django uses for
    relations reached from an already-scoped row (``study.series.all()``) and for the admin.
    """

    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="+")

    objects = TenantManager()
    unscoped = models.Manager()

    class Meta:
        abstract = True
        default_manager_name = "unscoped"
