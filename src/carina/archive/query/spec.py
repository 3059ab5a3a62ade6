"""A query, as the archive understands it: a level, matching keys, return keys.

A :class:`QuerySpec` is built from a C-FIND identifier
(:func:`carina.archive.query.identifier.spec_from_identifier`) or from QIDO-RS parameters
(:meth:`QuerySpec.from_qido`). Building it parses and checks every value, so a spec that
exists can be run; what cannot be run raises a :class:`~carina.archive.query.errors.QueryError`
that carries its DIMSE and HTTP status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from carina.archive.query.attributes import (
    CONTROL_KEYS,
    UNIQUE_KEYS,
    Attribute,
    attribute_at,
    attributes_at,
    normalize_key,
)
from carina.archive.query.errors import (
    IdentifierMismatchError,
    QueryError,
    UnknownKeyError,
)
from carina.archive.query.levels import InformationModel, Level
from carina.archive.query.values import (
    WILDCARDS,
    Criterion,
    DateRange,
    Exact,
    Kind,
    TimeRange,
    Universal,
    combine,
    parse,
)

#: Date and time attribute pairs matched as one moment with combined date-time matching.
DATE_TIME_PAIRS: tuple[tuple[str, str], ...] = (("StudyDate", "StudyTime"),)
#: The largest page a caller may ask for (QIDO-RS ``limit``).
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Condition:
    """One matching key: the attribute and what its value asks for. A combined date-time
    condition also names the time attribute (``time``)."""

    attribute: Attribute
    criterion: Criterion
    time: Attribute | None = None


class QuerySpec:
    """What to find and what to return.

    :param level: the Query/Retrieve level (a :class:`Level` or its name).
    :param keys: matching keys, keyword (or 8-digit hex tag) → raw value as sent: ``""``
        is Universal Matching, ``"SMITH*"`` Wild Card Matching, ``"20260101-"`` a range,
        ``"1.2.3\\\\1.2.4"`` a list of UIDs. Every key given is also returned.
    :param return_keys: further keys to return (zero-length in the request).
    :param model: the information model of a hierarchical C-FIND (checks the level and
        the unique keys above it, PS3.4 C.4.1.2.2.1); None for a relational query
        (QIDO-RS), where any key of the level or above may be given.
    :param limit: at most this many results (None: all); ``offset``: skip so many first.
    :param combined_datetime: match StudyDate and StudyTime as one moment (C.2.2.2.5.2)
        instead of as two independent ranges.
    :param empty_value_matching: ``""`` (two quotation marks) matches entities without a
        value (C.2.2.2.7).
    :param sequences: for sequence keys, the tags (normalized keys) requested inside the
        item, if any; such keys are returned at IMAGE level from the stored metadata.
    :param vrs: the VR of keys the dictionary does not know (private tags), for answers.
    """

    def __init__(
        self,
        level: Level | str,
        keys: Mapping[str, str],
        return_keys: Iterable[str] = (),
        *,
        model: InformationModel | None = None,
        limit: int | None = None,
        offset: int = 0,
        combined_datetime: bool = False,
        empty_value_matching: bool = False,
        sequences: Mapping[str, Sequence[str]] | None = None,
        vrs: Mapping[str, str] | None = None,
        unsupported: Iterable[str] = (),
    ) -> None:
        try:
            self.level = Level(str(level).strip().upper())
        except ValueError:
            raise IdentifierMismatchError(
                f"QueryRetrieveLevel {str(level)!r} is not one of PATIENT, STUDY, SERIES, IMAGE",
                "QueryRetrieveLevel",
            ) from None
        self.model = model
        if model is not None and self.level not in model.levels:
            raise IdentifierMismatchError(
                f"QueryRetrieveLevel {self.level} is not a level of the {model} model",
                "QueryRetrieveLevel",
            )
        if limit is not None and not 0 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 0 and {MAX_LIMIT}", "limit")
        if offset < 0:
            raise QueryError("offset must not be negative", "offset")
        self.limit = limit
        self.offset = offset
        self.combined_datetime = combined_datetime
        self.empty_value_matching = empty_value_matching
        self.sequences = {k: tuple(v) for k, v in (sequences or {}).items()}
        self.vrs = dict(vrs or {})

        self.keys: dict[str, str] = {}
        for key, value in keys.items():
            self.keys[self._normalize(key)] = value
        ordered = [*self.keys, *(self._normalize(k) for k in return_keys)]
        #: Every key to return, in the order given (matching keys first).
        self.return_keys: tuple[str, ...] = tuple(
            k for k in dict.fromkeys(ordered) if k != "QueryRetrieveLevel"
        )
        #: Keys Carina does not support at this level for matching or return (FF01).
        self.unsupported: set[str] = set(unsupported)
        if model is not None:
            self._check_hierarchy(model)
        self.conditions: tuple[Condition, ...] = self._conditions()
        if self.level is not Level.IMAGE:
            self.unsupported.update(
                k
                for k in self.return_keys
                if k not in self.keys and k not in CONTROL_KEYS and self.attribute(k) is None
            )

    @staticmethod
    def _normalize(key: str) -> str:
        keyword = normalize_key(key)
        if not keyword:
            raise UnknownKeyError(f"{key!r} is not a DICOM attribute keyword or tag", None)
        return keyword

    def attribute(self, key: str) -> Attribute | None:
        """The attribute ``key`` stands for at this spec's level, if the archive has it."""
        return attribute_at(key, self.level)

    def _conditions(self) -> tuple[Condition, ...]:
        conditions: dict[str, Condition] = {}
        for key, raw in self.keys.items():
            if key in CONTROL_KEYS:
                continue
            attribute = self.attribute(key)
            if attribute is None:
                if raw.strip() or self.level is not Level.IMAGE:
                    self.unsupported.add(key)
                continue
            criterion = parse(
                attribute.kind, raw, key, empty_value_matching=self.empty_value_matching
            )
            if isinstance(criterion, Universal):
                continue
            if not attribute.matchable:
                self.unsupported.add(key)
                continue
            conditions[key] = Condition(attribute, criterion)
        if self.combined_datetime:
            for date_key, time_key in DATE_TIME_PAIRS:
                date, time = conditions.get(date_key), conditions.get(time_key)
                if (
                    date is not None
                    and time is not None
                    and isinstance(date.criterion, DateRange)
                    and isinstance(time.criterion, TimeRange)
                ):
                    conditions[date_key] = Condition(
                        date.attribute, combine(date.criterion, time.criterion), time.attribute
                    )
                    del conditions[time_key]
        return tuple(conditions.values())

    def _check_hierarchy(self, model: InformationModel) -> None:
        """A hierarchical query gives the unique key of every level above its own, with a
        value: a single value, or for UIDs a list (PS3.4 C.4.1.2.2.1)."""
        for level in model.levels_above(self.level):
            key = UNIQUE_KEYS[level]
            value = self.keys.get(key, "").replace("\x00", "").strip()
            if not value or WILDCARDS & set(value) or (level is Level.PATIENT and "\\" in value):
                what = "a single value" if level is Level.PATIENT else "a UID or a list of UIDs"
                raise IdentifierMismatchError(
                    f"a {self.level} query in the {model} model needs {key} with {what} "
                    f"(hierarchical query)",
                    key,
                )

    @property
    def status_warning(self) -> bool:
        """Whether some key was neither matched nor returned (C-FIND status FF01)."""
        return bool(self.unsupported)

    def __repr__(self) -> str:
        return (
            f"QuerySpec({self.level}, {self.keys!r}, return={list(self.return_keys)!r}, "
            f"model={self.model}, limit={self.limit}, offset={self.offset})"
        )

    # --- QIDO-RS ------------------------------------------------------------------------

    @classmethod
    def from_qido(
        cls,
        level: Level | str,
        params: Mapping[str, Sequence[str]],
        *,
        study_uid: str | None = None,
        series_uid: str | None = None,
        default_return_keys: Iterable[str] = (),
        combined_datetime: bool = False,
    ) -> QuerySpec:
        """A spec from QIDO-RS query parameters (PS3.18 8.3.4), already percent-decoded:
        ``{"PatientName": ["SMITH*"], "includefield": ["StudyDescription,00081030"],
        "limit": ["25"]}``. ``study_uid``/``series_uid`` come from the path. A list of
        UIDs may be comma- or backslash-separated. ``includefield=all`` returns every key
        the archive has at the level. ``fuzzymatching`` is accepted and ignored
        (Carina's PN matching is already case-insensitive)."""
        level = Level(str(level).upper())
        keys: dict[str, str] = {}
        return_keys: list[str] = list(default_return_keys)
        limit: int | None = None
        offset = 0
        empty_value_matching = False
        for name, values in params.items():
            if name == "includefield":
                for value in values:
                    for field in value.split(","):
                        field = field.strip()
                        if field == "all":
                            return_keys.extend(a.keyword for a in attributes_at(level))
                        elif field:
                            return_keys.append(field)
            elif name in ("limit", "offset"):
                try:
                    number = int(values[-1])
                except (ValueError, IndexError):
                    raise QueryError(f"{name} must be a number", name) from None
                if name == "limit":
                    limit = number
                else:
                    offset = number
            elif name == "fuzzymatching":
                continue
            elif name == "emptyvaluematching":
                empty_value_matching = bool(values) and values[-1].lower() == "true"
            else:
                keyword = normalize_key(name)
                if not keyword:
                    raise UnknownKeyError(f"{name!r} is not a DICOM attribute keyword or tag", name)
                value = values[-1] if values else ""
                attribute = attribute_at(keyword, level)
                if attribute is not None and attribute.kind is Kind.UID:
                    value = value.replace(",", "\\")
                keys[keyword] = value
        for keyword, uid in (("StudyInstanceUID", study_uid), ("SeriesInstanceUID", series_uid)):
            if uid:
                keys[keyword] = uid
        return cls(
            level,
            keys,
            return_keys,
            limit=limit,
            offset=offset,
            combined_datetime=combined_datetime,
            empty_value_matching=empty_value_matching,
        )


def exact_uids(spec: QuerySpec, keyword: str) -> tuple[str, ...]:
    """The UIDs a spec's key asks for exactly (empty if it is not matched that way), for
    callers that need them (C-MOVE by UID)."""
    for condition in spec.conditions:
        if condition.attribute.keyword == keyword and isinstance(condition.criterion, Exact):
            return tuple(str(v) for v in condition.criterion.values)
    return ()


__all__ = ["DATE_TIME_PAIRS", "MAX_LIMIT", "Condition", "QuerySpec", "exact_uids"]
