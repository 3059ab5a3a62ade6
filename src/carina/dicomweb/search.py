"""QIDO-RS (PS3.18 10.6) over the one query engine (:mod:`carina.archive.query`): which
attributes each level returns, how the query parameters (PS3.18 8.3.4) become a
:class:`~carina.archive.query.QuerySpec`, and how a match becomes a result.

The engine does the matching; this module adds what is particular to DICOMweb:

* the attributes returned by default (PS3.18 10.6.3.3, Tables 10.6.3-3, -4 and -5: the
  study's attributes also for All Series and All Instances, the series' for a study's
  instances), plus what OHIF reads (StudyDescription, SeriesDate, the study UID of a series);
* ``limit`` and ``offset`` (PS3.18 8.3.4.4), with a maximum page size;
* ``includefield``, ``fuzzymatching``, and keys given as keywords or tags, once or repeated;
* a 400 naming the key for what the archive cannot match, rather than an answer that
  silently ignores a condition;
* Retrieve URL (0008,1190) in every result, and no zero-length Modalities in Study
  (OHIF's study list fails on it).

docs/dicomweb/search.md describes the behaviour for users.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from pydicom.datadict import keyword_dict

from carina.archive.query import QuerySpec, UnknownKeyError, queryset, to_json
from carina.archive.query.attributes import (
    BY_KEYWORD,
    CONTROL_KEYS,
    attributes_at,
    normalize_key,
    tag_of,
    vr_of,
)
from carina.archive.query.levels import Level
from carina.archive.query.render import Match
from carina.archive.query.spec import MAX_LIMIT, exact_uids
from carina.dicomweb.errors import DicomwebError
from carina.tenancy.models import Hospital

#: The largest page Carina returns (PS3.18 8.3.4.4.1 "maxResults"): also the page size when
#: the request gives no ``limit``. A larger ``limit`` is reduced to it, with a Warning header
#: when more matches remain. The Django setting ``CARINA_QIDO_MAX_RESULTS`` may lower it.
MAX_RESULTS = MAX_LIMIT
#: The largest ``offset`` accepted (databases take 64-bit offsets; nothing has this many).
MAX_OFFSET = 2**31 - 1

#: Names used by DICOMweb itself, not attributes (PS3.18 8.3.3.1, 8.3.4).
CONTROL_PARAMETERS = frozenset(
    {"includefield", "limit", "offset", "fuzzymatching", "emptyvaluematching"}
)
#: Content negotiation in the query (PS3.18 8.3.3.1); handled with the Accept header.
NEGOTIATION_PARAMETERS = frozenset({"accept", "charset"})

RETRIEVE_URL = "RetrieveURL"
_CONTROL_TAGS = tuple(sorted(f"{tag_of(k):08X}" for k in CONTROL_KEYS))

#: What a study result carries by default (PS3.18 Table 10.6.3-3, and StudyDescription,
#: which OHIF's study list shows). Retrieve URL is added to every result.
STUDY_KEYS: tuple[str, ...] = (
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "InstanceAvailability",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "StudyDescription",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
#: What a series result carries by default (PS3.18 Table 10.6.3-4 as far as the archive
#: keeps it, and StudyInstanceUID and SeriesDate, which OHIF reads).
SERIES_KEYS: tuple[str, ...] = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "NumberOfSeriesRelatedInstances",
)
#: What an instance result carries by default (PS3.18 Table 10.6.3-5, and the study and
#: series UIDs).
INSTANCE_KEYS: tuple[str, ...] = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceAvailability",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
)

LEVEL_NAMES = {
    Level.PATIENT: "patient",
    Level.STUDY: "study",
    Level.SERIES: "series",
    Level.IMAGE: "instance",
}


def max_results() -> int:
    """The largest page (``CARINA_QIDO_MAX_RESULTS`` if set lower, else 10,000)."""
    configured = int(getattr(settings, "CARINA_QIDO_MAX_RESULTS", MAX_RESULTS))
    return max(1, min(configured, MAX_RESULTS))


def default_return_keys(
    level: Level, *, study_uid: str | None = None, series_uid: str | None = None
) -> tuple[str, ...]:
    """The attributes a search returns without ``includefield`` (PS3.18 10.6.3.3): a
    level's own, and those of the levels above that the path does not fix — All Series
    also carry the study's attributes, a study's instances also the series'."""
    if level is Level.STUDY:
        return STUDY_KEYS
    if level is Level.SERIES:
        return SERIES_KEYS + (STUDY_KEYS if study_uid is None else ())
    if level is Level.IMAGE:
        keys = INSTANCE_KEYS
        if series_uid is None:
            keys += SERIES_KEYS
        if study_uid is None:
            keys += STUDY_KEYS
        return keys
    raise ValueError(f"QIDO-RS has no {level} level")


