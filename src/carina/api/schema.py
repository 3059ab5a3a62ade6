"""OpenAPI schema generation (drf-spectacular): every operation lists its error answers.

Besides what a view declares, each operation gets the errors every API route can give —
401 (not signed in), 403 (the role does not allow it, or ``X-Carina-Hospital`` names a
hospital the caller does not belong to) — plus 404 on routes with an object in the path and
400 where a body or filters are read. All have the same body: ``{"detail": "…"}``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny  # type: ignore[import-untyped]

from carina.api.serializers.common import ErrorSerializer

UNAUTHORIZED = (
    "Not signed in: send 'Authorization: Bearer <token>' (from /api/auth/token/) or the "
    "session cookie."
)
FORBIDDEN = (
    "Your role in the hospital does not allow this, or the X-Carina-Hospital header names a "
    "hospital you do not belong to."
)
NOT_FOUND = "Not in your hospital (another hospital's objects are answered the same way)."
BAD_REQUEST = "Invalid input; the message names the field."
#: The body of a 400: ``{"detail": "…"}`` or the invalid fields' messages.
VALIDATION_ERRORS: dict[str, Any] = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {},
}
#: Descriptions of success answers that a view leaves without one.
SUCCESS = {
    "200": "The answer.",
    "201": "Created; the body is the new resource.",
    "202": "Accepted; the work goes on in the background.",
    "204": "Done; no body.",
}


class CarinaAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the errors every operation can answer."""

    def _public(self) -> bool:
        classes = getattr(self.view, "permission_classes", [])
        return bool(classes) and all(issubclass(c, AllowAny) for c in classes)

    def _errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        filtered = self.method == "GET" and getattr(self.view, "action", None) == "list"
        if self.method in {"POST", "PUT", "PATCH"} or filtered or self._get_parameters_with_query():
            errors["400"] = BAD_REQUEST
        if not self._public():
            errors["401"] = UNAUTHORIZED
            errors["403"] = FORBIDDEN
        if "{" in self.path:
            errors["404"] = NOT_FOUND
        return errors

    def _get_parameters_with_query(self) -> bool:
        """Whether the operation reads query parameters other than the output format."""
        return any(
            p.get("in") == "query" and p.get("name") != "format" for p in self._get_parameters()
        )

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code, answer in responses.items():
            if not answer.get("description") and code in SUCCESS:
                answer["description"] = SUCCESS[code]
        for code, text in self._errors().items():
            if code not in responses:
                # Invalid input answers {"field": ["message", …]} (DRF's validation errors),
                # or {"detail": "…"}: documented as an object of either.
                body = VALIDATION_ERRORS if code == "400" else ErrorSerializer
                responses[code] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    OpenApiResponse(body, description=text), code, direction=direction
                )
        return responses
