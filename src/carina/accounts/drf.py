"""Django REST Framework glue: the authentication classes of the REST API (the same
credentials as :func:`carina.accounts.authentication.request_user`) and
:class:`HasHospitalPermission`, the permission matrix as a DRF permission.

``settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`` lists, in this order,
:class:`PersonalTokenAuthentication`, :class:`JWTAuthentication`,
:class:`BasicAuthentication` and DRF's ``SessionAuthentication`` (which checks the CSRF
token of the web application).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rest_framework import authentication, exceptions, permissions  # type: ignore[import-untyped]
from rest_framework.request import Request  # type: ignore[import-untyped]

from carina.accounts import personal_tokens
from carina.accounts.access import (
    HOSPITAL_HEADER,
    SESSION_HOSPITAL,
    HospitalChoiceError,
    Permission,
    current_hospital,
    has_permission,
    role_in,
)
from carina.accounts.authentication import (
    VIA_BASIC,
    VIA_JWT,
    VIA_PERSONAL_TOKEN,
    basic_user,
    parse_authorization,
    www_authenticate,
)
from carina.accounts.errors import CredentialsError
from carina.accounts.jwt_tokens import user_for_access_token
from carina.tenancy.models import Hospital


class _Refused(exceptions.AuthenticationFailed):
    """401 with the reason: ``{"detail": "…", "code": "…"}``."""

    def __init__(self, exc: CredentialsError) -> None:
        super().__init__({"detail": exc.message, "code": exc.code})


class PersonalTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token carina_…`` or ``Bearer carina_…``; ``request.auth`` is the
    :class:`~carina.accounts.models.PersonalToken`."""

    via = VIA_PERSONAL_TOKEN

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        scheme, credentials = parse_authorization(request)
        if not (scheme == "token" or (scheme == "bearer" and personal_tokens.is_key(credentials))):
            return None
        try:
            return personal_tokens.user_for_personal_token(credentials)
        except CredentialsError as exc:
            raise _Refused(exc) from None

    def authenticate_header(self, request: Request) -> str:
        return www_authenticate()


class JWTAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <access token>`` from ``/api/auth/token/``; refuses tokens
    of an ended sign-in (logout). ``request.auth`` is the access token."""

    via = VIA_JWT

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        scheme, credentials = parse_authorization(request)
        if scheme != "bearer" or personal_tokens.is_key(credentials):
            return None
        try:
            return user_for_access_token(credentials)
        except CredentialsError as exc:
            raise _Refused(exc) from None

    def authenticate_header(self, request: Request) -> str:
        return www_authenticate()


class BasicAuthentication(authentication.BaseAuthentication):
    """``Authorization: Basic …`` when ``CARINA_HTTP_BASIC`` is on (refused with a reason
    otherwise); ``request.auth`` is ``None``."""

    via = VIA_BASIC

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        scheme, credentials = parse_authorization(request)
        if scheme != "basic":
            return None
        try:
            return basic_user(request, credentials), None
        except CredentialsError as exc:
            raise _Refused(exc) from None

    def authenticate_header(self, request: Request) -> str:
        return www_authenticate()


def signed_in_via(request: Request) -> str:
    """How the caller of a DRF view signed in: "personal_token", "jwt", "basic", "session"."""
    return str(getattr(request.successful_authenticator, "via", "session"))


def request_hospital(request: Request) -> Hospital:
    """The hospital a DRF request works in (header ``X-Carina-Hospital``, else the one the
    session remembers, else the user's first), kept on ``request.tenant``; 403 when the user
    does not belong to the hospital named."""
    tenant = getattr(request, "tenant", None)
    if isinstance(tenant, Hospital):
        return tenant
    session = getattr(request, "session", None)
    try:
        hospital = current_hospital(
            request.user,
            requested=request.headers.get(HOSPITAL_HEADER),
            remembered=session.get(SESSION_HOSPITAL) if session is not None else None,
        )
    except HospitalChoiceError as exc:
        raise exceptions.PermissionDenied(str(exc)) from None
    request.tenant = hospital
    request._request.tenant = hospital  # plain Django code sees it too
    return hospital


class HasHospitalPermission(permissions.BasePermission):
    """The permission matrix (:data:`carina.accounts.access.MATRIX`) for DRF views.

    The permission needed is, in this order: the one given with
    ``HasHospitalPermission.requiring(Permission.X)``; the view's ``hospital_permission``
    (a :class:`Permission`, or a mapping from HTTP method to :class:`Permission`);
    :attr:`Permission.VIEW` for GET, HEAD and OPTIONS. An unsafe method with none declared
    is refused (a view must say what it needs).

    It checks the request's hospital (:func:`request_hospital`, also set on
    ``request.tenant``) and, for views that call ``check_object_permissions``, that the
    object's ``hospital`` is that hospital: another hospital's object answers 404, as if it
    did not exist.
    """

    permission: ClassVar[Permission | None] = None

    @classmethod
    def requiring(cls, permission: Permission) -> type[HasHospitalPermission]:
        """This class with a fixed permission: ``permission_classes =
        [HasHospitalPermission.requiring(Permission.DELETE)]``."""
        return type(f"Requires{permission.name.title()}", (cls,), {"permission": permission})

    def needed(self, request: Request, view: Any) -> Permission | None:
        if self.permission is not None:
            return self.permission
        declared = getattr(view, "hospital_permission", None)
        if isinstance(declared, Mapping):
            declared = declared.get(request.method)
        if declared is not None:
            return Permission(declared)
        if request.method in permissions.SAFE_METHODS:
            return Permission.VIEW
        return None

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False  # DRF answers 401 (with credentials to send) or 403
        hospital = request_hospital(request)
        needed = self.needed(request, view)
        if needed is None:
            self.message = f"{request.method} is not allowed here."
            return False
        if has_permission(request.user, hospital, needed):
            return True
        role = role_in(request.user, hospital)
        role_label = role.label if role is not None else "no role"
        self.message = (
            f"Your role in {hospital.name} ({role_label}) does not allow this "
            f"(it needs the '{needed.value}' permission; see docs/accounts.md)."
        )
        return False

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        owner = getattr(obj, "hospital_id", None)
        if owner is not None and owner != request_hospital(request).pk:
            raise exceptions.NotFound()
        return True
