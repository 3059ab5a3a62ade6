"""Serializers shared by several resources."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers  # type: ignore[import-untyped]
from rest_framework.reverse import reverse  # type: ignore[import-untyped]


class ErrorSerializer(serializers.Serializer):
    """Every error answer: a sentence a person can act on."""

    detail = serializers.CharField(help_text="What went wrong, and what to do about it.")


class TooLargeSerializer(serializers.Serializer):
    """413: the body is over its limit (``carina.ops.limits``)."""

    detail = serializers.CharField(help_text="The size sent, the limit, and what to do instead.")
    limit_bytes = serializers.IntegerField(
        required=False, help_text="The limit, in bytes, when it is one number."
    )


class RequestRefusedSerializer(serializers.Serializer):
    """400 before any view reads the request: its path, query, headers or body hold a NUL
    character (``carina.ops.limits.RejectNulMiddleware``; DICOMweb's error body)."""

    error = serializers.CharField(help_text="What went wrong.")
    status = serializers.IntegerField(help_text="The HTTP status, 400.")


@extend_schema_field(OpenApiTypes.URI)
class LinkField(serializers.Field):
    """An absolute link to an API route named ``view_name`` with the object's ``attribute``
    as the route's ``uid`` (or ``pk``) argument."""

    def __init__(self, view_name: str, attribute: str, kwarg: str = "uid", **kwargs: Any) -> None:
        self.view_name = view_name
        self.attribute = attribute
        self.kwarg = kwarg
        kwargs["read_only"] = True
        kwargs["source"] = "*"
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str:
        key = value
        for part in self.attribute.split("."):
            key = getattr(key, part)
        return str(
            reverse(
                f"api:{self.view_name}",
                kwargs={self.kwarg: key},
                request=self.context.get("request"),
            )
        )
