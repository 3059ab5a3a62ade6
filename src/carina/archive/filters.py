"""Filters of the archive's lists: one django-filter ``FilterSet`` per model, used by the REST
API (``/api/patients/``, ``/api/studies/``, …) and by the web UI, so that a search means the
same on both (docs/api.md, "Filters").

Text values follow two rules:

* **Identifiers** (Patient ID, accession number, Study ID, UIDs) match exactly; with ``*`` or
  ``?`` they are DICOM wild cards (PS3.4 C.2.2.2.4): case-sensitive, as in C-FIND and QIDO-RS.
* **Names and descriptions** (``patient_name``, ``q``) are found anywhere in the value,
  ignoring the case of A–Z (``smith`` finds ``SMITH^JOHN``); with ``*`` or ``?`` the value is
  a wild card pattern over the whole value (``SMITH^J*``), also ignoring the case of A–Z.

Both are built from the query engine's matching functions
(:mod:`carina.archive.query.matching`), so they behave the same on SQLite and PostgreSQL.

The studies' free text (``q``) gives the same results as the name rule applied to the
patient's name and ID, the accession number and the description, but reads one column,
``Study.search_text``, where those four values are kept lowered (A–Z) and delimited: the
value is lowered alike and found with ``LIKE '%…%'`` (``contains``), or with a wild card, as
one regular expression whose ``*`` and ``?`` stay inside one value (docs/ui.md, "Search
speed").

A study's ``status`` (receiving, stored) is defined in :mod:`carina.archive.status`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters as df
from django import forms
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.expressions import OrderBy

from carina.archive.models import (
    SEARCH_SEPARATOR,
    Instance,
    Patient,
    Series,
    Study,
    ascii_lower,
)
from carina.archive.query.matching import wildcard, wildcard_regex
from carina.archive.status import StudyStatus, status_q

#: Dates are given as ISO 8601 (2026-01-31) or as DICOM DA (20260131).
DATE_FORMATS = ["%Y-%m-%d", "%Y%m%d"]

WILDCARDS = frozenset("*?")


def has_wildcards(value: str) -> bool:
    return bool(WILDCARDS & set(value))


def identifier_q(field: str, value: str) -> Q:
    """An identifier: exact, or a case-sensitive DICOM wild card with ``*``/``?``."""
    value = value.strip()
    if has_wildcards(value):
        return wildcard(field, value)
    return Q(**{field: value})


def text_q(field: str, value: str) -> Q:
    """A name or description: contains ``value`` ignoring A–Z case; with ``*``/``?`` the
    pattern must match the whole value (also ignoring A–Z case)."""
    value = value.strip()
    pattern = value if has_wildcards(value) else f"*{value}*"
    if set(pattern) <= {"*"}:
        return Q()
    regex = wildcard_regex(pattern, ascii_case_insensitive=True)
    return Q(**{f"{field}__regex": f"(?s)^{regex}$"})


def search_text_q(value: str) -> Q:
    """Free text over ``Study.search_text``: the same studies as the name rule (:func:`text_q`)
    over each of the values it holds, matched by any of them."""
    value = value.strip()
    if SEARCH_SEPARATOR in value:
        return Q(pk__in=[])  # no stored value holds the separator
    lowered = ascii_lower(value)
    if not has_wildcards(lowered):
        return Q(search_text__contains=lowered) if lowered else Q()
    if set(lowered) <= {"*"}:
        return Q()
    # One whole value between two separators; * and ? never cross one.
    body = wildcard_regex(lowered, any_char=f"[^{SEARCH_SEPARATOR}]")
    return Q(search_text__regex=f"{SEARCH_SEPARATOR}{body}{SEARCH_SEPARATOR}")


def values_of(value: str) -> list[str]:
    """Several values given comma-separated (``modality=CT,MR``)."""
    return [v.strip() for v in value.split(",") if v.strip()]


class NullsLastOrderingFilter(df.OrderingFilter):
    """``ordering=field`` or ``ordering=-field`` (several comma-separated). Rows without a
    value come last in both directions, on SQLite and PostgreSQL alike, and the primary key
    breaks ties so that pages never overlap.

    ``orderings`` maps each name a client may give to the columns it sorts by.
    """

    def __init__(self, *, orderings: dict[str, tuple[str, ...]], **kwargs: Any) -> None:
        self.orderings = orderings
        kwargs.setdefault(
            "help_text", "Sort by: " + ", ".join(orderings) + " (prefix - to reverse)."
        )
        super().__init__(fields={name: name for name in orderings}, **kwargs)

    def order_by(self, params: list[str]) -> list[OrderBy]:
        ordering: list[OrderBy] = []
        descending = False
        for param in params:
            descending = param.startswith("-")
            for column in self.orderings[param.lstrip("-")]:
                expression = F(column)
                ordering.append(
                    expression.desc(nulls_last=True)
                    if descending
                    else expression.asc(nulls_last=True)
                )
        ordering.append(F("pk").desc() if descending else F("pk").asc())
        return ordering

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if not value:
            return qs
        return qs.order_by(*self.order_by(list(value)))


class DateRangeForm(forms.Form):
    """Refuses a range that ends before it starts (the message names both fields)."""

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        start: dt.date | None = cleaned.get("date_from")
        end: dt.date | None = cleaned.get("date_to")
        if start and end and end < start:
            raise forms.ValidationError(
                f"date_to ({end.isoformat()}) is before date_from ({start.isoformat()})."
            )
        return cleaned


class PatientFilterSet(df.FilterSet):
    """Patients of one hospital."""

    patient_id = df.CharFilter(
        method="filter_patient_id", help_text="PatientID: exact, or a wild card (* ?)."
    )
    patient_name = df.CharFilter(
        method="filter_patient_name",
        help_text="PatientName: contains, ignoring case; or a wild card over the whole name "
        "(DOE^J*).",
    )
    birth_date = df.DateFilter(
        field_name="patient_birth_date",
        input_formats=DATE_FORMATS,
        help_text="PatientBirthDate (YYYY-MM-DD or YYYYMMDD).",
    )
    sex = df.CharFilter(field_name="patient_sex", help_text="PatientSex: M, F or O.")
    q = df.CharFilter(method="filter_q", help_text="Free text: in the name or the Patient ID.")
    ordering = NullsLastOrderingFilter(
        orderings={
            "patient_name": ("patient_name",),
            "patient_id": ("patient_id",),
            "birth_date": ("patient_birth_date",),
            "created": ("created_at",),
        }
    )

    class Meta:
        model = Patient
        fields: list[str] = []

    def filter_patient_id(self, qs: QuerySet[Patient], name: str, value: str) -> QuerySet[Patient]:
        return qs.filter(identifier_q("patient_id", value))

    def filter_patient_name(
        self, qs: QuerySet[Patient], name: str, value: str
    ) -> QuerySet[Patient]:
        return qs.filter(text_q("patient_name", value))

    def filter_q(self, qs: QuerySet[Patient], name: str, value: str) -> QuerySet[Patient]:
        return qs.filter(text_q("patient_name", value) | text_q("patient_id", value))


class StudyFilterSet(df.FilterSet):
    """Studies of one hospital: the study search of the API and the UI."""

    patient = df.NumberFilter(
        field_name="patient_id",
        help_text="The patient's id in this API.",
        min_value=1,
        max_value=2**63 - 1,
    )
    patient_id = df.CharFilter(
        method="filter_patient_id", help_text="PatientID: exact, or a wild card (* ?)."
    )
    patient_name = df.CharFilter(
        method="filter_patient_name",
        help_text="PatientName: contains, ignoring case; or a wild card over the whole name "
        "(DOE^J*).",
    )
    study_instance_uid = df.CharFilter(
        method="filter_study_uid", help_text="StudyInstanceUID; several comma-separated."
    )
    accession = df.CharFilter(
        method="filter_accession", help_text="AccessionNumber: exact, or a wild card (* ?)."
    )
    study_id = df.CharFilter(
        method="filter_study_id", help_text="StudyID: exact, or a wild card (* ?)."
    )
    modality = df.CharFilter(
        method="filter_modality",
        help_text="A modality of the study's series (ModalitiesInStudy); several "
        "comma-separated match any.",
    )
    date_from = df.DateFilter(
        field_name="study_date",
        lookup_expr="gte",
        input_formats=DATE_FORMATS,
        help_text="StudyDate on or after (YYYY-MM-DD or YYYYMMDD).",
    )
    date_to = df.DateFilter(
        field_name="study_date",
        lookup_expr="lte",
        input_formats=DATE_FORMATS,
        help_text="StudyDate on or before (YYYY-MM-DD or YYYYMMDD).",
    )
    q = df.CharFilter(
        method="filter_q",
        help_text="Free text, ignoring case: in the patient's name or ID, the accession "
        "number or the study description.",
    )
    status = df.ChoiceFilter(
        method="filter_status",
        choices=StudyStatus.choices,
        help_text="receiving (objects arrived in the last 5 minutes) or stored.",
        error_messages={
            "invalid_choice": "Unknown study status %(value)r: give receiving or stored."
        },
    )
    ordering = NullsLastOrderingFilter(
        orderings={
            "study_date": ("study_date", "study_time"),
            "received": ("received_at",),
            # The patient's name as copied into the study (same order, one index).
            "patient_name": ("sort_patient_name",),
            "patient_id": ("patient__patient_id",),
            "accession": ("accession_number",),
            "description": ("study_description",),
            "modalities": ("modalities_in_study",),
            "instances": ("number_of_instances",),
            "size": ("size_bytes",),
        }
    )

    class Meta:
        model = Study
        fields: list[str] = []
        form = DateRangeForm

    def filter_patient_id(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(identifier_q("patient__patient_id", value))

    def filter_patient_name(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(text_q("patient__patient_name", value))

    def filter_study_uid(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(study_instance_uid__in=values_of(value))

    def filter_accession(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(identifier_q("accession_number", value))

    def filter_study_id(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(identifier_q("study_id", value))

    def filter_modality(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        # As the query engine matches ModalitiesInStudy: against the study's series.
        wanted = values_of(value)
        series = Series.unscoped.filter(study=OuterRef("pk"), modality__in=wanted)
        return qs.filter(Exists(series))

    def filter_q(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        # As a subquery: the search scans the (hospital, search_text) index alone, and the
        # page is then sorted; a plain WHERE lets SQLite walk the sort's index instead,
        # reading every row of the table when few match (docs/ui.md, "Search speed").
        condition = search_text_q(value)
        if not condition:
            return qs
        return qs.filter(pk__in=Study.unscoped.filter(condition).values("pk"))

    def filter_status(self, qs: QuerySet[Study], name: str, value: str) -> QuerySet[Study]:
        return qs.filter(status_q(value))


class SeriesFilterSet(df.FilterSet):
    """Series of one hospital."""

    study = df.CharFilter(
        field_name="study__study_instance_uid", help_text="The StudyInstanceUID they belong to."
    )
    modality = df.CharFilter(
        method="filter_modality", help_text="Modality; several comma-separated match any."
    )
    body_part = df.CharFilter(field_name="body_part_examined", help_text="BodyPartExamined, exact.")
    description = df.CharFilter(
        method="filter_description", help_text="SeriesDescription: contains, ignoring case."
    )
    ordering = NullsLastOrderingFilter(
        orderings={
            "series_number": ("series_number",),
            "modality": ("modality",),
            "received": ("received_at",),
            "instances": ("number_of_instances",),
        }
    )

    class Meta:
        model = Series
        fields: list[str] = []

    def filter_modality(self, qs: QuerySet[Series], name: str, value: str) -> QuerySet[Series]:
        return qs.filter(modality__in=values_of(value))

    def filter_description(self, qs: QuerySet[Series], name: str, value: str) -> QuerySet[Series]:
        return qs.filter(text_q("series_description", value))


class InstanceFilterSet(df.FilterSet):
    """Instances of one hospital."""

    study = df.CharFilter(
        field_name="series__study__study_instance_uid",
        help_text="The StudyInstanceUID they belong to.",
    )
    series = df.CharFilter(
        field_name="series__series_instance_uid",
        help_text="The SeriesInstanceUID they belong to.",
    )
    sop_class_uid = df.CharFilter(field_name="sop_class_uid", help_text="SOPClassUID, exact.")
    ordering = NullsLastOrderingFilter(
        orderings={
            "instance_number": ("instance_number",),
            "received": ("received_at",),
            "size": ("size_bytes",),
        }
    )

    class Meta:
        model = Instance
        fields: list[str] = []


__all__ = [
    "InstanceFilterSet",
    "NullsLastOrderingFilter",
    "PatientFilterSet",
    "SeriesFilterSet",
    "StudyFilterSet",
    "identifier_q",
    "search_text_q",
    "text_q",
]
