"""A study's status, one definition for the REST API (``/api/studies/?status=…``) and the
web worklist (its Status column and filter).

Carina has no reading workflow yet, so a study's status says where it is in arriving:

* **receiving** — an object of it arrived (or left) within :data:`RECEIVING_WINDOW`: more may
  still come (a modality sends a study over minutes);
* **stored** — nothing changed for longer: the study is complete as far as Carina knows.

Both are read from ``Study.updated_at``, which the ingest pipeline sets whenever it counts an
object into the study, so the status costs no query of its own. A reading status (unread,
reported) comes with reports.
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q
from django.utils import timezone

#: A study with objects arriving within this window is *receiving*.
RECEIVING_WINDOW = dt.timedelta(minutes=5)


class StudyStatus(models.TextChoices):
    RECEIVING = "receiving", "Receiving"
    STORED = "stored", "Stored"


def receiving_since(now: dt.datetime | None = None) -> dt.datetime:
    """The oldest ``updated_at`` of a study still *receiving* at ``now``."""
    return (now or timezone.now()) - RECEIVING_WINDOW


def status_q(status: str, now: dt.datetime | None = None) -> Q:
    """The studies in ``status`` (``receiving`` or ``stored``); ``ValueError`` for another
    value."""
    since = receiving_since(now)
    if status == StudyStatus.RECEIVING:
        return Q(updated_at__gte=since)
    if status == StudyStatus.STORED:
        return Q(updated_at__lt=since)
    raise ValueError(f"unknown study status {status!r}")


def status_at(updated_at: dt.datetime, now: dt.datetime | None = None) -> StudyStatus:
    """The status of a study last changed at ``updated_at``."""
    if updated_at >= receiving_since(now):
        return StudyStatus.RECEIVING
    return StudyStatus.STORED


__all__ = ["RECEIVING_WINDOW", "StudyStatus", "receiving_since", "status_at", "status_q"]
