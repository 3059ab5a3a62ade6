"""Run a :class:`QuerySpec` for one hospital: the matching rows, the values asked for, in a
fixed order, streamed in chunks.

Everything is answered from the index tables. The number of database queries does not grow
with the number of results: one query for the rows, with the counts computed in it (stored
columns, or subqueries for the patient-level counts), plus one per key of a level above in
searches (:func:`condition_q`), plus one per chunk of results only when SOPClassesInStudy is
asked for. Only one hospital's rows are ever read: the level's table, and that of a level
above matched on its own, are reached through their tenant-scoped manager
(``for_hospital``), and the tables below only from those rows, through their foreign keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.db.models import (
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from carina.archive.query import matching
from carina.archive.query.attributes import (
    MODELS,
    Aggregate,
    Attribute,
    Related,
    path_prefix,
)
from carina.archive.query.levels import Level
from carina.archive.query.render import Match
from carina.archive.query.spec import Condition, QuerySpec
from carina.archive.query.values import (
    AnyOf,
    Criterion,
    DateTimeRange,
    Exact,
    Kind,
    Universal,
    Wildcard,
)
from carina.tenancy.models import Hospital

#: Rows fetched from the database at a time.
CHUNK_SIZE = 500

#: A fixed order per level (newest studies first), ending with the primary key so that it
#: is total; NULLs last on both SQLite and PostgreSQL.
_ORDER: dict[Level, tuple[Any, ...]] = {
    Level.PATIENT: (F("patient_name").asc(), F("patient_id").asc(), F("pk").asc()),
    Level.STUDY: (
        F("study_date").desc(nulls_last=True),
        F("study_time").desc(nulls_last=True),
        F("pk").desc(),
    ),
    Level.SERIES: (F("study_id").asc(), F("series_number").asc(nulls_last=True), F("pk").asc()),
    Level.IMAGE: (
        F("series_id").asc(),
        F("instance_number").asc(nulls_last=True),
        F("pk").asc(),
    ),
}


def _owner_ref(level: Level, attribute: Attribute) -> str:
    """The lookup, from the table of ``level``, of the primary key of the attribute's
    owner row."""
    return path_prefix(level, attribute.level) + "pk"


def _related_rows(related: Related) -> QuerySet[Any]:
    """Rows of a table below, for a subquery correlated with an outer row (or filtered by the
    primary keys of outer rows already read).

    These rows are reached from a hospital-scoped row through its foreign key, so they are
    that hospital's rows; the ``unscoped`` manager is the one for relations reached from a
    scoped row (:class:`carina.tenancy.models.TenantModel`). Adding ``hospital_id = …`` here
    would not narrow anything, and it leads SQLite's planner to scan the hospital's whole
    table through a ``(hospital, …)`` index for every outer row instead of using the
    foreign key's index (13 s instead of 0.1 s for 10,000 studies).
    """
    return related.model.unscoped.all()  # type: ignore[attr-defined]


def _constant_matches(criterion: Criterion, constant: str) -> bool:
    if isinstance(criterion, Universal):
        return True
    if isinstance(criterion, Exact):
        return constant in criterion.values
    if isinstance(criterion, Wildcard):
        regex = matching.wildcard_regex(criterion.pattern)
        return re.fullmatch(f"(?s){regex}", constant) is not None
    if isinstance(criterion, AnyOf):
        return any(_constant_matches(c, constant) for c in criterion.criteria)
    return False


#: A key of a level above that matches at most this many rows of that level is matched as
#: the list of their primary keys; beyond, through the join (see :func:`condition_q`).
OWNER_LIST_LIMIT = 500


def _matching_owners(owner: Level, inner: Q, hospital: Hospital) -> list[int] | None:
    """The primary keys of the hospital's rows of ``owner`` that match ``inner``, or None
    when there are more than :data:`OWNER_LIST_LIMIT`."""
    rows = (
        MODELS[owner]
        .objects.for_hospital(hospital)  # type: ignore[attr-defined]
        .filter(inner)
        .values_list("pk", flat=True)
    )
    found = list(rows[: OWNER_LIST_LIMIT + 1])
    return found if len(found) <= OWNER_LIST_LIMIT else None


def condition_q(
    spec: QuerySpec, condition: Condition, hospital: Hospital, *, owners_first: bool = False
) -> Q:
    """The ``Q`` for one matching key, on the table of the spec's level.

    With ``owners_first`` (searches: :func:`run`, :func:`count`), a key of a level above
    (``PatientName=*smi*`` or ``PatientID=…`` in a study search) is first matched on that
    level's own table, over its ``(hospital, …)`` indexes, in a query of its own. When few
    rows match, the key becomes ``patient_id IN (their primary keys)``, and the rows of the
    query level are read through their foreign key's index; when many match, it stays a
    join, which reads the query level in its own order and stops after a page. Through the
    join, SQLite tested ``PatientName=*smi*`` once per study (a QIDO-RS request at 100,000
    studies: 521 ms then, 12 ms now; docs/query.md, "Speed").
    """
    attribute = condition.attribute
    if owners_first and attribute.constant is None and attribute.level.is_above(spec.level):
        inner = _condition_at(attribute.level, condition)
        if inner == Q():
            return inner
        owners = _matching_owners(attribute.level, inner, hospital)
        if owners is not None:
            return Q(**{path_prefix(spec.level, attribute.level) + "in": owners})
    return _condition_at(spec.level, condition)


def _condition_at(level: Level, condition: Condition) -> Q:
    """The ``Q`` for one matching key, on the table of ``level``."""
    attribute, criterion = condition.attribute, condition.criterion
    prefix = path_prefix(level, attribute.level)
    if attribute.constant is not None:
        return Q() if _constant_matches(criterion, attribute.constant) else matching.NOTHING
    if isinstance(criterion, DateTimeRange):
        assert condition.time is not None and condition.time.column is not None
        assert attribute.column is not None
        return matching.datetime_range(
            prefix + attribute.column,
            prefix + condition.time.column,
            criterion.lower,
            criterion.upper,
        )
    text = attribute.kind in (Kind.TEXT, Kind.PERSON_NAME, Kind.UID)
    if attribute.related is not None:
        related = attribute.related
        inner = matching.criterion_q(criterion, related.column, text=text)
        return matching.related(
            _related_rows(related),
            related.owner_field,
            _owner_ref(level, attribute),
            inner,
        )
    assert attribute.column is not None
    return matching.criterion_q(criterion, prefix + attribute.column, text=text)


def queryset(spec: QuerySpec, hospital: Hospital, *, owners_first: bool = False) -> QuerySet[Any]:
    """The hospital's rows of the spec's level that match every key, in the fixed order
    (without limit and offset). Callers that need the rows themselves (C-MOVE by UIDs)
    can start from here, and narrow it further (routing rules, one instance at a time): it is
    one lazy query. ``owners_first`` matches keys of a level above first, here, one query
    each (:func:`condition_q`): what a search for a page of results wants."""
    model = MODELS[spec.level]
    qs: QuerySet[Any] = model.objects.for_hospital(hospital)  # type: ignore[attr-defined]
    for condition in spec.conditions:
        qs = qs.filter(condition_q(spec, condition, hospital, owners_first=owners_first))
    return qs.order_by(*_ORDER[spec.level])


def count(spec: QuerySpec, hospital: Hospital) -> int:
    """How many entities match (without limit and offset)."""
    return queryset(spec, hospital, owners_first=True).count()


def _aggregate(spec: QuerySpec, attribute: Attribute) -> Any:
    """A count as a subquery of the outer row (one SQL statement in all)."""
    related = attribute.related
    assert related is not None and related.aggregate is not None
    function = Count if related.aggregate is Aggregate.COUNT else Sum
    rows = (
        _related_rows(related)
        .filter(**{related.owner_field: OuterRef(_owner_ref(spec.level, attribute))})
        .order_by()
        .values(related.owner_field)
        .annotate(total=function(related.column))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def _columns(spec: QuerySpec) -> tuple[dict[str, Any], list[Attribute], bool]:
    """What to select: keyword → expression; attributes gathered per chunk afterwards
    (distinct values of a table below, SOPClassesInStudy); whether the stored metadata is
    needed (IMAGE level keys the index does not have)."""
    columns: dict[str, Any] = {}
    per_chunk: list[Attribute] = []
    needs_metadata = False
    for key in spec.return_keys:
        attribute = spec.attribute(key)
        if attribute is None:
            needs_metadata = needs_metadata or spec.level is Level.IMAGE
            continue
        prefix = path_prefix(spec.level, attribute.level)
        if attribute.column is not None:
            columns[key] = F(prefix + attribute.column)
        elif attribute.related is not None and attribute.related.aggregate is not None:
            columns[key] = _aggregate(spec, attribute)
        elif attribute.related is not None:
            per_chunk.append(attribute)
            columns[f"_owner_{attribute.level}"] = F(_owner_ref(spec.level, attribute))
    return columns, per_chunk, needs_metadata


def _fill_per_chunk(rows: list[dict[str, Any]], attributes: list[Attribute]) -> None:
    """Add, for a chunk of rows, the distinct related values of each attribute (one query
    per attribute and chunk)."""
    for attribute in attributes:
        related = attribute.related
        assert related is not None
        owner_key = f"_owner_{attribute.level}"
        owners = {row[owner_key] for row in rows}
        found: dict[int, set[str]] = {}
        pairs = (
            _related_rows(related)
            .filter(**{f"{related.owner_field}__in": owners})
            .order_by()
            .values_list(related.owner_field, related.column)
            .distinct()
        )
        for owner, value in pairs:
            if value:
                found.setdefault(owner, set()).add(value)
        for row in rows:
            row[attribute.keyword] = sorted(found.get(row[owner_key], ()))


def run(spec: QuerySpec, hospital: Hospital, *, chunk_size: int = CHUNK_SIZE) -> Iterator[Match]:
    """The matches of ``spec`` in ``hospital``, in order, honouring limit and offset.

    Rows are read ``chunk_size`` at a time, so a query matching 100,000 studies is
    streamed, not loaded; a consumer that stops early (C-CANCEL) stops the reading.
    """
    columns, per_chunk, needs_metadata = _columns(spec)
    qs = queryset(spec, hospital, owners_first=True)
    selected = ["pk", *(["metadata"] if needs_metadata else [])]
    values = qs.values(*selected, **columns)
    if spec.limit is not None or spec.offset:
        end = None if spec.limit is None else spec.offset + spec.limit
        # LIMIT/OFFSET in SQL, and the page itself streamed too (a QIDO-RS page may hold
        # 10,000 rows): never the whole page in memory.
        values = values[spec.offset : end]
    rows_iter: Iterator[dict[str, Any]] = values.iterator(chunk_size=chunk_size)
    chunk: list[dict[str, Any]] = []
    for row in rows_iter:
        chunk.append(row)
        if len(chunk) >= chunk_size:
            yield from _matches(spec, chunk, per_chunk)
            chunk = []
    if chunk:
        yield from _matches(spec, chunk, per_chunk)


def _matches(
    spec: QuerySpec, rows: list[dict[str, Any]], per_chunk: list[Attribute]
) -> Iterator[Match]:
    if per_chunk:
        _fill_per_chunk(rows, per_chunk)
    for row in rows:
        pk = row.pop("pk")
        metadata = row.pop("metadata", None)
        for key in [k for k in row if k.startswith("_owner_")]:
            del row[key]
        yield Match(spec.level, pk, row, metadata)


__all__ = ["CHUNK_SIZE", "OWNER_LIST_LIMIT", "condition_q", "count", "queryset", "run"]
