"""What a key's value asks for: the raw string of a C-FIND identifier element or a QIDO-RS
parameter, parsed into a criterion (PS3.4 C.2.2.2) before anything touches the database.

Parsing happens when a :class:`~carina.archive.query.spec.QuerySpec` is built, so a value
that cannot be matched (``StudyDate=2026-13``) fails there, with the attribute named, and
never as a database error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from carina.archive.query.errors import InvalidValueError

#: The wild card characters of PS3.4 C.2.2.2.4.
WILDCARDS = frozenset("*?")


class Kind(Enum):
    """How a key is matched, by the VR of its attribute."""

    #: UI: Single Value and List of UID Matching (C.2.2.2.1, C.2.2.2.2). No wild cards.
    UID = "uid"
    #: AE, CS, LO, SH, LT, ST, UC: Single Value and Wild Card Matching, case-sensitive.
    TEXT = "text"
    #: PN: component-wise, case-insensitive for A–Z in the alphabetic group (docs/query.md).
    PERSON_NAME = "person name"
    #: DA: Single Value and Range Matching (C.2.2.2.5).
    DATE = "date"
    #: TM: Single Value and Range Matching (C.2.2.2.5).
    TIME = "time"
    #: IS, US, UL: Single Value Matching of a number.
    NUMBER = "number"


# --- criteria -------------------------------------------------------------------------


@dataclass(frozen=True)
class Universal:
    """Universal Matching (C.2.2.2.3): a zero-length value, or ``*`` (C.2.2.2.4)."""


@dataclass(frozen=True)
class Exact:
    """Single Value Matching (C.2.2.2.1) of one value, or any of several: a List of UID
    Matching (C.2.2.2.2), or several values of another VR (backslash-separated)."""

    values: tuple[str | int, ...]


@dataclass(frozen=True)
class Wildcard:
    """Wild Card Matching (C.2.2.2.4): ``*`` any sequence, ``?`` any one character."""

    pattern: str


@dataclass(frozen=True)
class PersonName:
    """A PN value, matched component by component (docs/query.md, "Person names")."""

    value: str


@dataclass(frozen=True)
class DateRange:
    """Range Matching of a DA (C.2.2.2.5.1); a single date is the range of one day."""

    lower: dt.date | None
    upper: dt.date | None


@dataclass(frozen=True)
class TimeRange:
    """Range Matching of a TM (C.2.2.2.5.1); a single time covers its precision."""

    lower: dt.time | None
    upper: dt.time | None


@dataclass(frozen=True)
class DateTimeRange:
    """Combined date and time Range Matching (C.2.2.2.5.2) of a DA and a TM attribute
    pair such as StudyDate and StudyTime, taken as one moment."""

    lower: dt.datetime | None
    upper: dt.datetime | None


@dataclass(frozen=True)
class EmptyValue:
    """Empty Value Matching (C.2.2.2.7): ``""`` matches entities without a value."""


@dataclass(frozen=True)
class AnyOf:
    """Several values (backslash-separated) of which any may match."""

    criteria: tuple[Criterion, ...]


Criterion = (
    Universal
    | Exact
    | Wildcard
    | PersonName
    | DateRange
    | TimeRange
    | DateTimeRange
    | EmptyValue
    | AnyOf
)


# --- parsing --------------------------------------------------------------------------


def parse(kind: Kind, raw: str, keyword: str, *, empty_value_matching: bool = False) -> Criterion:
    """The criterion ``raw`` stands for, for an attribute matched as ``kind``.

    A backslash separates values (PS3.5 6.4): a List of UID Matching for UIDs, "any of
    these" for other VRs (Carina's reading; Multiple Value Matching, C.2.2.2.8, is not
    negotiated). Raises :class:`InvalidValueError` naming ``keyword``.
    """
    raw = raw.replace("\x00", "").strip()
    if raw == "":
        return Universal()
    if empty_value_matching and raw == '""':
        return EmptyValue()
    parts = [part.strip() for part in raw.split("\\")]
    criteria = [_parse_one(kind, part, keyword) for part in parts if part]
    if not criteria or any(isinstance(c, Universal) for c in criteria):
        return Universal()
    if len(criteria) == 1:
        return criteria[0]
    if all(isinstance(c, Exact) for c in criteria):
        values = [v for c in criteria if isinstance(c, Exact) for v in c.values]
        return Exact(tuple(dict.fromkeys(values)))
    return AnyOf(tuple(dict.fromkeys(criteria)))


def _only_stars(value: str) -> bool:
    return set(value) <= {"*"}


def _parse_one(kind: Kind, value: str, keyword: str) -> Criterion:
    if _only_stars(value):
        return Universal()
    if kind is Kind.UID:
        if WILDCARDS & set(value):
            raise InvalidValueError(
                f"{keyword}: wild cards are not allowed in a UID ({value!r}); give the UID "
                "or a backslash-separated list of UIDs",
                keyword,
            )
        return Exact((value,))
    if kind is Kind.TEXT:
        return Wildcard(value) if WILDCARDS & set(value) else Exact((value,))
    if kind is Kind.PERSON_NAME:
        if not value.replace("*", "").replace("^", "").replace("=", "").strip():
            return Universal()
        return PersonName(value)
    if kind is Kind.NUMBER:
        try:
            return Exact((int(value),))
        except ValueError:
            raise InvalidValueError(f"{keyword}: {value!r} is not a number", keyword) from None
    if kind is Kind.DATE:
        lower, upper = parse_date_range(value, keyword)
        return DateRange(lower, upper)
    lower_t, upper_t = parse_time_range(value, keyword)
    return TimeRange(lower_t, upper_t)


_DATE = re.compile(r"^(\d{4})(?:\.?(\d{2})(?:\.?(\d{2}))?)?$")
_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")


def date_bounds(text: str, keyword: str) -> tuple[dt.date, dt.date]:
    """The first and last day ``text`` covers: ``YYYYMMDD`` (DA, PS3.5 6.2), and, as a
    Carina extension for ranges, ``YYYYMM`` and ``YYYY`` (a month, a year). The ACR-NEMA
    form ``YYYY.MM.DD`` is accepted too."""
    match = _DATE.match(text)
    if match is None:
        raise InvalidValueError(
            f"{keyword}: {text!r} is not a date (YYYYMMDD, or a range such as "
            "20260101-20261231, -20261231 or 20260101-)",
            keyword,
        )
    year, month, day = match.groups()
    try:
        if month is None:
            return dt.date(int(year), 1, 1), dt.date(int(year), 12, 31)
        first = dt.date(int(year), int(month), 1)
        if day is None:
            following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            return first, following - dt.timedelta(days=1)
        exact = dt.date(int(year), int(month), int(day))
    except ValueError:
        raise InvalidValueError(f"{keyword}: {text!r} is not a valid date", keyword) from None
    return exact, exact


def time_bounds(text: str, keyword: str) -> tuple[dt.time, dt.time]:
    """The earliest and latest moment ``text`` covers: ``HH``, ``HHMM``, ``HHMMSS`` or
    ``HHMMSS.FFFFFF`` (TM, PS3.5 6.2), or the ACR-NEMA form ``HH:MM:SS``. ``1015`` covers
    10:15:00.000000 to 10:15:59.999999."""
    match = _TIME.match(text.replace(":", ""))
    if match is None:
        raise InvalidValueError(
            f"{keyword}: {text!r} is not a time (HHMMSS.FFFFFF, or a range such as 0800-1200)",
            keyword,
        )
    hours, minutes, seconds, fraction = match.groups()
    h = int(hours)
    m_lo, m_hi = (int(minutes), int(minutes)) if minutes else (0, 59)
    s_lo, s_hi = (min(int(seconds), 59),) * 2 if seconds else (0, 59)
    if fraction:
        us_lo = int(fraction.ljust(6, "0"))
        us_hi = us_lo + 10 ** (6 - len(fraction)) - 1
    else:
        us_lo, us_hi = 0, 999_999
    if h > 23 or m_lo > 59:
        raise InvalidValueError(f"{keyword}: {text!r} is not a valid time", keyword)
    return dt.time(h, m_lo, s_lo, us_lo), dt.time(h, m_hi, s_hi, us_hi)


def _split_range(text: str, keyword: str) -> tuple[str, str] | None:
    if "-" not in text:
        return None
    first, _, second = text.partition("-")
    first, second = first.strip(), second.strip()
    if "-" in second or (not first and not second):
        raise InvalidValueError(f"{keyword}: {text!r} is not a range (give A-B, -B or A-)", keyword)
    return first, second


_B = TypeVar("_B", dt.date, dt.time)


def _parse_range(
    text: str,
    keyword: str,
    bounds: Callable[[str, str], tuple[_B, _B]],
    not_a_range: str,
    reversed_range: str,
) -> tuple[_B | None, _B | None]:
    """The inclusive bounds of a single value or a range of DA or TM (C.2.2.2.5.1)."""
    split = _split_range(text, keyword)
    if split is None:
        return bounds(text, keyword)
    first, second = split
    try:
        lower = bounds(first, keyword)[0] if first else None
        upper = bounds(second, keyword)[1] if second else None
    except InvalidValueError:
        raise InvalidValueError(f"{keyword}: {text!r} {not_a_range}", keyword) from None
    if lower is not None and upper is not None and lower > upper:
        raise InvalidValueError(
            f"{keyword}: the range {text!r} ends before it starts{reversed_range}", keyword
        )
    return lower, upper


def parse_date_range(text: str, keyword: str) -> tuple[dt.date | None, dt.date | None]:
    """The inclusive bounds of a DA value or range (C.2.2.2.5.1)."""
    return _parse_range(
        text,
        keyword,
        date_bounds,
        "is not a date range (give YYYYMMDD-YYYYMMDD, -YYYYMMDD or YYYYMMDD-)",
        "",
    )


def parse_time_range(text: str, keyword: str) -> tuple[dt.time | None, dt.time | None]:
    """The inclusive bounds of a TM value or range (C.2.2.2.5.1; a range may not cross
    midnight)."""
    return _parse_range(
        text,
        keyword,
        time_bounds,
        "is not a time range (give HHMM-HHMM, -HHMM or HHMM-)",
        " (a time range may not cross midnight)",
    )


def combine(date_range: DateRange, time_range: TimeRange) -> DateTimeRange:
    """A date range and a time range as one range of moments (C.2.2.2.5.2):
    ``20260705-20260707`` with ``1000-1800`` runs from 5 July 10:00 to 7 July 18:00."""
    lower = upper = None
    if date_range.lower is not None:
        lower = dt.datetime.combine(date_range.lower, time_range.lower or dt.time.min)
    if date_range.upper is not None:
        upper = dt.datetime.combine(date_range.upper, time_range.upper or dt.time.max)
    return DateTimeRange(lower, upper)
