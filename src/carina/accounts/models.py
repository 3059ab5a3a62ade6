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


class PersonalToken(models.Model):
    """A long-lived API key a user makes for scripts (``Authorization: Token carina_…``).

    Only a SHA-256 digest of the key is stored; the key itself is shown once, when it is made.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personal_tokens"
    )
    name = models.CharField(
        max_length=100, help_text="What the token is for, e.g. 'nightly export'."
    )
    #: The first characters of the key (``carina_AbCd1234``), to recognise it in lists.
    prefix = models.CharField(max_length=32)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"


class SignInLock(models.Model):
    """Failed password sign-ins of one user name, and the lock they lead to (lock-out).

    Keyed by the user name as typed, so that names without an account lock the same way and
    the answer does not tell whether an account exists.
    """

    username = models.CharField(max_length=150, unique=True)
    failures = models.PositiveIntegerField(default=0)
    #: The first failure of the current counting window.
    first_failure_at = models.DateTimeField()
    last_failure_at = models.DateTimeField()
    last_failure_ip = models.CharField(max_length=64, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_failure_at"]
        verbose_name = "sign-in lock-out"

    def __str__(self) -> str:
        return f"{self.username}: {self.failures} failure(s), locked until {self.locked_until}"


class TOTPDevice(models.Model):
    """A user's authenticator app (RFC 6238 TOTP, 6 digits, 30 s): the second factor.

    It guards sign-in only once ``confirmed`` (the user typed a code from it once).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device"
    )
    secret = models.CharField(max_length=64)
    confirmed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    #: The last time step whose code was accepted: a code is never accepted twice.
    last_used_step = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "TOTP device"

    def __str__(self) -> str:
        state = "confirmed" if self.confirmed else "not confirmed"
        return f"Authenticator app of {self.user} ({state})"


class ApiSignIn(models.Model):
    """One sign-in at ``/api/auth/token/``: every refresh token rotated from it and every
    access token issued with them carry its id (JWT claim ``sid``). Revoking it (logout, a
    refresh token used twice, a password change) ends all of them at once."""

    id = models.UUIDField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_sign_ins"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    source_ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API sign-in"

    def __str__(self) -> str:
        return f"API sign-in of {self.user} at {self.created_at:%Y-%m-%d %H:%M}"
