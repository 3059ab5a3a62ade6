"""Who belongs to which hospital, with which role."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from carina.tenancy.models import Hospital


class Role(models.TextChoices):
    """A user's role in one hospital. System administrators are Django superusers."""

    HOSPITAL_ADMIN = "hospital_admin", "Hospital administrator"
    RADIOLOGIST = "radiologist", "Radiologist"
    TECHNOLOGIST = "technologist", "Technologist"
    PHYSICIAN = "physician", "Physician / viewer"


class Membership(models.Model):
    """A user's role in one hospital."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "hospital"], name="one_role_per_hospital")
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.hospital.slug}"
