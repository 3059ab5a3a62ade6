"""Audit events of the REST API: one per request that reads or changes patient data
(docs/audit.md, docs/api.md "Audit")."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from rest_framework.request import Request  # type: ignore[import-untyped]

from carina.audit.actions import do_record
from carina.audit.models import ActorKind, Outcome

log = logging.getLogger(__name__)


def request_detail(request: Request, note: str = "") -> str:
    """``GET /api/studies/?patient_name=doe`` (and a note), for the event's detail."""
    query = unquote_plus(request.META.get("QUERY_STRING", ""))
    text = f"{request.method} {request.path}" + (f"?{query}" if query else "")
    return f"{text} — {note}" if note else text


def client_ip(request: Request) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def event_fields(request: Request, **fields: Any) -> dict[str, Any]:
    """The fields every API event shares (hospital, actor, source) plus ``fields``."""
    return {
        "hospital": request.tenant,
        "actor": request.user.get_username(),
        "actor_kind": ActorKind.USER,
        "source_ip": client_ip(request),
        "outcome": Outcome.SUCCESS,
        "detail": request_detail(request),
        **fields,
    }


def record(request: Request, **fields: Any) -> None:
    """Record one event for ``request``; a failure to record is logged, never raised (the
    answer has already been computed)."""
    try:
        do_record(**event_fields(request, **fields))
    except Exception:
        log.exception("the API request %s could not be recorded", request_detail(request))
