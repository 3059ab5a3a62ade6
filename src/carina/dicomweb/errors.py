"""Errors of the DICOMweb adapter and their HTTP answers (PS3.18 8.6.1: a status code, and
here a JSON body with a sentence a person can act on)."""

from __future__ import annotations

from django.http import JsonResponse


class DicomwebError(Exception):
    """A request Carina answers with ``status`` and ``message``."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFoundError(DicomwebError):
    """The resource does not exist in the caller's hospital (another hospital's objects
    answer the same way)."""

    status = 404


class NotAcceptableError(DicomwebError):
    """None of the media types or transfer syntaxes the client accepts can be produced."""

    status = 406


class ForbiddenError(DicomwebError):
    status = 403


def error_response(status: int, message: str, **extra: object) -> JsonResponse:
    """The JSON body every DICOMweb error carries: ``{"error": message, "status": status}``."""
    return JsonResponse({"error": message, "status": status, **extra}, status=status)
