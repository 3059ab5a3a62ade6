"""stow (placeholder until implemented)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase

from carina.dicomweb.endpoint import dicomweb_view
from carina.dicomweb.errors import DicomwebError


@dicomweb_view(("POST",))
def store(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
    raise DicomwebError("Not implemented yet.", 501)
