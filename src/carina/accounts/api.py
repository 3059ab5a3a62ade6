"""The ``/api/auth/`` endpoints: JWT sign-in, rotation and logout, the signed-in user,
personal API tokens, the authenticator app and the password (docs/accounts.md).

Errors answer ``{"detail": "<what to do>", "code": "<short code>"}``: 400 for a malformed
request, 401 for credentials that are refused (wrong, locked, expired, revoked, second factor
missing or wrong), 403 when signed in the wrong way for the endpoint, 404 for another user's
token.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.signals import user_logged_out
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import (  # type: ignore[import-untyped]
    exceptions,
    permissions,
    serializers,
    status,
)
from rest_framework.authentication import SessionAuthentication  # type: ignore[import-untyped]
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]
from rest_framework.views import APIView  # type: ignore[import-untyped]

from carina.accounts import actions, signin
from carina.accounts.access import MATRIX, Permission, hospitals_of, role_in
from carina.accounts.backends import client_ip
from carina.accounts.drf import request_hospital, signed_in_via
from carina.accounts.errors import AccountLockedError, CredentialsError
from carina.accounts.jwt_tokens import SID_CLAIM, decode_signed
from carina.accounts.models import ApiSignIn, PersonalToken, TOTPDevice
from carina.accounts.totp import provisioning_uri


def refused(exc: CredentialsError, http_status: int = status.HTTP_401_UNAUTHORIZED) -> Response:
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
    if isinstance(exc, AccountLockedError):
        body["locked_until"] = exc.locked_until.isoformat()
    return Response(body, status=http_status)


def bad_request(message: str, code: str = "invalid") -> Response:
    return Response({"detail": message, "code": code}, status=status.HTTP_400_BAD_REQUEST)


def _invalid(serializer: serializers.Serializer) -> Response:
    problems = "; ".join(
        f"{field}: {' '.join(str(m) for m in messages)}"
        for field, messages in serializer.errors.items()
    )
    return bad_request(f"The request is not complete: {problems}.")


class AuthAPIView(APIView):
    """The views of this module: Django REST Framework's own refusals (malformed JSON, an
    unsupported Content-Type, too many requests, not signed in) carry a ``code`` too."""

    def handle_exception(self, exc: Exception) -> Response:
        response: Response = super().handle_exception(exc)
        data = response.data
        if (
            isinstance(exc, exceptions.APIException)
            and isinstance(data, dict)
            and "detail" in data
            and "code" not in data
        ):
            codes = exc.get_codes()
            data["code"] = codes if isinstance(codes, str) else exc.default_code
        return response


class SignedInWithPassword(permissions.BasePermission):
    """Managing one's tokens, authenticator app and password needs a sign-in with the
    password (the session or a JWT), not a personal token or HTTP Basic: a leaked script key
    must not make more keys or turn the second factor off."""

    message = (
        "Sign in with your password (the sign-in page, or /api/auth/token/) to manage "
        "tokens, the authenticator app or the password; a personal token or HTTP Basic "
        "cannot do this."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(
            request.user
            and request.user.is_authenticated
            and signed_in_via(request) in {"jwt", "session"}
        )


# --- tokens --------------------------------------------------------------------------------


class TokenObtainSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    otp = serializers.CharField(max_length=16, required=False, allow_blank=True)


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class LogoutSerializer(serializers.Serializer):
    refresh = serializers.CharField(required=False)


class RefusalSerializer(serializers.Serializer):
    """An incomplete or refused sign-in."""

    detail = serializers.CharField(help_text="What went wrong, and what to do about it.")
    code = serializers.CharField(help_text="A stable code for programs (e.g. locked).")


class TokenPairSerializer(serializers.Serializer):
    """The answer of a sign-in or a refresh."""

    access = serializers.CharField(help_text="The access token (Authorization: Bearer …).")
    refresh = serializers.CharField(help_text="The refresh token, for /api/auth/token/refresh/.")


#: The answers of the token routes (documented for the OpenAPI schema).
TOKEN_ANSWERS: dict[int, Any] = {
    200: TokenPairSerializer,
    400: OpenApiResponse(RefusalSerializer, description="The request is not complete."),
    401: OpenApiResponse(RefusalSerializer, description="The credentials are refused."),
}


class TokenObtainView(AuthAPIView):
    """``POST {username, password[, otp]}`` → ``{access, refresh}``. ``otp``: the code of the
    authenticator app, needed when the account has one."""

    authentication_classes: list[type] = []
    permission_classes = [permissions.AllowAny]
    serializer_class = TokenObtainSerializer

    @extend_schema(responses=TOKEN_ANSWERS)
    def post(self, request: Request) -> Response:
        form = TokenObtainSerializer(data=request.data)
        if not form.is_valid():
            return _invalid(form)
        data = form.validated_data
        try:
            user = signin.sign_in(request, data["username"], data["password"], data.get("otp"))
        except CredentialsError as exc:
            return refused(exc)
        tokens = actions.do_issue_tokens(
            user,
            source_ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        signin.report_success(request, user)
        return Response(tokens)


class TokenRefreshView(AuthAPIView):
    """``POST {refresh}`` → ``{access, refresh}``: a new pair; the refresh token sent is
    refused from now on (rotation), and sending it again ends the sign-in."""

    authentication_classes: list[type] = []
    permission_classes = [permissions.AllowAny]
    serializer_class = RefreshSerializer

    @extend_schema(responses=TOKEN_ANSWERS)
    def post(self, request: Request) -> Response:
        form = RefreshSerializer(data=request.data)
        if not form.is_valid():
            return _invalid(form)
        try:
            return Response(actions.do_refresh_tokens(form.validated_data["refresh"]))
        except CredentialsError as exc:
            return refused(exc)


class LogoutView(AuthAPIView):
    """``POST {refresh}``: ends that API sign-in (its refresh token and every access token
    issued with it). Without ``refresh``, from the web application: ends the session."""

    # The refresh token is the credential here: an expired access token sent along must not
    # stand in the way. The session (with its CSRF check) is the web application's.
    authentication_classes = [SessionAuthentication]
    permission_classes = [permissions.AllowAny]
    serializer_class = LogoutSerializer

    def post(self, request: Request) -> Response:
        form = LogoutSerializer(data=request.data)
        if not form.is_valid():
            return _invalid(form)
        raw = form.validated_data.get("refresh")
        if raw:
            try:
                actions.do_sign_out_tokens(raw)
            except CredentialsError as exc:
                return refused(exc)
            _announce_sign_out(request, raw)
            return Response(
                {
                    "detail": "Signed out: the refresh token and the access tokens issued "
                    "with it are revoked."
                }
            )
        if request.user and request.user.is_authenticated and signed_in_via(request) == "session":
            logout(request._request)
            return Response({"detail": "Signed out: the session has ended."})
        return bad_request(
            "Send the refresh token to revoke as 'refresh' (or sign out of the web "
            "application with its session).",
            code="refresh_missing",
        )


def _announce_sign_out(request: Request, raw_refresh: str) -> None:
    """Django's ``user_logged_out`` for an API sign-in just ended (the audit trail records
    it, as it does for the web application's sign-out)."""
    sid = decode_signed(raw_refresh, "refresh").get(SID_CLAIM)
    sign_in = ApiSignIn.objects.select_related("user").filter(pk=sid).first() if sid else None
    if sign_in is not None:
        user_logged_out.send(sender=type(sign_in.user), request=request._request, user=sign_in.user)


