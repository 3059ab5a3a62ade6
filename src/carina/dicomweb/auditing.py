"""The audit events of DICOMweb requests (docs/audit.md): one event per request that touches
patient data, recorded by the views through :func:`record`.

Image fetches are the exception: a viewer asks for every frame and thumbnail of a series
one request at a time (OHIF: one ``/frames/1`` per image), which would write hundreds of
events, and one synchronous commit each, per series looked at. :func:`record_viewing`
records the first such request of a user for a study and kind (frames, thumbnails, …) and
then none for the same study and kind for :data:`VIEWING_WINDOW` seconds. The access
itself is never lost: the viewer's metadata request for the series, recorded every time,
comes first, and the coalesced event says which image requests started the viewing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from django.http import HttpRequest

from carina.audit.actions import do_record
from carina.audit.models import Action, ActorKind, ObjectType, Outcome
from carina.dicomweb.endpoint import client_ip

log = logging.getLogger(__name__)

#: Seconds during which further image fetches of the same study and kind by the same user
#: are covered by the first one's event.
VIEWING_WINDOW = 300.0
_MAX_REMEMBERED = 10_000

_recent: OrderedDict[tuple[object, ...], float] = OrderedDict()
_lock = threading.Lock()


def record(
    request: HttpRequest,
    action: Action,
    *,
    object_type: ObjectType | str,
    object_uid: str,
    patient_id: str = "",
    count: int = 0,
    outcome: Outcome = Outcome.SUCCESS,
    detail: str = "",
) -> None:
    """Record one event for ``request`` by the signed-in user, in the request's hospital.

    A failure to record is logged and does not fail the request it describes (the request
    has been answered or is being answered; the log keeps the trace)."""
    try:
        do_record(
            hospital=request.tenant,  # type: ignore[attr-defined]
            actor=request.carina_user.get_username(),  # type: ignore[attr-defined]
            actor_kind=ActorKind.USER,
            action=action,
            object_type=object_type,
            object_uid=object_uid,
            patient_id=patient_id,
            source_ip=client_ip(request),
            outcome=outcome,
            detail=detail,
            count=count,
        )
    except Exception:
        log.exception("the DICOMweb request %s %s could not be recorded", request.method, detail)


def record_viewing(
    request: HttpRequest,
    kind: str,
    *,
    study_uid: str,
    object_type: ObjectType | str,
    object_uid: str,
    patient_id: str | Callable[[], str] = "",
    count: int = 0,
    detail: str = "",
) -> None:
    """Record an image fetch (``kind``: "frames", "thumbnail", …), coalesced per user,
    study and kind over :data:`VIEWING_WINDOW` seconds (module docstring). ``patient_id``
    may be a function, called only when an event is written."""
    key = (
        request.tenant.pk,  # type: ignore[attr-defined]
        request.carina_user.pk,  # type: ignore[attr-defined]
        client_ip(request),
        kind,
        study_uid,
    )
    now = time.monotonic()
    with _lock:
        last = _recent.get(key)
        if last is not None and now - last < VIEWING_WINDOW:
            return
        _recent[key] = now
        _recent.move_to_end(key)
        while len(_recent) > _MAX_REMEMBERED:
            _recent.popitem(last=False)
    note = (
        f"{detail} (further {kind} requests for this study within {VIEWING_WINDOW:.0f} s "
        "are covered by this event)"
    )
    record(
        request,
        Action.WEB_RETRIEVE,
        object_type=object_type,
        object_uid=object_uid,
        patient_id=patient_id() if callable(patient_id) else patient_id,
        count=count,
        detail=note,
    )


def forget_viewings() -> None:
    """Forget the coalescing state (tests)."""
    with _lock:
        _recent.clear()
