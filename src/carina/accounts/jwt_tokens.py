"""JSON Web Tokens of ``/api/auth/token/`` (SimpleJWT, HS256 with the secret key): checking
them and saying why one is refused.

Every token of one sign-in carries the sign-in's id (claim ``sid``, an
:class:`~carina.accounts.models.ApiSignIn`), so that logout ends the access tokens as well as
the refresh token. Issuing, rotating and revoking are in :mod:`carina.accounts.actions`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from carina.accounts.errors import CredentialsError
from carina.accounts.models import ApiSignIn

#: The claim naming the sign-in (:class:`ApiSignIn`) a token belongs to.
SID_CLAIM = "sid"

_EXPIRED = {
    "access": "The access token has expired; get a new one at /api/auth/token/refresh/ "
    "(or sign in again at /api/auth/token/).",
    "refresh": "The refresh token has expired; sign in again at /api/auth/token/.",
}
_REFUSED_USER = {
    "password_changed": "The password of this account was changed after the token was "
    "issued; sign in again at /api/auth/token/.",
    "user_inactive": "This account is deactivated.",
    "user_not_found": "The account of this token no longer exists.",
}


def decode_signed(raw: str, token_type: str) -> dict[str, Any]:
    """The claims of ``raw`` once its signature and expiry are checked and it is a
    ``token_type`` token ("access" or "refresh"); else :class:`CredentialsError`."""
    try:
        payload: dict[str, Any] = token_backend.decode(raw, verify=True)  # type: ignore[arg-type]
    except TokenBackendExpiredToken:
        raise CredentialsError(_EXPIRED[token_type], code="token_expired") from None
    except TokenBackendError:
        raise CredentialsError(
            f"The {token_type} token is not valid or has expired: this one is damaged or was "
            "not issued by this server. Sign in at /api/auth/token/ to get a new one.",
            code="token_not_valid",
        ) from None
    if payload.get("token_type") != token_type or "jti" not in payload:
        raise CredentialsError(
            f"This is not a {token_type} token: send the '{token_type}' value that "
            "/api/auth/token/ answered.",
            code="token_not_valid",
        )
    return payload


def refresh_is_blacklisted(payload: dict[str, Any]) -> bool:
    """Whether the refresh token of ``payload`` was used (rotated) or given back already."""
    return BlacklistedToken._default_manager.filter(token__jti=payload["jti"]).exists()


def user_for_access_token(raw: str) -> tuple[Any, AccessToken]:
    """The user of a JWT access token, and the token; :class:`CredentialsError` when it is
    expired, forged, of an ended sign-in, or of an account that cannot sign in now.

    The account and the sign-in are read in one query (this runs on every request of a
    program or of OHIF); the checks are SimpleJWT's own (active account, password unchanged
    since the token was issued) plus the sign-in's."""
    payload = decode_signed(raw, "access")
    # The signature was checked just above.
    token = AccessToken(raw, verify=False)  # type: ignore[arg-type]
    user_id = payload.get(jwt_settings.USER_ID_CLAIM)
    sid = payload.get(SID_CLAIM)
    sign_in = (
        ApiSignIn.objects.select_related("user")
        .filter(pk=sid, **{f"user__{jwt_settings.USER_ID_FIELD}": user_id})
        .first()
        if sid and user_id is not None
        else None
    )
    user = sign_in.user if sign_in is not None else None
    if user is None and user_id is not None and not _user_exists(user_id):
        code = "user_not_found"
    elif user is not None and not user.is_active:
        code = "user_inactive"
    elif user is not None and payload.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(
        user.password
    ):
        code = "password_changed"
    elif sign_in is None or sign_in.revoked_at is not None:
        raise CredentialsError(
            "This sign-in was ended (signed out, password changed, a refresh token used "
            "twice, or revoked by an administrator); sign in again at /api/auth/token/.",
            code="token_revoked",
        )
    else:
        return user, token
    raise CredentialsError(_REFUSED_USER[code], code=code)


def _user_exists(user_id: Any) -> bool:
    model = get_user_model()
    return bool(model._default_manager.filter(**{jwt_settings.USER_ID_FIELD: user_id}).exists())