@dataclass(frozen=True)
class Search:
    """A QIDO-RS request read and checked: the spec to run, the page, and the Warning
    header texts it already calls for."""

    level: Level
    spec: QuerySpec
    limit: int
    offset: int
    #: The page size is the server's maximum: more matches may remain (Warning header).
    capped: bool
    warnings: tuple[str, ...] = ()

    @property
    def patient_id(self) -> str:
        """The Patient ID the query names exactly (for the audit trail), else ``""``."""
        found = exact_uids(self.spec, "PatientID")
        return found[0] if len(found) == 1 else ""


@functools.cache
def _keywords_by_lower_case() -> dict[str, str]:
    return {keyword.lower(): keyword for keyword in keyword_dict}


def _keyword(name: str) -> str:
    """The keyword (or 8-digit tag) a query parameter name stands for; 400 naming it
    otherwise."""
    if "." in name:
        raise DicomwebError(
            f"{name!r}: matching inside sequences (a dotted attribute path, PS3.18 8.3.4.1) "
            "is not supported by Carina."
        )
    keyword = normalize_key(name)
    if keyword:
        return keyword
    suggestion = _keywords_by_lower_case().get(name.strip().lower())
    hint = f" (did you mean {suggestion}? keywords are case-sensitive)" if suggestion else ""
    raise UnknownKeyError(
        f"{name!r} is not a DICOM attribute keyword or tag{hint}; give a keyword such as "
        "PatientName or a tag such as 00100010, or one of includefield, limit, offset, "
        "fuzzymatching.",
        name,
    )


def _whole_number(name: str, values: Sequence[str], maximum: int | None = None) -> int:
    """The last value of ``name`` as a whole number (0 or more, at most ``maximum``)."""
    raw = values[-1].strip() if values else ""
    if raw.isascii() and raw.isdigit() and (maximum is None or int(raw) <= maximum):
        return int(raw)
    allowed = f"from 0 to {maximum:,}" if maximum is not None else "(0 or more)"
    raise DicomwebError(f"{name} must be a whole number {allowed}, not {raw!r}.")


def _is_universal(raw: str) -> bool:
    return set(raw.replace("\x00", "").strip()) <= {"*"}


def _below(keyword: str, level: Level) -> Level | None:
    """The level of ``keyword`` when the archive keeps it below ``level`` (Modality in a
    study search), else None."""
    attribute = BY_KEYWORD.get(keyword)
    if attribute is not None and level.is_above(attribute.level):
        return attribute.level
    return None