# --- who am I ------------------------------------------------------------------------------


class HospitalRoleSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    role = serializers.CharField(help_text="The role's code, or system_admin.")
    role_label = serializers.CharField()
    permissions = serializers.ListField(
        child=serializers.CharField(), help_text="What the role may do here (docs/accounts.md)."
    )


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    full_name = serializers.CharField()
    email = serializers.CharField()
    system_administrator = serializers.BooleanField()
    authenticator_app = serializers.BooleanField(
        help_text="Whether sign-in asks for an authenticator app's code."
    )
    signed_in_with = serializers.ChoiceField(choices=["personal_token", "jwt", "basic", "session"])
    hospitals = HospitalRoleSerializer(many=True)
    current_hospital = serializers.CharField(
        allow_null=True, help_text="The slug of the hospital this request works in."
    )


class MeView(AuthAPIView):
    """``GET``: the signed-in user, the hospitals with the role and permissions in each, the
    hospital the request works in, and how the user signed in."""

    serializer_class = MeSerializer

    def get(self, request: Request) -> Response:
        user = request.user
        hospitals = []
        for hospital in hospitals_of(user):
            if user.is_superuser:
                role, label, perms = "system_admin", "System administrator", list(Permission)
            else:
                held = role_in(user, hospital)
                if held is None:
                    continue
                role, label = held.value, held.label
                perms = sorted(MATRIX[held], key=list(Permission).index)
            hospitals.append(
                {
                    "slug": hospital.slug,
                    "name": hospital.name,
                    "role": role,
                    "role_label": label,
                    "permissions": [p.value for p in perms],
                }
            )
        current = request_hospital(request).slug if hospitals else None
        return Response(
            {
                "username": user.get_username(),
                "full_name": user.get_full_name(),
                "email": user.email,
                "system_administrator": user.is_superuser,
                "authenticator_app": signin.second_factor_of(user) is not None,
                "signed_in_with": signed_in_via(request),
                "hospitals": hospitals,
                "current_hospital": current,
            }
        )


