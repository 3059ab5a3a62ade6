"""The attributes the archive can match and return: for each, its level, how it matches,
and where its value lives (an index column, or computed from the tables below it).

The unique keys (PS3.4 C.6.1.1, C.6.2.1) are PatientID, StudyInstanceUID,
SeriesInstanceUID and SOPInstanceUID. Every other attribute here is an optional key that
Carina supports for matching and return, except the computed counts, which are returned but
not matched. At IMAGE level, any other attribute is returned from the instance's stored
DICOM JSON (``Instance.metadata``); no file is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from django.db import models
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from carina.archive.models import Instance, Patient, Series, Study
from carina.archive.query.levels import Level
from carina.archive.query.values import Kind

#: The table that holds each level.
MODELS: dict[Level, type[models.Model]] = {
    Level.PATIENT: Patient,
    Level.STUDY: Study,
    Level.SERIES: Series,
    Level.IMAGE: Instance,
}

#: The foreign-key path from a level's table up to each level above it.
_UP: dict[Level, dict[Level, str]] = {
    Level.PATIENT: {},
    Level.STUDY: {Level.PATIENT: "patient"},
    Level.SERIES: {Level.STUDY: "study", Level.PATIENT: "study__patient"},
    Level.IMAGE: {
        Level.SERIES: "series",
        Level.STUDY: "series__study",
        Level.PATIENT: "series__study__patient",
    },
}


def path_prefix(query_level: Level, owner: Level) -> str:
    """The lookup prefix from the table of ``query_level`` to the table of ``owner``
    (``""`` for the same level, ``"series__study__"`` from IMAGE to STUDY)."""
    if owner == query_level:
        return ""
    return _UP[query_level][owner] + "__"


class Aggregate(Enum):
    """How a count is computed from a table below."""

    COUNT = "COUNT"
    SUM = "SUM"


@dataclass(frozen=True)
class Related:
    """Values held by rows of a table below the attribute's level: the attribute matches
    when ANY related row matches (ModalitiesInStudy: a study with a series of that
    modality), or is computed from them (counts, SOPClassesInStudy)."""

    model: type[models.Model]
    #: Lookup from that table to the owner's table (``"study"``, ``"series__study"``).
    owner_field: str
    #: The column of that table (``"modality"``), or the one summed or counted.
    column: str
    aggregate: Aggregate | None = None


@dataclass(frozen=True)
class Attribute:
    """One attribute the archive knows at a level."""

    keyword: str
    level: Level
    kind: Kind
    #: Index column of the level's table holding the value (None: related or constant).
    column: str | None = None
    #: Matched through (or computed from) a table below.
    related: Related | None = None
    #: A value the archive always has (InstanceAvailability).
    constant: str | None = None
    unique: bool = False

    @property
    def tag(self) -> int:
        tag = tag_for_keyword(self.keyword)
        assert tag is not None, self.keyword
        return int(tag)

    @property
    def vr(self) -> str:
        return str(dictionary_VR(self.tag))

    @property
    def matchable(self) -> bool:
        """Whether a value given for this key is used for matching."""
        if self.related is not None:
            return self.related.aggregate is None
        return self.column is not None or self.constant is not None


def _a(
    keyword: str, level: Level, kind: Kind, column: str | None = None, **kw: object
) -> Attribute:
    return Attribute(keyword, level, kind, column, **kw)  # type: ignore[arg-type]


_P, _ST, _SE, _IM = Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE
_K = Kind

ATTRIBUTES: tuple[Attribute, ...] = (
    # Patient level (PS3.4 C.6.1.1.2): the patient table.
    _a("PatientID", _P, _K.TEXT, "patient_id", unique=True),
    _a("PatientName", _P, _K.PERSON_NAME, "patient_name"),
    _a("IssuerOfPatientID", _P, _K.TEXT, "issuer_of_patient_id"),
    _a("PatientBirthDate", _P, _K.DATE, "patient_birth_date"),
    _a("PatientSex", _P, _K.TEXT, "patient_sex"),
    _a(
        "NumberOfPatientRelatedStudies",
        _P,
        _K.NUMBER,
        related=Related(Study, "patient", "pk", Aggregate.COUNT),
    ),
    _a(
        "NumberOfPatientRelatedSeries",
        _P,
        _K.NUMBER,
        related=Related(Study, "patient", "number_of_series", Aggregate.SUM),
    ),
    _a(
        "NumberOfPatientRelatedInstances",
        _P,
        _K.NUMBER,
        related=Related(Study, "patient", "number_of_instances", Aggregate.SUM),
    ),
    # Study level (PS3.4 C.6.1.1.3, C.6.2.1.2): the study table.
    _a("StudyInstanceUID", _ST, _K.UID, "study_instance_uid", unique=True),
    _a("StudyDate", _ST, _K.DATE, "study_date"),
    _a("StudyTime", _ST, _K.TIME, "study_time"),
    _a("AccessionNumber", _ST, _K.TEXT, "accession_number"),
    _a("StudyID", _ST, _K.TEXT, "study_id"),
    _a("StudyDescription", _ST, _K.TEXT, "study_description"),
    _a("ReferringPhysicianName", _ST, _K.PERSON_NAME, "referring_physician_name"),
    # Returned from the study row (kept by ingest); matched on the series: a study matches
    # when ANY of its series has the modality.
    _a(
        "ModalitiesInStudy",
        _ST,
        _K.TEXT,
        "modalities_in_study",
        related=Related(Series, "study", "modality"),
    ),
    _a(
        "SOPClassesInStudy",
        _ST,
        _K.UID,
        related=Related(Instance, "series__study", "sop_class_uid"),
    ),
    _a("NumberOfStudyRelatedSeries", _ST, _K.NUMBER, "number_of_series"),
    _a("NumberOfStudyRelatedInstances", _ST, _K.NUMBER, "number_of_instances"),
    # Series level (PS3.4 C.6.1.1.4): the series table.
    _a("SeriesInstanceUID", _SE, _K.UID, "series_instance_uid", unique=True),
    _a("Modality", _SE, _K.TEXT, "modality"),
    _a("SeriesNumber", _SE, _K.NUMBER, "series_number"),
    _a("SeriesDescription", _SE, _K.TEXT, "series_description"),
    _a("BodyPartExamined", _SE, _K.TEXT, "body_part_examined"),
    _a("SeriesDate", _SE, _K.DATE, "series_date"),
    _a("NumberOfSeriesRelatedInstances", _SE, _K.NUMBER, "number_of_instances"),
    # Image (instance) level (PS3.4 C.6.1.1.5): the instance table.
    _a("SOPInstanceUID", _IM, _K.UID, "sop_instance_uid", unique=True),
    _a("SOPClassUID", _IM, _K.UID, "sop_class_uid"),
    _a("InstanceNumber", _IM, _K.NUMBER, "instance_number"),
    _a("Rows", _IM, _K.NUMBER, "rows"),
    _a("Columns", _IM, _K.NUMBER, "columns"),
    _a("NumberOfFrames", _IM, _K.NUMBER, "number_of_frames"),
    _a("AvailableTransferSyntaxUID", _IM, _K.UID, "transfer_syntax_uid"),
    # Every level: everything Carina holds is on line (PS3.4 C.4.1.1.3.2).
    _a("InstanceAvailability", _P, _K.TEXT, constant="ONLINE"),
)

BY_KEYWORD: dict[str, Attribute] = {a.keyword: a for a in ATTRIBUTES}

#: The unique key of each level (PS3.4 C.6.1.1, C.6.2.1).
UNIQUE_KEYS: dict[Level, str] = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}

#: Keys that describe the query or the answer rather than the archive's data: never
#: matched, and answered by the adapter (C-FIND, QIDO-RS), not from an index column.
CONTROL_KEYS = frozenset(
    {"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle", "TimezoneOffsetFromUTC"}
)


def attribute_at(keyword: str, level: Level) -> Attribute | None:
    """The attribute ``keyword`` as known at query level ``level``: its own level, or a
    level above (a series answer may carry its study's date). None when the archive
    does not index it there."""
    attribute = BY_KEYWORD.get(keyword)
    if attribute is None or level.is_above(attribute.level):
        return None
    return attribute


def attributes_at(level: Level) -> tuple[Attribute, ...]:
    """Every attribute known at ``level`` (for QIDO-RS ``includefield=all``)."""
    return tuple(a for a in ATTRIBUTES if not level.is_above(a.level))


def normalize_key(key: str) -> str:
    """A keyword for a keyword or an 8-digit hex tag (``00100010`` → ``PatientName``);
    tags without a keyword (private, unknown) stay as 8 upper-case hex digits. Returns
    ``""`` for something that is neither."""
    key = key.strip()
    if tag_for_keyword(key) is not None:
        return key
    text = key.replace("(", "").replace(")", "").replace(",", "")
    if len(text) == 8:
        try:
            tag = int(text, 16)
        except ValueError:
            return ""
        return keyword_for_tag(tag) or f"{tag:08X}"
    return ""


def tag_of(key: str) -> int:
    """The tag of a normalized key."""
    tag = tag_for_keyword(key)
    return int(tag) if tag is not None else int(key, 16)


def vr_of(key: str) -> str:
    """The dictionary VR of a normalized key (``UN`` if the dictionary does not know it)."""
    try:
        return str(dictionary_VR(tag_of(key)))
    except KeyError:
        return "UN"
