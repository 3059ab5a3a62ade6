"""Filters of the audit trail: one django-filter ``FilterSet`` for ``/api/audit/``, its CSV
export and the web UI's audit page (docs/audit.md, "Reading the trail").

Every filter narrows what the caller may see (:func:`carina.audit.visibility.visible_events`);
none widens it. Identifiers match exactly (``patient_id`` also takes DICOM wild cards, as in
the archive's filters); ``action`` and ``outcome`` take several comma-separated values, and
``action`` a family (``dicom.*``, ``api.*``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters as df
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from carina.archive.filters import identifier_q, values_of
from carina.audit.models import Action, ActorKind, AuditEvent, ObjectType, Outcome

#: Dates as ISO 8601 (2026-01-31) or DICOM DA (20260131); or an ISO 8601 date and time.
DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")


class Moment:
    """A point in time given by a client: a whole day (a date) or an instant."""

    def __init__(self, start: dt.datetime, whole_day: bool) -> None:
        self.start = start
        self.whole_day = whole_day

    @property
    def end(self) -> dt.datetime:
        """The first instant after it (the next midnight for a day)."""
        return self.start + (dt.timedelta(days=1) if self.whole_day else dt.timedelta(0))

    def __str__(self) -> str:
        return self.start.date().isoformat() if self.whole_day else self.start.isoformat()


class MomentField(forms.CharField):
    """A date (``2026-11-20``, ``20261120``: the whole day, UTC) or an ISO 8601 date and
    time (``2026-11-20T14:30:00Z``; without an offset, UTC)."""

    def to_python(self, value: Any) -> Moment | None:  # type: ignore[override]
        text = str(super().to_python(value) or "").strip()
        if not text:
            return None
        for fmt in DATE_FORMATS:
            try:
                day = dt.datetime.strptime(text, fmt)
            except ValueError:
                continue
            return Moment(day.replace(tzinfo=dt.UTC), whole_day=True)
        try:
            instant = dt.datetime.fromisoformat(text)
        except ValueError:
            raise forms.ValidationError(
                f"{text!r} is not a date or time: give 2026-11-20, 20261120 or "
                "2026-11-20T14:30:00Z."
            ) from None
        if timezone.is_naive(instant):
            instant = instant.replace(tzinfo=dt.UTC)
        offset = instant.utcoffset() or dt.timedelta(0)
        if abs(offset) >= dt.timedelta(hours=16):
            # PostgreSQL refuses offsets beyond ±15:59; no time zone is that far from UTC.
            raise forms.ValidationError(
                f"{text!r}: a UTC offset must lie between -15:59 and +15:59."
            )
        return Moment(instant.astimezone(dt.UTC), whole_day=False)


class MomentFilter(df.Filter):
    """``lookup_expr="gte"``: on or after the moment; ``"lte"``: on or before it (a date
    includes its whole day)."""

    field_class = MomentField

    def filter(self, qs: QuerySet[Any], value: Moment | None) -> QuerySet[Any]:
        if value is None:
            return qs
        if self.lookup_expr == "gte":
            return qs.filter(**{f"{self.field_name}__gte": value.start})
        if value.whole_day:
            return qs.filter(**{f"{self.field_name}__lt": value.end})
        return qs.filter(**{f"{self.field_name}__lte": value.start})


class ChoiceListField(forms.CharField):
    """Several known values, comma-separated; ``family.*`` stands for every value that
    starts with ``family.`` (for actions)."""

    def __init__(self, *, known: list[str], **kwargs: Any) -> None:
        self.known = known
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        wanted = values_of(str(super().to_python(value) or ""))
        unknown = [
            v
            for v in wanted
            if v not in self.known
            and not (v.endswith(".*") and any(k.startswith(v[:-1]) for k in self.known))
        ]
        if unknown:
            raise forms.ValidationError(
                f"Unknown value(s) {', '.join(unknown)}; known: {', '.join(self.known)}."
            )
        return wanted


class ChoiceListFilter(df.Filter):
    field_class = ChoiceListField

    def filter(self, qs: QuerySet[Any], value: list[str] | None) -> QuerySet[Any]:
        if not value:
            return qs
        match = Q()
        for wanted in value:
            if wanted.endswith(".*"):
                match |= Q(**{f"{self.field_name}__startswith": wanted[:-1]})
            else:
                match |= Q(**{self.field_name: wanted})
        return qs.filter(match)


class AuditFilterForm(forms.Form):
    """Refuses a range that ends before it starts."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        start: Moment | None = cleaned.get("date_from")
        end: Moment | None = cleaned.get("date_to")
        if start and end and end.end < start.start:
            raise forms.ValidationError(f"date_to ({end}) is before date_from ({start}).")
        return cleaned


class AuditEventFilterSet(df.FilterSet):
    """The audit events a caller may see, narrowed."""

    actor = df.CharFilter(
        help_text="Who acted, exactly: a user name, a calling AE title or an OS user."
    )
    actor_kind = df.ChoiceFilter(choices=ActorKind.choices, help_text="The kind of actor.")
    action = ChoiceListFilter(
        known=list(Action.values),
        help_text="What was done: one or more actions comma-separated (api.query,api.delete), "
        "or a family (dicom.*, dicomweb.*, api.*).",
    )
    outcome = ChoiceListFilter(
        known=list(Outcome.values),
        help_text="success, partial, failure; several comma-separated (partial,failure).",
    )
    object_type = df.ChoiceFilter(
        choices=[c for c in ObjectType.choices if c[0]],
        help_text="The kind of object: patient, study, series, instance.",
    )
    object_uid = df.CharFilter(help_text="The object's UID, exactly.")
    patient_id = df.CharFilter(
        method="filter_patient_id", help_text="PatientID: exact, or a wild card (* ?)."
    )
    source_ip = df.CharFilter(help_text="The caller's IP address, exactly.")
    source_ae = df.CharFilter(help_text="The calling AE title, exactly.")
    destination_ae = df.CharFilter(help_text="The C-MOVE destination AE title, exactly.")
    correlation_id = df.CharFilter(
        help_text="The X-Request-ID of the request (or the DICOM association's ID) that "
        "caused the events."
    )
    hospital = df.CharFilter(
        field_name="hospital__slug",
        help_text="A hospital's slug (system administrators see every hospital's events).",
    )
    date_from = MomentFilter(
        field_name="occurred_at",
        lookup_expr="gte",
        help_text="On or after: a date (2026-11-20, whole day, UTC) or a time "
        "(2026-11-20T14:30:00Z).",
    )
    date_to = MomentFilter(
        field_name="occurred_at",
        lookup_expr="lte",
        help_text="On or before: a date (the whole day, UTC) or a time.",
    )
    q = df.CharFilter(method="filter_q", help_text="Text in the detail, ignoring case.")
    ordering = df.ChoiceFilter(
        choices=[("occurred_at", "oldest first"), ("-occurred_at", "newest first")],
        method="filter_ordering",
        help_text="occurred_at (oldest first) or -occurred_at (newest first, the default).",
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []
        form = AuditFilterForm

    def filter_patient_id(
        self, qs: QuerySet[AuditEvent], name: str, value: str
    ) -> QuerySet[AuditEvent]:
        return qs.filter(identifier_q("patient_id", value))

    def filter_q(self, qs: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        return qs.filter(detail__icontains=value.strip()) if value.strip() else qs

    def filter_ordering(
        self, qs: QuerySet[AuditEvent], name: str, value: str
    ) -> QuerySet[AuditEvent]:
        return qs.order_by("occurred_at", "id") if value == "occurred_at" else qs
