"""Parsing a key's raw value into what it asks for (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from carina.archive.query.errors import InvalidValueError
from carina.archive.query.values import (
    AnyOf,
    DateRange,
    DateTimeRange,
    EmptyValue,
    Exact,
    Kind,
    PersonName,
    TimeRange,
    Universal,
    Wildcard,
    combine,
    parse,
)

D = dt.date
T = dt.time


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (Kind.TEXT, "", Universal()),
        (Kind.TEXT, "  ", Universal()),
        (Kind.TEXT, "*", Universal()),
        (Kind.TEXT, "**", Universal()),
        (Kind.TEXT, "CT", Exact(("CT",))),
        (Kind.TEXT, " CT ", Exact(("CT",))),
        (Kind.TEXT, "C*", Wildcard("C*")),
        (Kind.TEXT, "C?", Wildcard("C?")),
        (Kind.TEXT, "100%", Exact(("100%",))),
        (Kind.TEXT, "A_B", Exact(("A_B",))),
        (Kind.TEXT, "CT\\MR", Exact(("CT", "MR"))),
        (Kind.TEXT, "CT\\M*", AnyOf((Exact(("CT",)), Wildcard("M*")))),
        (Kind.TEXT, "CT\\*", Universal()),
        (Kind.TEXT, '""', Exact(('""',))),
        (Kind.UID, "1.2.3", Exact(("1.2.3",))),
        (Kind.UID, "1.2.3\\1.2.4\\1.2.3", Exact(("1.2.3", "1.2.4"))),
        (Kind.UID, "*", Universal()),
        (Kind.PERSON_NAME, "SMITH*", PersonName("SMITH*")),
        (Kind.PERSON_NAME, "*^*", Universal()),
        (Kind.PERSON_NAME, "^", Universal()),
        (Kind.NUMBER, "7", Exact((7,))),
        (Kind.NUMBER, "1\\3", Exact((1, 3))),
        (Kind.DATE, "20261120", DateRange(D(2026, 11, 20), D(2026, 11, 20))),
        (Kind.DATE, "20260101-20261231", DateRange(D(2026, 1, 1), D(2026, 12, 31))),
        (Kind.DATE, "-20261231", DateRange(None, D(2026, 12, 31))),
        (Kind.DATE, "20260101-", DateRange(D(2026, 1, 1), None)),
        (Kind.DATE, "-2026", DateRange(None, D(2026, 12, 31))),
        (Kind.DATE, "2026-", DateRange(D(2026, 1, 1), None)),
        (Kind.DATE, "202602", DateRange(D(2026, 2, 1), D(2026, 2, 28))),
        (Kind.DATE, "2026.11.20", DateRange(D(2026, 11, 20), D(2026, 11, 20))),
        (Kind.DATE, "20261120 - 20261121", DateRange(D(2026, 11, 20), D(2026, 11, 21))),
        (Kind.TIME, "10", TimeRange(T(10), T(10, 59, 59, 999999))),
        (Kind.TIME, "1015", TimeRange(T(10, 15), T(10, 15, 59, 999999))),
        (Kind.TIME, "101530.5", TimeRange(T(10, 15, 30, 500000), T(10, 15, 30, 599999))),
        (Kind.TIME, "10:15:30", TimeRange(T(10, 15, 30), T(10, 15, 30, 999999))),
        (Kind.TIME, "0800-1200", TimeRange(T(8), T(12, 0, 59, 999999))),
        (Kind.TIME, "-0800", TimeRange(None, T(8, 0, 59, 999999))),
        (Kind.TIME, "1700-", TimeRange(T(17), None)),
    ],
)
def test_raw_values_are_parsed_into_criteria(kind: Kind, raw: str, expected: object) -> None:
    assert parse(kind, raw, "Key") == expected


def test_two_quotation_marks_ask_for_empty_values_only_when_enabled() -> None:
    assert parse(Kind.TEXT, '""', "AccessionNumber", empty_value_matching=True) == EmptyValue()


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        (Kind.UID, "1.2.*", "wild cards are not allowed in a UID"),
        (Kind.NUMBER, "one", "is not a number"),
        (Kind.DATE, "20261301", "is not a valid date"),
        (Kind.DATE, "2026-13", "is not a date range"),
        (Kind.DATE, "2026-11-20", "is not a range"),
        (Kind.DATE, "yesterday", "is not a date"),
        (Kind.DATE, "20261231-20260101", "ends before it starts"),
        (Kind.DATE, "-", "is not a range"),
        (Kind.TIME, "2500", "is not a valid time"),
        (Kind.TIME, "1061", "is not a valid time"),
        (Kind.TIME, "noon", "is not a time"),
        (Kind.TIME, "2300-0100", "may not cross midnight"),
    ],
)
def test_values_that_cannot_be_matched_are_refused_with_the_attribute_named(
    kind: Kind, raw: str, message: str
) -> None:
    with pytest.raises(InvalidValueError, match=message) as caught:
        parse(kind, raw, "StudyDate")
    assert caught.value.keyword == "StudyDate"
    assert caught.value.dimse_status == 0xC001
    assert caught.value.offending_tag == 0x00080020
    assert caught.value.reason.startswith("StudyDate: ")


def test_a_date_range_and_a_time_range_combine_into_one_span_of_moments() -> None:
    span = combine(
        DateRange(D(2026, 7, 5), D(2026, 7, 7)),
        TimeRange(T(10), T(18, 59, 59, 999999)),
    )
    assert span == DateTimeRange(
        dt.datetime(2026, 7, 5, 10), dt.datetime(2026, 7, 7, 18, 59, 59, 999999)
    )
    open_start = combine(DateRange(None, D(2026, 7, 7)), TimeRange(T(10), None))
    assert open_start == DateTimeRange(None, dt.datetime(2026, 7, 7, 23, 59, 59, 999999))
