"""OpenAPI schema generation (drf-spectacular): every operation lists its error answers.

Besides what a view declares, each operation gets the errors any API route can give:

* 400 everywhere: a NUL character in the path, query, headers or body is refused before any
  view reads the request (``carina.ops.limits.RejectNulMiddleware``, whose body is
  ``{"error": "…", "status": 400}``); where a body or filters are read, also invalid input
  (``{"detail": "…"}`` or the invalid fields' messages);
* 401 (not signed in) and 403 (the role does not allow it, or ``X-Carina-Hospital`` names a
  hospital the caller does not belong to), except on public routes;
* 404 on routes with an object in the path;
* 413 (body over its limit, ``carina.ops.limits``) and 415 (a body type the route does not
  read) where a body is sent;
* 429 (too many requests, with ``Retry-After``) on throttled routes (``carina.ops.throttling``).

Where a view declares its own body for one of these codes, the shared body is added to it as
an alternative (``anyOf``): a view's 400 may still be the NUL refusal, an upload's 415 may be
the parser's refusal rather than the upload's report.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers  # type: ignore[import-untyped]
from rest_framework.permissions import AllowAny  # type: ignore[import-untyped]

from carina.api.serializers.common import (
    ErrorSerializer,
    RequestRefusedSerializer,
    TooLargeSerializer,
)

UNAUTHORIZED = (
    "Not signed in: send 'Authorization: Bearer <token>' (from /api/auth/token/) or the "
    "session cookie."
)
FORBIDDEN = (
    "Your role in the hospital does not allow this, or the X-Carina-Hospital header names a "
    "hospital you do not belong to."
)
NOT_FOUND = "Not in your hospital (another hospital's objects are answered the same way)."
NUL_REFUSED = (
    "The path, query, headers or body hold a NUL character (%00 or \\u0000), which no "
    "identifier, search value or field may contain."
)
#: Added to the description of a 400 that may also be the NUL refusal.
ALSO_NUL = "Or the request holds a NUL character (%00 or \\u0000), refused before it is read."
BAD_REQUEST = f"Invalid input; the message names the field. {ALSO_NUL}"
TOO_LARGE = "The body is over its limit (docs/api.md, Limits); `limit_bytes` says how far."
UNSUPPORTED = "The body's Content-Type is not one this route reads (JSON, form data)."
TOO_MANY = "Too many requests: wait the seconds of Retry-After (docs/api.md, Limits)."
#: The body of a 400 where input is read: ``{"detail": "…"}``, the invalid fields'
#: messages, or the NUL refusal — an object of any of these.
VALIDATION_ERRORS: dict[str, Any] = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {},
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before the next request.",
        "schema": {"type": "integer"},
    }
}
#: Descriptions of success answers that a view leaves without one.
SUCCESS = {
    "200": "The answer.",
    "201": "Created; the body is the new resource.",
    "202": "Accepted; the work goes on in the background.",
    "204": "Done; no body.",
}
BODY_METHODS = {"POST", "PUT", "PATCH"}


class CarinaAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the errors every operation can answer."""

    def _public(self) -> bool:
        classes = getattr(self.view, "permission_classes", [])
        return bool(classes) and all(issubclass(c, AllowAny) for c in classes)

    def _reads_input(self) -> bool:
        listed = self.method == "GET" and getattr(self.view, "action", None) == "list"
        return self.method in BODY_METHODS or listed or self._get_parameters_with_query()

    def _ref(self, serializer: type[serializers.Serializer]) -> dict[str, Any]:
        component = self.resolve_serializer(serializer(), "response")
        ref: dict[str, Any] = component.ref
        return ref

    def _errors(self) -> dict[str, OpenApiResponse]:
        """The shared errors of this operation: status code → answer."""
        error = self._ref(ErrorSerializer)
        refused = self._ref(RequestRefusedSerializer)
        errors: dict[str, OpenApiResponse] = {}
        if self._reads_input():
            errors["400"] = OpenApiResponse(VALIDATION_ERRORS, description=BAD_REQUEST)
        else:
            errors["400"] = OpenApiResponse({"anyOf": [error, refused]}, description=NUL_REFUSED)
        if not self._public():
            errors["401"] = OpenApiResponse(error, description=UNAUTHORIZED)
            errors["403"] = OpenApiResponse(error, description=FORBIDDEN)
        if "{" in self.path:
            errors["404"] = OpenApiResponse(error, description=NOT_FOUND)
        if self.method in BODY_METHODS:
            errors["413"] = OpenApiResponse(self._ref(TooLargeSerializer), description=TOO_LARGE)
            errors["415"] = OpenApiResponse(error, description=UNSUPPORTED)
        if getattr(self.view, "throttle_classes", None):
            errors["429"] = OpenApiResponse(error, description=TOO_MANY)
        return errors

    def _alternative(self, code: str) -> dict[str, Any] | None:
        """The shared body that may answer ``code`` besides the one a view declares."""
        if code == "400":
            return self._ref(RequestRefusedSerializer)
        if code in {"413", "415", "429"}:
            return self._ref(ErrorSerializer)
        return None

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
        for code, shared in self._errors().items():
            if code in responses:
                self._add_alternative(code, responses[code])
                continue
            responses[code] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                shared, code, direction=direction
            )
            if code == "429":
                responses[code]["headers"] = dict(RETRY_AFTER)
        return responses

    def _add_alternative(self, code: str, answer: dict[str, Any]) -> None:
        alternative = self._alternative(code)
        if alternative is None:
            return
        added = False
        for content in answer.get("content", {}).values():
            declared = content.get("schema")
            if declared is None or declared in (alternative, VALIDATION_ERRORS):
                continue
            content["schema"] = {"anyOf": [declared, alternative]}
            added = True
        if added and code == "400":
            answer["description"] = f"{answer.get('description', '')} {ALSO_NUL}"
