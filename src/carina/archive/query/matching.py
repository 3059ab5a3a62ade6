"""One function per matching rule of PS3.4 C.2.2.2, each returning a Django ``Q``.

The rules behave the same on SQLite and PostgreSQL. Single values and UID lists use ``=``
and ``IN`` (case-sensitive on both, and served by the indexes). Wild cards and person names
use a regular expression (``__regex``: Python's ``re`` on SQLite, ``~`` on PostgreSQL) built
only from constructs both engines read alike: anchors, ``.``, ``[...]`` classes, ``*``,
``(?:…)?`` groups, and a backslash before every other ASCII punctuation character. SQL
``LIKE`` is not used, because SQLite's LIKE ignores ASCII case and PostgreSQL's does not;
so ``%`` and ``_`` in a value are plain characters, never wild cards.

A pattern is first narrowed by its literal runs: each must be a substring of the value
(Django's ``contains``/``icontains``, a ``LIKE`` the database evaluates natively), a
necessary condition that spares the regular expression (a Python function on SQLite) every
row that cannot match.
"""

from __future__ import annotations

import datetime as dt
import re

from django.db.models import Exists, OuterRef, Q, QuerySet

from carina.archive.query.values import (
    AnyOf,
    Criterion,
    DateRange,
    EmptyValue,
    Exact,
    PersonName,
    TimeRange,
    Universal,
    Wildcard,
)

#: Matches nothing (an empty IN list is "false" on every backend).
NOTHING = Q(pk__in=[])


# --- C.2.2.2.3 Universal Matching -------------------------------------------------------


def universal() -> Q:
    """Universal Matching (C.2.2.2.3): every entity matches, with or without a value."""
    return Q()


# --- C.2.2.2.1 Single Value Matching ----------------------------------------------------


def single_value(field: str, value: str | int | dt.date) -> Q:
    """Single Value Matching (C.2.2.2.1): exactly this value, case-sensitive."""
    return Q(**{field: value})


# --- C.2.2.2.2 List of UID Matching -----------------------------------------------------


def uid_list(field: str, uids: tuple[str | int, ...]) -> Q:
    """List of UID Matching (C.2.2.2.2): any of the UIDs (also used for several values
    of a number or a code)."""
    if len(uids) == 1:
        return single_value(field, uids[0])
    return Q(**{f"{field}__in": list(uids)})


# --- C.2.2.2.4 Wild Card Matching -------------------------------------------------------


def _literal(char: str, *, ascii_case_insensitive: bool) -> str:
    """``char`` as a regular expression that both Python and PostgreSQL read literally."""
    if char.isascii() and char.isalpha():
        return f"[{char.upper()}{char.lower()}]" if ascii_case_insensitive else char
    if char.isascii() and not char.isdigit():
        return "\\" + char  # punctuation, space and controls: escaped
    return char  # digits, and any non-ASCII character, stand for themselves


