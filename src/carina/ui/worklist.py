"""The worklist's search: the form a user fills in, turned into the shared study filters
(:class:`carina.archive.filters.StudyFilterSet`, the same the REST API uses, so that a search
finds the same studies in both), plus what only the page has: date presets, the study status
and the sortable columns.

The study status (*Receiving*, *Stored*) and its filter are the archive's
(:mod:`carina.archive.status`), the same as ``/api/studies/?status=…``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db.models import Max, QuerySet
from django.utils import timezone

from carina.archive.filters import DATE_FORMATS, StudyFilterSet
from carina.archive.models import Instance, Series, Study
from carina.archive.status import StudyStatus, status_at
from carina.tenancy.models import Hospital
from carina.ui.pagination import DEFAULT_PAGE_SIZE, PAGE_SIZES

PERIODS = [
    ("", "Any date"),
    ("today", "Today"),
    ("yesterday", "Yesterday"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("custom", "Custom range"),
]

STATUSES = [("", "Any status"), *StudyStatus.choices]

#: Modalities offered even before the archive holds one (PS3.3 C.7.3.1.1.1 defined terms).
COMMON_MODALITIES = ("CR", "CT", "DX", "MG", "MR", "NM", "OT", "PT", "SR", "US", "XA")


@dataclass(frozen=True)
class Column:
    """A worklist column: its heading and the ``ordering`` key that sorts by it (if any),
    and the direction a first click sorts in."""

    label: str
    key: str = ""
    descending_first: bool = False


COLUMNS = (
    Column("Patient name", "patient_name"),
    Column("Patient ID", "patient_id"),
    Column("Birth date"),
    Column("Accession", "accession"),
    Column("Study date", "study_date", descending_first=True),
    Column("Modalities", "modalities"),
    Column("Description", "description"),
    Column("Series/Inst.", "instances", descending_first=True),
    Column("Status"),
)

ORDERINGS = frozenset(StudyFilterSet.base_filters["ordering"].orderings)
DEFAULT_ORDERING = "-study_date"


def modality_choices(hospital: Hospital) -> list[tuple[str, str]]:
    """The modalities stored in ``hospital`` and the common ones, sorted."""
    stored = (
        Series.objects.for_hospital(hospital)
        .order_by()
        .values_list("modality", flat=True)
        .distinct()
    )
    names = sorted({m for m in stored if m} | set(COMMON_MODALITIES))
    return [(m, m) for m in names]


class WorklistForm(forms.Form):
    """The worklist's search fields (all optional); ``clean`` works out the date range."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=64,
        help_text="Name, patient ID, accession number or description.",
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    patient_name = forms.CharField(
        label="Patient name",
        required=False,
        max_length=64,
        help_text="Any part of the name; * and ? are wild cards over the whole name.",
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    patient_id = forms.CharField(
        label="Patient ID",
        required=False,
        max_length=64,
        help_text="Exact; * and ? are wild cards.",
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    accession = forms.CharField(
        label="Accession number",
        required=False,
        max_length=16,
        help_text="Exact; * and ? are wild cards.",
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    period = forms.ChoiceField(label="Study date", required=False, choices=PERIODS)
    date_from = forms.DateField(
        label="From",
        required=False,
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label="To",
        required=False,
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    modality = forms.MultipleChoiceField(
        label="Modality", required=False, widget=forms.CheckboxSelectMultiple
    )
    status = forms.ChoiceField(label="Status", required=False, choices=STATUSES)
    ordering = forms.CharField(required=False, widget=forms.HiddenInput)
    size = forms.TypedChoiceField(
        label="Rows per page",
        required=False,
        coerce=int,
        choices=[(n, str(n)) for n in PAGE_SIZES],
        empty_value=None,
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, data: Any = None, *, hospital: Hospital, **kwargs: Any) -> None:
        if data is not None and not data.get("size"):
            data = data.copy()
            data["size"] = str(DEFAULT_PAGE_SIZE)  # shown selected in the page-size list
        super().__init__(data, **kwargs)
        self.fields["modality"].choices = modality_choices(hospital)  # type: ignore[attr-defined]
        self.today = timezone.localdate()

    def clean_ordering(self) -> str:
        value: str = self.cleaned_data.get("ordering") or ""
        if value and value.lstrip("-") not in ORDERINGS:
            raise forms.ValidationError(
                f"Unknown sort column {value!r}; click a column heading to sort."
            )
        return value or DEFAULT_ORDERING

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        period = cleaned.get("period") or ""
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if period in ("", "custom") and (start or end):
            cleaned["period"] = period = "custom"
        if period == "custom" and not (start or end):
            if not (self.has_error("date_from") or self.has_error("date_to")):
                self.add_error("date_from", "Give a start date, an end date or both.")
        elif period and period != "custom":
            cleaned["date_from"], cleaned["date_to"] = self.preset_range(period)
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error(
                "date_to",
                f"The end date ({end:%Y-%m-%d}) is before the start date ({start:%Y-%m-%d}).",
            )
        return cleaned

    def preset_range(self, period: str) -> tuple[dt.date, dt.date]:
        today = self.today
        return {
            "today": (today, today),
            "yesterday": (today - dt.timedelta(days=1), today - dt.timedelta(days=1)),
            "7d": (today - dt.timedelta(days=6), today),
            "30d": (today - dt.timedelta(days=29), today),
        }[period]


def filter_data(cleaned: dict[str, Any]) -> dict[str, str]:
    """The :class:`StudyFilterSet` parameters of a valid form."""
    data = {
        key: str(cleaned.get(key) or "").strip()
        for key in ("q", "patient_name", "patient_id", "accession")
    }
    for key in ("date_from", "date_to"):
        value: dt.date | None = cleaned.get(key)
        data[key] = value.isoformat() if value else ""
    data["status"] = str(cleaned.get("status") or "")
    data["modality"] = ",".join(cleaned.get("modality") or [])
    data["ordering"] = cleaned.get("ordering") or DEFAULT_ORDERING
    return {k: v for k, v in data.items() if v}


def studies(hospital: Hospital, cleaned: dict[str, Any]) -> tuple[QuerySet[Study], list[str]]:
    """The hospital's studies matching a valid form, sorted; and the filter's own errors."""
    base = Study.objects.for_hospital(hospital).select_related("patient")
    filterset = StudyFilterSet(filter_data(cleaned), queryset=base)
    if not filterset.is_valid():
        errors = [f"{field}: {' '.join(msgs)}" for field, msgs in filterset.errors.items()]
        return base.none(), errors
    rows: QuerySet[Study] = filterset.qs
    return rows, []


def status_of(study: Study, now: dt.datetime | None = None) -> str:
    """*Receiving* or *Stored* (:mod:`carina.archive.status`), as shown in the list."""
    return str(status_at(study.updated_at, now).label)


def archive_version(hospital: Hospital) -> str:
    """Changes whenever an object arrives or a study goes: the worklist's poll compares it
    to skip re-drawing an unchanged list (two indexed queries)."""
    latest = Instance.objects.for_hospital(hospital).aggregate(m=Max("received_at"))["m"]
    count = Study.objects.for_hospital(hospital).count()
    return f"{latest.timestamp() if latest else 0:.6f}-{count}"
