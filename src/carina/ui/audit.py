"""Audit events of the web application: one per page that shows or changes patient data,
recorded like the REST API's (docs/audit.md): a search is a ``dicomweb.query``, the tags of an
instance a ``dicomweb.retrieve``, a delete a ``dicomweb.delete`` (written in the delete's own
transaction). The detail names the page (``UI GET /?q=doe``)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from django.http import HttpRequest

from carina.audit.actions import do_record
from carina.audit.models import ActorKind, Outcome

log = logging.getLogger(__name__)


def request_detail(request: HttpRequest, note: str = "") -> str:
    query = unquote_plus(request.META.get("QUERY_STRING", ""))
    text = f"UI {request.method} {request.path}" + (f"?{query}" if query else "")
    return f"{text} — {note}" if note else text


def event_fields(request: HttpRequest, **fields: Any) -> dict[str, Any]:
    """The fields every UI event shares (hospital, actor, source) plus ``fields``."""
    return {
        "hospital": getattr(request, "tenant", None),
        "actor": request.user.get_username(),
        "actor_kind": ActorKind.USER,
        "source_ip": str(request.META.get("REMOTE_ADDR", "")),
        "outcome": Outcome.SUCCESS,
        "detail": request_detail(request),
        **fields,
    }


def record(request: HttpRequest, **fields: Any) -> None:
    """Record one event for ``request``; a failure to record is logged, never raised (the
    page is already computed)."""
    try:
        do_record(**event_fields(request, **fields))
    except Exception:
        log.exception("the page %s could not be recorded", request_detail(request))