# --- personal tokens -----------------------------------------------------------------------


class PersonalTokenSerializer(serializers.ModelSerializer):
    expires_in_days = serializers.IntegerField(
        write_only=True,
        required=False,
        min_value=1,
        max_value=actions.PERSONAL_TOKEN_MAX_DAYS,
        help_text=f"Days until it expires (default {actions.PERSONAL_TOKEN_DEFAULT_DAYS}).",
    )

    class Meta:
        model = PersonalToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "expires_in_days",
        ]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "expires_at"]
        extra_kwargs = {"revoked_at": {"read_only": True}}


class PersonalTokenListView(AuthAPIView):
    """``GET``: your personal tokens (revoked ones too). ``POST {name[, expires_in_days]}``:
    a new token; the answer's ``key`` is shown this once."""

    permission_classes = [SignedInWithPassword]
    serializer_class = PersonalTokenSerializer

    @extend_schema(
        operation_id="auth_personal_tokens_list",
        responses=PersonalTokenSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        tokens = PersonalToken.objects.filter(user=request.user)
        return Response(PersonalTokenSerializer(tokens, many=True).data)

    @extend_schema(responses={201: PersonalTokenSerializer})
    def post(self, request: Request) -> Response:
        form = PersonalTokenSerializer(data=request.data)
        if not form.is_valid():
            return _invalid(form)
        data = form.validated_data
        try:
            token, key = actions.do_create_personal_token(
                request.user,
                data["name"],
                data.get("expires_in_days", actions.PERSONAL_TOKEN_DEFAULT_DAYS),
            )
        except actions.AccountError as exc:
            return bad_request(str(exc))
        body = dict(PersonalTokenSerializer(token).data)
        body["key"] = key
        return Response(body, status=status.HTTP_201_CREATED)


class PersonalTokenDetailView(AuthAPIView):
    """``GET``: one of your tokens. ``DELETE``: revoke it (refused from now on)."""

    permission_classes = [SignedInWithPassword]
    serializer_class = PersonalTokenSerializer

    def _token(self, request: Request, pk: int) -> PersonalToken | None:
        return PersonalToken.objects.filter(user=request.user, pk=pk).first()

    def get(self, request: Request, pk: int) -> Response:
        token = self._token(request, pk)
        if token is None:
            return _no_such_token()
        return Response(PersonalTokenSerializer(token).data)

    def delete(self, request: Request, pk: int) -> Response:
        token = self._token(request, pk)
        if token is None:
            return _no_such_token()
        actions.do_revoke_personal_token(token)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _no_such_token() -> Response:
    return Response(
        {"detail": "You have no personal token with this id.", "code": "not_found"},
        status=status.HTTP_404_NOT_FOUND,
    )


# --- authenticator app (TOTP) --------------------------------------------------------------


class CodeSerializer(serializers.Serializer):
    otp = serializers.CharField(max_length=16, help_text="The 6-digit code the app shows now.")


class TOTPStatusSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="An authenticator app guards the sign-in.")
    pending_confirmation = serializers.BooleanField(
        help_text="A set-up was started and awaits a code (/api/auth/totp/confirm/)."
    )
    confirmed_at = serializers.DateTimeField(allow_null=True)


class TOTPSetupSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The secret to type into the app (base32).")
    otpauth_uri = serializers.CharField(help_text="The same, as a URI for a QR code.")
    detail = serializers.CharField()


class TOTPView(AuthAPIView):
    """``GET``: whether an authenticator app guards your sign-in. ``POST``: begin setting one
    up: the answer's ``secret`` / ``otpauth_uri`` go into the app (type it or make a QR code
    of the URI), then confirm with a code at ``/api/auth/totp/confirm/``."""

    permission_classes = [SignedInWithPassword]

    @extend_schema(responses=TOTPStatusSerializer)
    def get(self, request: Request) -> Response:
        device = TOTPDevice.objects.filter(user=request.user).first()
        return Response(
            {
                "enabled": bool(device and device.confirmed),
                "pending_confirmation": bool(device and not device.confirmed),
                "confirmed_at": device.confirmed_at if device else None,
            }
        )

    @extend_schema(
        request=None,
        responses={
            201: TOTPSetupSerializer,
            409: OpenApiResponse(description="An authenticator app is already on."),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            device = actions.do_start_totp(request.user)
        except actions.AccountError as exc:
            return Response(
                {"detail": str(exc), "code": "totp_enabled"}, status=status.HTTP_409_CONFLICT
            )
        return Response(
            {
                "secret": device.secret,
                "otpauth_uri": provisioning_uri(device.secret, request.user),
                "detail": "Add this secret to your authenticator app, then send a code it "
                "shows to /api/auth/totp/confirm/ to turn it on.",
            },
            status=status.HTTP_201_CREATED,
        )


class TOTPConfirmView(AuthAPIView):
    """``POST {otp}``: turn on the authenticator app being set up."""

    permission_classes = [SignedInWithPassword]
    serializer_class = CodeSerializer

    def post(self, request: Request) -> Response:
        form = CodeSerializer(data=request.data)
        if not form.is_valid():
            return _invalid(form)
        try:
            actions.do_confirm_totp(request.user, form.validated_data["otp"])
        except actions.AccountError as exc:
            return bad_request(str(exc), code="wrong_otp")
        return Response({"detail": "The authenticator app is on: sign-in now asks for its code."})


class TOTPDisableView(AuthAPIView):
    """``POST {otp}``: turn the authenticator app off, proven with a current code."""

    permission_classes = [SignedInWithPassword]
    serializer_class = CodeSerializer

    def post(self, request: Request) -> Response:
        form = CodeSerializer(data=request.data)
        if not form.is_valid():
            return _invalid(form)
        device = signin.second_factor_of(request.user)
        if device is None:
            return bad_request("No authenticator app is on for this account.", "totp_off")
        if not actions.do_use_totp_code(device, form.validated_data["otp"]):
            return bad_request(
                "That code does not match (or was used already); type the code the app shows now.",
                code="wrong_otp",
            )
        actions.do_disable_totp(request.user)
        return Response(
            {"detail": "The authenticator app is off: sign-in asks only for the password."}
        )


# --- password ------------------------------------------------------------------------------


class PasswordSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=4096, trim_whitespace=False)
    new_password = serializers.CharField(max_length=4096, trim_whitespace=False)


class PasswordView(AuthAPIView):
    """``POST {old_password, new_password}``: change your password (the password validators
    apply). Your API sign-ins end (sign in again); the web session stays signed in."""

    permission_classes = [SignedInWithPassword]
    serializer_class = PasswordSerializer

    def post(self, request: Request) -> Response:
        form = PasswordSerializer(data=request.data)
        if not form.is_valid():
            return _invalid(form)
        data = form.validated_data
        user = request.user
        if not user.check_password(data["old_password"]):
            return bad_request("The current password is wrong.", code="wrong_password")
        try:
            actions.do_set_password(user, data["new_password"])
        except actions.AccountError as exc:
            return bad_request(str(exc), code="password_refused")
        if signed_in_via(request) == "session":
            update_session_auth_hash(request._request, user)
        return Response(
            {
                "detail": "Password changed. Tokens from /api/auth/token/ are revoked; sign in "
                "again with the new password."
            }
        )