def parse_search(
    level: Level,
    query: Any,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> Search:
    """Read the (already percent-decoded) query parameters of a search: a Django
    ``QueryDict`` or a mapping of name → list of values.

    Raises :class:`DicomwebError` or a :class:`~carina.archive.query.QueryError` (400) that
    names the parameter at fault: an unknown key, a value the archive cannot match, a key it
    does not match at this level, a ``limit`` or ``offset`` that is not a whole number.
    """
    pairs: list[tuple[str, list[str]]] = (
        list(query.lists()) if hasattr(query, "lists") else [(k, list(v)) for k, v in query.items()]
    )
    maximum = max_results()
    limit, offset, capped, fuzzy = maximum, 0, True, False
    keys: dict[str, list[str]] = {}
    includes: list[str] = []
    options: dict[str, list[str]] = {}
    name_of = LEVEL_NAMES[level]
    for name, values in pairs:
        lowered = name.strip().lower()
        if lowered in NEGOTIATION_PARAMETERS:
            continue
        if lowered == "limit":
            asked = _whole_number("limit", values)
            limit, capped = min(asked, maximum), asked >= maximum
        elif lowered == "offset":
            offset = _whole_number("offset", values, MAX_OFFSET)
        elif lowered == "fuzzymatching":
            fuzzy = bool(values) and values[-1].strip().lower() == "true"
        elif lowered == "emptyvaluematching":
            options["emptyvaluematching"] = values
        elif lowered == "includefield":
            for value in values:
                for field in value.split(","):
                    field = field.strip()
                    if field.lower() == "all":
                        includes.append("all")
                    elif field:
                        keyword = _keyword(field)
                        # Attributes of a lower level are not returned (PS3.18 10.6.3.3).
                        if keyword != RETRIEVE_URL and _below(keyword, level) is None:
                            includes.append(keyword)
        else:
            keyword = _keyword(name)
            # A key given more than once (also as keyword and tag): any of its values, as a
            # list of UIDs is (PS3.18 8.3.4.1).
            value = "\\".join([*keys.get(keyword, []), *values])
            lower_level = _below(keyword, level)
            if keyword == RETRIEVE_URL or lower_level is not None:
                if _is_universal(value):
                    continue  # asked for, not matched: not returned at this level
                if keyword == RETRIEVE_URL:
                    raise DicomwebError(f"{keyword} cannot be matched, only returned.")
                hint = " (use ModalitiesInStudy)" if keyword == "Modality" else ""
                assert lower_level is not None
                raise DicomwebError(
                    f"{keyword} is a {LEVEL_NAMES[lower_level]} attribute: a {name_of} "
                    f"search cannot match it{hint}."
                )
            if vr_of(keyword) == "CS":
                # Code strings hold no commas, so a comma separates values there, as OHIF
                # sends them (ModalitiesInStudy=CT,MR), just like a backslash.
                value = value.replace(",", "\\")
            keys[keyword] = [value]
    params: dict[str, list[str]] = {**keys, **options}
    if includes:
        params["includefield"] = [",".join(includes)]
    params["limit"] = [str(limit)]
    params["offset"] = [str(offset)]
    spec = QuerySpec.from_qido(
        level,
        params,
        study_uid=study_uid,
        series_uid=series_uid,
        default_return_keys=default_return_keys(level, study_uid=study_uid, series_uid=series_uid),
    )
    refused = [
        key for key, raw in spec.keys.items() if key in spec.unsupported and not _is_universal(raw)
    ]
    if refused:
        matched = sorted(a.keyword for a in attributes_at(level) if a.matchable)
        raise DicomwebError(
            f"{', '.join(refused)}: Carina does not match "
            f"{'this attribute' if len(refused) == 1 else 'these attributes'} in a {name_of} "
            f"search (it matches {', '.join(matched)})."
        )
    warnings: tuple[str, ...] = ()
    if fuzzy:
        warnings = (
            "The fuzzymatching parameter is not supported. Only literal matching has been "
            "performed (person names ignore the case of A-Z).",
        )
    return Search(level, spec, limit, offset, capped, warnings)


def has_more(search: Search, hospital: Hospital) -> bool:
    """Whether matches remain after the page (asked only when the page is the server's
    maximum, for the Warning header of PS3.18 8.3.4.4.1)."""
    start = search.offset + search.limit
    rows = queryset(search.spec, hospital, owners_first=True).values_list("pk", flat=True)[
        start : start + 1
    ]
    return len(rows) > 0


def more_results_warning(search: Search) -> str:
    return (
        f"There are more than {search.offset + search.limit:,} matches; this response holds "
        f"at most {search.limit:,} (the maximum). Request the next page with "
        f"offset={search.offset + search.limit}."
    )


class Renderer:
    """Turns matches of a search into QIDO-RS results (DICOM JSON): the engine's answer,
    without the attributes the archive does not keep at this level, without a zero-length
    Modalities in Study, and with Retrieve URL (0008,1190), server-relative."""

    def __init__(self, search: Search, studies_url: str) -> None:
        self.spec = search.spec
        self.level = search.level
        self.studies_url = studies_url
        self.dropped = frozenset(f"{tag_of(k):08X}" for k in self.spec.unsupported)

    def __call__(self, match: Match) -> dict[str, Any]:
        result = to_json(self.spec, match)
        for tag in self.dropped:
            result.pop(tag, None)
        # Never a zero-length Modalities in Study (OHIF's study list fails on it), nor the
        # C-FIND-only keys Carina has no value for (Timezone Offset From UTC: "if known").
        for tag in ("00080061", *_CONTROL_TAGS):
            element = result.get(tag)
            if element is not None and not element.get("Value"):
                del result[tag]
        result["00081190"] = {"vr": "UR", "Value": [self.retrieve_url(result)]}
        return dict(sorted(result.items()))

    def retrieve_url(self, result: Mapping[str, Any]) -> str:
        url = f"{self.studies_url}/{_first(result, '0020000D')}"
        if self.level is not Level.STUDY:
            url += f"/series/{_first(result, '0020000E')}"
        if self.level is Level.IMAGE:
            url += f"/instances/{_first(result, '00080018')}"
        return url


def _first(result: Mapping[str, Any], tag: str) -> str:
    values = result.get(tag, {}).get("Value") or [""]
    return str(values[0])


__all__ = [
    "INSTANCE_KEYS",
    "MAX_RESULTS",
    "SERIES_KEYS",
    "STUDY_KEYS",
    "Renderer",
    "Search",
    "default_return_keys",
    "has_more",
    "max_results",
    "more_results_warning",
    "parse_search",
]
