"""How the OpenAPI schema (drf-spectacular, ``/api/schema/``) describes Carina's ways to
sign in (:mod:`carina.accounts.drf`). Imported by ``carina.api``'s app config: an extension
is registered when its class is defined."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PersonalTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "carina.accounts.drf.PersonalTokenAuthentication"
    name = "personalToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token made at /api/auth/personal-tokens/: "
            "`Authorization: Bearer carina_…` (or `Token carina_…`).",
        }


class JWTScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "carina.accounts.drf.JWTAuthentication"
    name = "jwt"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The access token of POST /api/auth/token/ "
            "(`Authorization: Bearer <access>`), valid 15 minutes; renew it at "
            "/api/auth/token/refresh/.",
        }


class BasicScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "carina.accounts.drf.BasicAuthentication"
    name = "basic"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "User name and password, only when the server sets "
            "CARINA_HTTP_BASIC=true (for DICOM tools that know nothing else).",
        }
