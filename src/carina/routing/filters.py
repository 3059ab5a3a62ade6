"""The transfer log's filters (one FilterSet for the API and the UI, docs/routing.md): status,
destination, who asked, when, and the patient, with the archive's text rules (a name is found
anywhere in the value ignoring case, ``*``/``?`` are wild cards)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters as df
from django import forms
from django.db.models import QuerySet

from carina.archive.filters import DATE_FORMATS, identifier_q, text_q
from carina.routing.models import Origin, Transfer, TransferStatus


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


class TransferFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(
        choices=TransferStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    destination = df.NumberFilter(
        field_name="destination_id",
        help_text="Destination node ID.",
        min_value=1,
        max_value=2**31 - 1,
    )
    destination_name = df.CharFilter(method="filter_destination_name", help_text="Node name.")
    user = df.CharFilter(method="filter_user", help_text="Who asked: a user name, or 'rule NAME'.")
    origin = df.ChoiceFilter(choices=Origin.choices)
    rule = df.NumberFilter(field_name="rule_id", min_value=1, max_value=2**31 - 1)
    created_after = df.DateFilter(
        method="filter_after",
        input_formats=DATE_FORMATS,
        widget=forms.DateInput,
        help_text="Asked for on or after this day (2026-01-31 or 20260131).",
    )
    created_before = df.DateFilter(
        method="filter_before",
        input_formats=DATE_FORMATS,
        widget=forms.DateInput,
        help_text="Asked for on or before this day.",
    )
    patient_id = df.CharFilter(method="filter_patient_id", help_text="Patient ID (wild cards).")
    patient_name = df.CharFilter(method="filter_patient_name", help_text="Part of the name.")
    study_instance_uid = df.CharFilter(field_name="study_instance_uid")

    class Meta:
        model = Transfer
        fields: list[str] = []

    def filter_destination_name(self, queryset: QuerySet[Any], name: str, value: str) -> Any:
        return queryset.filter(text_q("destination_name", value))

    def filter_user(self, queryset: QuerySet[Any], name: str, value: str) -> Any:
        return queryset.filter(requested_by_name__iexact=value.strip())

    def filter_after(self, queryset: QuerySet[Any], name: str, value: dt.date) -> Any:
        return queryset.filter(created_at__gte=_day_start(value))

    def filter_before(self, queryset: QuerySet[Any], name: str, value: dt.date) -> Any:
        return queryset.filter(created_at__lt=_day_start(value + dt.timedelta(days=1)))

    def filter_patient_id(self, queryset: QuerySet[Any], name: str, value: str) -> Any:
        return queryset.filter(identifier_q("patient_id", value))

    def filter_patient_name(self, queryset: QuerySet[Any], name: str, value: str) -> Any:
        return queryset.filter(text_q("patient_name", value))
