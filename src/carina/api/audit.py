"""Audit events of the REST API: one per request that reads or changes patient data
(docs/audit.md, docs/api.md "Audit").

Events are recorded with the REST API's own actions (``api.query``, ``api.retrieve``,
``api.store``, ``api.delete``, ``api.change``); a view may name the DICOMweb action of the same
kind (``dicomweb.query`` …), which is recorded as its ``api.*`` counterpart. The event carries
the request's ``X-Request-ID`` as its correlation ID, also when it is recorded after the
answer was streamed (a ZIP download).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from rest_framework.request import Request  # type: ignore[import-untyped]

from carina.audit.actions import do_record
from carina.audit.models import Action, ActorKind, Outcome
from carina.core.request_id import current_request_id

log = logging.getLogger(__name__)

#: The REST API's action for each kind of access.
API_ACTIONS: dict[str, Action] = {
    Action.WEB_QUERY: Action.API_QUERY,
    Action.WEB_RETRIEVE: Action.API_RETRIEVE,
    Action.WEB_STORE: Action.API_STORE,
    Action.WEB_DELETE: Action.API_DELETE,
}


def api_action(action: str) -> str:
    """``action`` as the REST API records it (``dicomweb.query`` → ``api.query``)."""
    return API_ACTIONS.get(action, action)


def request_detail(request: Request, note: str = "") -> str:
    """``GET /api/studies/?patient_name=doe`` (and a note), for the event's detail."""
    query = unquote_plus(request.META.get("QUERY_STRING", ""))
    text = f"{request.method} {request.path}" + (f"?{query}" if query else "")
    return f"{text} — {note}" if note else text


def client_ip(request: Request) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def event_fields(request: Request, **fields: Any) -> dict[str, Any]:
    """The fields every API event shares (hospital, actor, source, correlation ID) plus
    ``fields``; the action is the REST API's (:func:`api_action`)."""
    merged: dict[str, Any] = {
        "hospital": request.tenant,
        "actor": request.user.get_username(),
        "actor_kind": ActorKind.USER,
        "source_ip": client_ip(request),
        "outcome": Outcome.SUCCESS,
        "detail": request_detail(request),
        "correlation_id": getattr(request, "request_id", "") or current_request_id(),
        **fields,
    }
    if "action" in merged:
        merged["action"] = api_action(merged["action"])
    return merged


def record(request: Request, **fields: Any) -> None:
    """Record one event for ``request``; a failure to record is logged, never raised (the
    answer has already been computed)."""
    try:
        do_record(**event_fields(request, **fields))
    except Exception:
        log.exception("the API request %s could not be recorded", request_detail(request))
