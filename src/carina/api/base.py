"""What every REST API view shares (NetBox-style: thin viewsets over these bases).

* the caller's hospital on ``request.tenant`` (:mod:`carina.api.tenant`);
* one permission per action, checked against the caller's role in that hospital
  (:class:`~carina.api.permissions.HospitalPermission`): ``VIEW`` to read unless the view
  says otherwise, ``write_permission`` to change;
* querysets scoped to that hospital (``Model.objects.for_hospital(request.tenant)``), so an
  object of another hospital is answered 404 exactly like an absent one;
* errors as JSON ``{"detail": "…"}``, also on routes that answer files;
* one audit event per request that reads patient data (:meth:`AuditMixin.audit`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from django.http import HttpResponseBase
from rest_framework.decorators import action as drf_action  # type: ignore[import-untyped]
from rest_framework.exceptions import NotFound  # type: ignore[import-untyped]
from rest_framework.permissions import SAFE_METHODS  # type: ignore[import-untyped]
from rest_framework.renderers import BaseRenderer, JSONRenderer  # type: ignore[import-untyped]
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]
from rest_framework.views import APIView  # type: ignore[import-untyped]
from rest_framework.viewsets import GenericViewSet  # type: ignore[import-untyped]

from carina.accounts.access import Permission
from carina.api import audit
from carina.api.permissions import HospitalPermission
from carina.api.tenant import TenantMixin
from carina.tenancy.models import Hospital

_View = TypeVar("_View", bound=Callable[..., Any])


def action(**kwargs: Any) -> Callable[[_View], _View]:
    """DRF's ``@action`` (an extra route of a viewset), keeping the method's type."""
    decorate: Callable[[_View], _View] = drf_action(**kwargs)
    return decorate


class BinaryRenderer(BaseRenderer):
    """Lets a client ask for a file (``Accept: application/dicom`` or ``application/zip``)
    on routes that answer one; the file itself is streamed by the view, not rendered."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None
    render_style = "binary"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return b"" if data is None else bytes(data)


class DicomRenderer(BinaryRenderer):
    media_type = "application/dicom"
    format = "dcm"


class ZipRenderer(BinaryRenderer):
    media_type = "application/zip"
    format = "zip"


class AuditMixin:
    """Records one audit event per request, once the answer is ready: a view calls
    :meth:`audit` with the event's fields; nothing is recorded for an error answer."""

    _audit_fields: dict[str, Any] | None = None

    def audit(self, **fields: Any) -> None:
        self._audit_fields = fields

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        if (
            isinstance(response, Response)
            and response.status_code >= 400
            and isinstance(getattr(request, "accepted_renderer", None), BinaryRenderer)
        ):
            # An error is JSON even where the client asked for a file.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        if self._audit_fields is not None and response.status_code < 400:
            audit.record(request, **self._audit_fields)
        self._audit_fields = None
        return response


class PermissionMixin:
    """The permission an action needs: ``action_permissions[action]``, else
    ``read_permission`` for GET/HEAD/OPTIONS, else ``write_permission``."""

    read_permission: ClassVar[Permission | None] = Permission.VIEW
    write_permission: ClassVar[Permission | None] = None
    action_permissions: ClassVar[dict[str, Permission | None]] = {}

    def required_permission(self, request: Request) -> Permission | None:
        action = getattr(self, "action", None)
        if action in self.action_permissions:
            return self.action_permissions[action]
        if request.method in SAFE_METHODS:
            return self.read_permission
        return self.write_permission or Permission.MANAGE_HOSPITALS


class CarinaAPIView(TenantMixin, AuditMixin, PermissionMixin, APIView):
    """Base of the API's plain views (not tied to one model)."""

    permission_classes: ClassVar[list[type]] = [HospitalPermission]

    @property
    def hospital(self) -> Hospital:
        tenant: Hospital = self.request.tenant
        return tenant


class CarinaViewSet(TenantMixin, AuditMixin, PermissionMixin, GenericViewSet):
    """Base of the API's viewsets over hospital-owned rows (``model``)."""

    permission_classes: ClassVar[list[type]] = [HospitalPermission]
    #: The hospital-owned model this viewset shows.
    model: ClassVar[type[Model]]
    #: How the object is named in a 404 message ("study", "series", …).
    noun: ClassVar[str] = "object"

    @property
    def hospital(self) -> Hospital:
        tenant: Hospital = self.request.tenant
        return tenant

    def get_queryset(self) -> QuerySet[Any]:
        manager: Any = self.model.objects  # type: ignore[attr-defined]
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request
            return manager.none()
        return self.scope(manager.for_hospital(self.hospital))

    def scope(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Narrow, join or order the hospital's rows (override)."""
        return queryset

    def get_object(self) -> Any:
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs[lookup_url_kwarg]
        try:
            found = self.get_queryset().filter(**{self.lookup_field: value}).first()
        except (ValueError, DjangoValidationError):  # "abc" for a number
            found = None
        if found is None:
            raise NotFound(f"No {self.noun} {value} in {self.hospital.slug}.")
        self.check_object_permissions(self.request, found)
        return found


__all__ = [
    "AuditMixin",
    "BinaryRenderer",
    "CarinaAPIView",
    "CarinaViewSet",
    "DicomRenderer",
    "PermissionMixin",
    "ZipRenderer",
    "action",
]
