"""Hospitals, users and memberships as JSON."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth import get_user_model
from django.core.validators import validate_email
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers  # type: ignore[import-untyped]

from carina.accounts.access import hospitals_of, role_in
from carina.accounts.models import Membership, Role
from carina.api.serializers.common import LinkField
from carina.tenancy.models import Hospital


class AETitlesField(serializers.ListField):
    """The hospital's AE titles as a list of strings."""

    def to_representation(self, data: Any) -> list[str]:
        return [t.ae_title for t in data.all()]


class HospitalSerializer(serializers.ModelSerializer):
    ae_titles = AETitlesField(
        child=serializers.CharField(max_length=16),
        required=False,
        help_text="AE titles the DICOM listener answers to for this hospital (called AE).",
    )
    role = serializers.SerializerMethodField(help_text="Your role in this hospital.")
    url = LinkField("hospital-detail", "pk", kwarg="pk")

    class Meta:
        model = Hospital
        fields = [
            "id",
            "url",
            "slug",
            "name",
            "ae_titles",
            "duplicate_policy",
            "unknown_calling_ae_policy",
            "role",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["duplicate_policy", "unknown_calling_ae_policy"]

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices, allow_null=True))
    def get_role(self, hospital: Hospital) -> str | None:
        request = self.context.get("request")
        if request is None:
            return None
        if hasattr(hospital, "caller_role") and not request.user.is_superuser:
            # Read with the list (HospitalViewSet.get_queryset): no query per hospital.
            return hospital.caller_role or None
        role = role_in(request.user, hospital)
        return role.value if role else None


class MembershipSummarySerializer(serializers.Serializer):
    hospital = serializers.CharField(help_text="The hospital's slug.")
    role = serializers.ChoiceField(choices=Role.choices)


def email_or_empty(value: str) -> None:
    """An e-mail address, or "" for none (documented as a plain string: "" is no e-mail)."""
    if value:
        validate_email(value)


def memberships_of(user: Any) -> list[Membership]:
    """The user's memberships with their hospitals, by hospital slug: those a list prefetched
    (``UserViewSet``: no query per user), else read now."""
    if "memberships" in getattr(user, "_prefetched_objects_cache", {}):
        return list(user.memberships.all())
    return list(
        Membership.objects.filter(user=user).select_related("hospital").order_by("hospital__slug")
    )


class UserSerializer(serializers.ModelSerializer):
    """An account, with its role in the caller's hospital."""

    password = serializers.CharField(
        write_only=True,
        required=False,
        style={"input_type": "password"},
        help_text="Set (or change) the password; the password rules apply.",
    )
    role = serializers.ChoiceField(
        choices=Role.choices,
        required=False,
        allow_null=True,  # null: not a member of the current hospital
        help_text="The user's role in the current hospital (needed to create a user).",
    )
    email = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=254,
        validators=[email_or_empty],
        help_text="E-mail address, or empty.",
    )
    memberships = serializers.SerializerMethodField(
        help_text="The user's roles in the hospitals you can see."
    )
    url = LinkField("user-detail", "pk", kwarg="pk")

    class Meta:
        model = get_user_model()
        fields = [
            "id",
            "url",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "is_superuser",
            "last_login",
            "date_joined",
            "password",
            "role",
            "memberships",
        ]
        read_only_fields = ["is_superuser", "last_login", "date_joined"]
        extra_kwargs: ClassVar[dict[str, dict[str, Any]]] = {"username": {"validators": []}}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        hospital = self.context.get("hospital")
        data["role"] = next(
            (m.role for m in memberships_of(instance) if hospital and m.hospital_id == hospital.pk),
            None,
        )
        return data

    @extend_schema_field(MembershipSummarySerializer(many=True))
    def get_memberships(self, user: Any) -> list[dict[str, str]]:
        visible = self.context.get("visible_hospitals")
        if visible is None:  # read once per response, not once per user
            request = self.context.get("request")
            mine = hospitals_of(request.user) if request is not None else Hospital.objects.none()
            visible = self.context["visible_hospitals"] = set(mine.values_list("pk", flat=True))
        return [
            {"hospital": m.hospital.slug, "role": m.role}
            for m in memberships_of(user)
            if m.hospital_id in visible
        ]


class UsernameField(serializers.CharField):
    """The member's user name: shown, and accepted instead of the user's id."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["source"] = "*"
        super().__init__(**kwargs)

    def to_representation(self, value: Membership) -> str:
        return str(value.user.get_username())

    def to_internal_value(self, data: Any) -> dict[str, str]:
        return {"username": str(super().to_internal_value(data))}


class MembershipSerializer(serializers.ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(),
        required=False,
        help_text="The user's id (or give username).",
    )
    username = UsernameField(required=False, help_text="The user's name (or give user).")
    hospital = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Hospital.objects.all(),
        required=False,
        help_text="The hospital's slug (system administrators; others: the current hospital).",
    )
    url = LinkField("membership-detail", "pk", kwarg="pk")

    class Meta:
        model = Membership
        fields = ["id", "url", "user", "username", "hospital", "role"]
        # One membership per user and hospital: checked by the actions, with a clear message.
        validators: list[object] = []