def wildcard_regex(
    pattern: str, *, any_char: str = ".", ascii_case_insensitive: bool = False
) -> str:
    """The body of a regular expression for a DICOM wild card pattern: ``*`` is
    ``any_char*``, ``?`` is ``any_char``, everything else is literal."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(any_char + "*")
        elif char == "?":
            parts.append(any_char)
        else:
            parts.append(_literal(char, ascii_case_insensitive=ascii_case_insensitive))
    return "".join(parts)


def literal_runs(pattern: str) -> list[str]:
    """The runs of ordinary characters of a wild card pattern (``*SMI?H*`` → ``SMI``,
    ``H``): every value the pattern matches contains each of them."""
    return [run for run in re.split(r"[*?]", pattern) if run]


def _containing(field: str, runs: list[str], *, lookup: str) -> Q:
    """Values containing every run: the prefilter of a pattern (module docstring).

    ``contains`` is a necessary condition for a case-sensitive pattern on both engines
    (SQLite's ``LIKE`` only adds matches, ignoring the case of A–Z); ``icontains`` for a
    person name, whose alphabetic group ignores the case of A–Z.
    """
    q = Q()
    for run in dict.fromkeys(runs):
        q &= Q(**{f"{field}__{lookup}": run})
    return q


def wildcard(field: str, pattern: str) -> Q:
    """Wild Card Matching (C.2.2.2.4): ``*`` matches any sequence of characters (also
    none), ``?`` any single character; case-sensitive. ``%``, ``_`` and backslashes are
    ordinary characters."""
    if set(pattern) <= {"*"}:
        return universal()
    return _containing(field, literal_runs(pattern), lookup="contains") & Q(
        **{f"{field}__regex": f"(?s)^{wildcard_regex(pattern)}$"}
    )


# --- Person names (C.2.2.2.1 and C.2.2.2.4 for PN; docs/query.md) -----------------------

#: Within a PN component: any character but the component and group delimiters.
_IN_COMPONENT = "[^=^]"


def _group_regex(group: str, *, ascii_case_insensitive: bool) -> str | None:
    """A regular expression for one component group of a PN query (family^given^middle^
    prefix^suffix), or None when the group asks for nothing (universal).

    Each component given is matched against the same component of the stored name, wild
    cards staying inside it; components left empty (or ``*``) match anything, as do the
    stored name's components after the last one given.
    """
    components = [c.strip() for c in group.split("^")]
    given = [i for i, c in enumerate(components) if c and set(c) != {"*"}]
    if not given:
        return None
    parts = []
    for component in components[: given[-1] + 1]:
        if component and set(component) != {"*"}:
            parts.append(
                wildcard_regex(
                    component,
                    any_char=_IN_COMPONENT,
                    ascii_case_insensitive=ascii_case_insensitive,
                )
            )
        else:
            parts.append(_IN_COMPONENT + "*")
    return "\\^".join(parts) + "(?:\\^[^=]*)?"


def person_name_regex(value: str) -> str | None:
    """The regular expression for a PN query (docs/query.md, "Person names"), or None when
    it matches every name.

    * A query without ``=`` is matched against each component group of the stored name
      (alphabetic, ideographic, phonetic) and matches if any group does.
    * A query with ``=`` matches group by group; an empty group matches anything.
    * The alphabetic group ignores the case of A–Z; other characters match exactly.
    """
    groups = value.split("=")[:3]
    if len(groups) == 1:
        alphabetic = _group_regex(groups[0], ascii_case_insensitive=True)
        other = _group_regex(groups[0], ascii_case_insensitive=False)
        if alphabetic is None or other is None:
            return None
        return f"(?s)^(?:{alphabetic}(?:=.*)?|[^=]*={other}(?:=.*)?|[^=]*=[^=]*={other})$"
    regexes = [
        _group_regex(group, ascii_case_insensitive=index == 0) for index, group in enumerate(groups)
    ]
    if all(r is None for r in regexes):
        return None
    last = max(i for i, r in enumerate(regexes) if r is not None)
    parts = [r if r is not None else "[^=]*" for r in regexes[: last + 1]]
    return "(?s)^" + "=".join(parts) + "(?:=.*)?$"


def person_name_runs(value: str) -> list[str]:
    """The literal runs of each component of a PN query: a name it matches contains each
    of them, ignoring the case of A–Z (components are matched stripped, as in
    :func:`_group_regex`)."""
    return [
        run
        for group in value.split("=")[:3]
        for component in group.split("^")
        for run in literal_runs(component.strip())
    ]


def person_name(field: str, value: str) -> Q:
    """Person name matching: component by component, wild cards within a component, A–Z
    case-insensitive in the alphabetic group. ``SMITH`` and ``SMITH*`` match the family
    name; ``SMITH^J*`` also the given name; ``=山田*`` the ideographic group."""
    regex = person_name_regex(value)
    if regex is None:
        return universal()
    return _containing(field, person_name_runs(value), lookup="icontains") & Q(
        **{f"{field}__regex": regex}
    )


# --- C.2.2.2.5 Range Matching -----------------------------------------------------------


def date_range(field: str, lower: dt.date | None, upper: dt.date | None) -> Q:
    """Range Matching of a DA (C.2.2.2.5.1): inclusive bounds; a missing bound is open.
    An entity without a date does not match."""
    if lower is not None and lower == upper:
        return single_value(field, lower)
    q = Q(**{f"{field}__isnull": False})
    if lower is not None:
        q &= Q(**{f"{field}__gte": lower})
    if upper is not None:
        q &= Q(**{f"{field}__lte": upper})
    return q


def time_range(field: str, lower: dt.time | None, upper: dt.time | None) -> Q:
    """Range Matching of a TM (C.2.2.2.5.1): inclusive bounds, not crossing midnight.
    An entity without a time does not match."""
    q = Q(**{f"{field}__isnull": False})
    if lower is not None:
        q &= Q(**{f"{field}__gte": lower})
    if upper is not None:
        q &= Q(**{f"{field}__lte": upper})
    return q


def datetime_range(
    date_field: str, time_field: str, lower: dt.datetime | None, upper: dt.datetime | None
) -> Q:
    """Combined date and time Range Matching (C.2.2.2.5.2) of a DA/TM pair, such as
    StudyDate and StudyTime, as one moment. An entity with a date but no time matches when
    its date is inside the range."""
    q = Q(**{f"{date_field}__isnull": False})
    if lower is not None:
        q &= Q(**{f"{date_field}__gt": lower.date()}) | (
            Q(**{date_field: lower.date()})
            & (Q(**{f"{time_field}__gte": lower.time()}) | Q(**{f"{time_field}__isnull": True}))
        )
    if upper is not None:
        q &= Q(**{f"{date_field}__lt": upper.date()}) | (
            Q(**{date_field: upper.date()})
            & (Q(**{f"{time_field}__lte": upper.time()}) | Q(**{f"{time_field}__isnull": True}))
        )
    return q


# --- C.2.2.2.7 Empty Value Matching -----------------------------------------------------


def empty_value(field: str, *, text: bool) -> Q:
    """Empty Value Matching (C.2.2.2.7): entities without a value (text columns hold
    ``""`` for a missing value, other columns NULL)."""
    return Q(**{field: ""}) if text else Q(**{f"{field}__isnull": True})


# --- Several values ---------------------------------------------------------------------


def any_of(qs: list[Q]) -> Q:
    """Entities matching any of several values."""
    result = NOTHING
    for q in qs:
        result = q if result is NOTHING else result | q
    return result


# --- C.2.2.2.6 Sequence Matching, and matching through a lower level --------------------


def related(related_rows: QuerySet, owner_field: str, owner_ref: str, inner: Q) -> Q:  # type: ignore[type-arg]
    """An entity matches when ANY of its related rows below it matches ``inner``
    (ModalitiesInStudy against the study's series). ``owner_ref`` is the lookup of the
    owner's primary key from the outer query.

    Sequence Matching (C.2.2.2.6) proper is not offered: the archive indexes no sequence
    attribute. A sequence key with values is not used for matching (status FF01).
    """
    return Q(Exists(related_rows.filter(**{owner_field: OuterRef(owner_ref)}).filter(inner)))


# --- dispatch ---------------------------------------------------------------------------


def criterion_q(criterion: Criterion, field: str, *, text: bool = True) -> Q:
    """The ``Q`` for ``criterion`` on ``field`` (``text``: the column holds text, where
    "no value" is ``""``)."""
    if isinstance(criterion, Universal):
        return universal()
    if isinstance(criterion, Exact):
        return uid_list(field, criterion.values)
    if isinstance(criterion, Wildcard):
        return wildcard(field, criterion.pattern)
    if isinstance(criterion, PersonName):
        return person_name(field, criterion.value)
    if isinstance(criterion, DateRange):
        return date_range(field, criterion.lower, criterion.upper)
    if isinstance(criterion, TimeRange):
        return time_range(field, criterion.lower, criterion.upper)
    if isinstance(criterion, EmptyValue):
        return empty_value(field, text=text)
    if isinstance(criterion, AnyOf):
        return any_of([criterion_q(c, field, text=text) for c in criterion.criteria])
    raise TypeError(f"{criterion!r} needs two fields (a date and a time)")
