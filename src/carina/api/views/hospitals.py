"""Hospitals, their users and the users' roles (docs/api.md, "Hospitals and users").

* ``/api/hospitals/``: everyone sees the hospitals they belong to; system administrators
  create and rename hospitals and add AE titles.
* ``/api/users/`` and ``/api/memberships/``: a hospital administrator manages the users of
  the current hospital and their roles; a system administrator sees every user and
  membership. State changes go through :mod:`carina.accounts.membership_actions`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status  # type: ignore[import-untyped]
from rest_framework.exceptions import (  # type: ignore[import-untyped]
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]

from carina.accounts.access import Permission, has_permission, hospitals_of
from carina.accounts.membership_actions import (
    MembershipError,
    do_add_member,
    do_create_member,
    do_remove_member,
    do_set_role,
    do_update_user,
)
from carina.accounts.models import Membership
from carina.api.base import CarinaViewSet
from carina.api.serializers.hospitals import (
    HospitalSerializer,
    MembershipSerializer,
    UserSerializer,
)
from carina.tenancy.actions import TenancyError, do_add_hospital
from carina.tenancy.models import Hospital


def _refused(exc: Exception) -> ValidationError:
    return ValidationError({"detail": str(exc)})


@extend_schema_view(
    list=extend_schema(summary="Your hospitals", tags=["hospitals"]),
    retrieve=extend_schema(summary="A hospital", tags=["hospitals"]),
    create=extend_schema(summary="Add a hospital (system administrators)", tags=["hospitals"]),
    update=extend_schema(summary="Rename a hospital, add AE titles", tags=["hospitals"]),
    partial_update=extend_schema(summary="Rename a hospital, add AE titles", tags=["hospitals"]),
)
class HospitalViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    CarinaViewSet,
):
    """The hospitals you belong to (all of them for a system administrator)."""

    model = Hospital
    noun = "hospital"
    serializer_class = HospitalSerializer
    read_permission = None  # the list holds only the caller's own hospitals
    write_permission = Permission.MANAGE_HOSPITALS
    filterset_fields: ClassVar[list[str]] = ["slug"]

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return Hospital.objects.none()
        user = self.request.user
        # The caller's role in each hospital, read with the list (one query for the page).
        role = Membership.objects.filter(user=user.pk, hospital=OuterRef("pk")).values("role")
        return (
            hospitals_of(user)
            .annotate(caller_role=Subquery(role[:1]))
            .prefetch_related("ae_titles")
        )

    def perform_create(self, serializer: HospitalSerializer) -> None:
        data = serializer.validated_data
        if Hospital.objects.filter(slug=data["slug"]).exists():
            raise ValidationError({"slug": [f"A hospital {data['slug']!r} exists already."]})
        try:
            hospital, _ = do_add_hospital(data["slug"], data["name"], data.get("ae_titles", []))
        except TenancyError as exc:
            raise _refused(exc) from None
        serializer.instance = hospital

    def perform_update(self, serializer: HospitalSerializer) -> None:
        hospital: Hospital = serializer.instance
        data = serializer.validated_data
        if data.get("slug", hospital.slug) != hospital.slug:
            raise ValidationError({"slug": ["A hospital's slug cannot change."]})
        titles = data.get("ae_titles")
        current = {t.ae_title for t in hospital.ae_titles.all()}
        if titles is not None and not current <= {t.strip() for t in titles}:
            raise ValidationError(
                {
                    "ae_titles": [
                        "AE titles can be added here, not removed; remove one in the Django "
                        "admin (Hospitals → AE titles)."
                    ]
                }
            )
        try:
            hospital, _ = do_add_hospital(
                hospital.slug, data.get("name", hospital.name), list(titles or [])
            )
        except TenancyError as exc:
            raise _refused(exc) from None
        serializer.instance = Hospital.objects.prefetch_related("ae_titles").get(pk=hospital.pk)


class UserAdminMixin:
    """Users and memberships need MANAGE_USERS in the current hospital, for reads too."""

    read_permission: ClassVar[Permission | None] = Permission.MANAGE_USERS
    write_permission: ClassVar[Permission | None] = Permission.MANAGE_USERS
    request: Request

    @property
    def system_admin(self) -> bool:
        return bool(self.request.user.is_superuser)

    def check_manageable(self, user: Any) -> None:
        """A hospital administrator may change an account only when every hospital it
        belongs to is one the administrator manages (and never a system administrator)."""
        if self.system_admin:
            return
        if user.is_superuser:
            raise PermissionDenied("Only a system administrator may change a system administrator.")
        for membership in Membership.objects.filter(user=user).select_related("hospital"):
            if not has_permission(self.request.user, membership.hospital, Permission.MANAGE_USERS):
                raise PermissionDenied(
                    f"{user.get_username()} also belongs to a hospital you do not manage; ask a "
                    "system administrator to change this account."
                )


@extend_schema_view(
    list=extend_schema(summary="Users of the current hospital", tags=["users"]),
    retrieve=extend_schema(summary="A user", tags=["users"]),
    create=extend_schema(
        summary="Create a user in the current hospital",
        description="Creates the account with a role in the current hospital; give `role` "
        "and `password`.",
        tags=["users"],
    ),
    update=extend_schema(summary="Change a user (and the role here)", tags=["users"]),
    partial_update=extend_schema(summary="Change a user (and the role here)", tags=["users"]),
    destroy=extend_schema(
        summary="Remove a user from the current hospital",
        description="Takes the user out of the current hospital; the account stays (its "
        "audit records name it).",
        tags=["users"],
    ),
)
class UserViewSet(
    UserAdminMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    CarinaViewSet,
):
    """Accounts: a hospital administrator's view is the current hospital's members."""

    model = get_user_model()
    noun = "user"
    serializer_class = UserSerializer
    filterset_fields: ClassVar[list[str]] = ["username", "is_active"]

    def get_queryset(self) -> QuerySet[Any]:
        # The memberships (role, hospitals) are shown for every user: one query for the page.
        users = (
            get_user_model()
            .objects.order_by("username")
            .prefetch_related(
                Prefetch(
                    "memberships",
                    queryset=Membership.objects.select_related("hospital").order_by(
                        "hospital__slug"
                    ),
                )
            )
        )
        if getattr(self, "swagger_fake_view", False):
            return users.none()
        if self.system_admin:
            return users
        return users.filter(memberships__hospital=self.hospital).distinct()

    def get_serializer_context(self) -> dict[str, Any]:
        context: dict[str, Any] = super().get_serializer_context()
        context["hospital"] = getattr(self.request, "tenant", None)
        return context

    def perform_create(self, serializer: UserSerializer) -> None:
        data = serializer.validated_data
        missing = [name for name in ("password", "role") if not data.get(name)]
        if missing:
            raise ValidationError({name: ["This field is required."] for name in missing})
        try:
            membership = do_create_member(
                self.hospital,
                data["username"],
                data["password"],
                data["role"],
                email=data.get("email", ""),
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
            )
        except MembershipError as exc:
            raise _refused(exc) from None
        serializer.instance = membership.user

    def perform_update(self, serializer: UserSerializer) -> None:
        user = serializer.instance
        data = serializer.validated_data
        if data.get("username", user.username) != user.username:
            raise ValidationError({"username": ["A user name cannot change."]})
        self.check_manageable(user)
        try:
            do_update_user(
                user,
                email=data.get("email"),
                first_name=data.get("first_name"),
                last_name=data.get("last_name"),
                is_active=data.get("is_active"),
                password=data.get("password"),
            )
            if "role" in data:
                membership = Membership.objects.filter(user=user, hospital=self.hospital).first()
                if membership is None:
                    do_add_member(self.hospital, user, data["role"])
                else:
                    do_set_role(membership, data["role"])
        except MembershipError as exc:
            raise _refused(exc) from None

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = self.get_object()
        membership = Membership.objects.filter(user=user, hospital=self.hospital).first()
        if membership is None:
            raise NotFound(f"{user.get_username()} is not a member of {self.hospital.slug}.")
        try:
            do_remove_member(membership)
        except MembershipError as exc:
            raise _refused(exc) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Roles in the current hospital", tags=["users"]),
    retrieve=extend_schema(summary="A membership", tags=["users"]),
    create=extend_schema(
        summary="Add an existing user to a hospital",
        description="Give `user` (id) or `username`, and `role`. The hospital is the current "
        "one; a system administrator may name another (`hospital`).",
        tags=["users"],
    ),
    update=extend_schema(summary="Change the role", tags=["users"]),
    partial_update=extend_schema(summary="Change the role", tags=["users"]),
    destroy=extend_schema(summary="Remove the user from the hospital", tags=["users"]),
)
class MembershipViewSet(
    UserAdminMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    CarinaViewSet,
):
    """Who has which role in which hospital."""

    model = Membership
    noun = "membership"
    serializer_class = MembershipSerializer
    filterset_fields: ClassVar[list[str]] = ["role", "user"]

    def get_queryset(self) -> QuerySet[Any]:
        rows = Membership.objects.select_related("user", "hospital").order_by(
            "hospital__slug", "user__username"
        )
        if getattr(self, "swagger_fake_view", False):
            return rows.none()
        if self.system_admin:
            slug = self.request.query_params.get("hospital")
            return rows.filter(hospital__slug=slug) if slug else rows
        return rows.filter(hospital=self.hospital)

    def _user_of(self, data: dict[str, Any]) -> Any:
        user = data.get("user")
        username = str(data.get("username") or "").strip()
        if user is None and username:
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                raise ValidationError({"username": [f"No user {username!r}."]})
        if user is None:
            raise ValidationError({"user": ["Give the user's id (user) or name (username)."]})
        return user

    def perform_create(self, serializer: MembershipSerializer) -> None:
        data = serializer.validated_data
        if "role" not in data:
            raise ValidationError({"role": ["This field is required."]})
        hospital = data.get("hospital") if self.system_admin else None
        hospital = hospital or self.hospital
        user = self._user_of(data)
        try:
            serializer.instance = do_add_member(hospital, user, data["role"])
        except MembershipError as exc:
            raise _refused(exc) from None

    def perform_update(self, serializer: MembershipSerializer) -> None:
        membership: Membership = serializer.instance
        data = serializer.validated_data
        if ("hospital" in data and data["hospital"] != membership.hospital) or (
            "user" in data and data["user"] != membership.user
        ):
            raise ValidationError(
                {"detail": "Only the role of a membership changes; add a new membership instead."}
            )
        try:
            if "role" in data:
                do_set_role(membership, data["role"])
        except MembershipError as exc:
            raise _refused(exc) from None

    def perform_destroy(self, instance: Membership) -> None:
        try:
            do_remove_member(instance)
        except MembershipError as exc:
            raise _refused(exc) from None
