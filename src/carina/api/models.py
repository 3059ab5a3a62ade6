"""Uploads through the REST API: each ``POST /api/uploads/`` is one :class:`Upload`, whose
status, progress and per-file results the client reads at ``/api/uploads/{id}/``."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from carina.tenancy.models import TenantModel


class UploadStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Upload(TenantModel):
    """Files (DICOM files or ZIP archives) uploaded into one hospital, and what became of
    each object in them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    #: Kept when the account goes.
    username = models.CharField(max_length=150)
    source_ip = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=UploadStatus.choices, default=UploadStatus.QUEUED
    )
    background = models.BooleanField(default=False)
    #: Objects to ingest (files, and members of ZIP archives), and how many are done.
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    #: Outcome → number of objects (stored, already_present, replaced, rejected, skipped).
    counts = models.JSONField(default=dict)
    #: One entry per object: name, status, reason, SOP Instance UID, Study Instance UID.
    results = models.JSONField(default=list)
    #: Why the whole upload failed (an archive that cannot be read, a crash), else "".
    error = models.TextField(blank=True)
    #: Where the uploaded files wait for a background run.
    folder = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["hospital", "created_at"])]

    def __str__(self) -> str:
        return f"upload {self.id} ({self.status}, {self.done}/{self.total})"
