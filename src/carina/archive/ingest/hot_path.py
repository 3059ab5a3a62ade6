"""The ingest's hot path in hand-written SQL: the check for an identical stored copy, and
the common case of indexing, a new instance of a series already indexed (docs/ingest.md,
"Speed").

Almost every object a modality sends belongs to a study and a series that the previous object
created. :func:`append_to_known_series` indexes it with four statements where the ORM took
eight, and without the ORM's query building, which took most of the indexing time:

1. the study (locked, ``FOR UPDATE`` on PostgreSQL; SQLite's IMMEDIATE transaction already
   excludes other writers), its patient and the series, in one ``SELECT``;
2. the instance row, ``INSERT … ON CONFLICT DO NOTHING RETURNING id``;
3. and 4. the series' and the study's counts (and ModalitiesInStudy), added to in place.

Whenever the case is not the common one, it returns ``None`` before it has written anything,
and the caller takes the general path in the same transaction: a new study or series, a
series of another study, another patient, demographics that differ from the archived ones
(recorded there), or a SOP Instance UID already stored. The rows written are the ones the
general path writes (same columns, values prepared by the models' own fields).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, cast

from django.db import connection
from django.db.models import Field
from django.utils import timezone

from carina.archive.ingest.demographics import DEMOGRAPHICS, differs
from carina.archive.ingest.parse import ParsedObject
from carina.archive.models import Instance, Patient, Series, Study
from carina.tenancy.models import Hospital


def _quoted(model: Any, name: str | None = None) -> str:
    """The quoted table of ``model``, or the quoted column of its field ``name``."""
    raw = model._meta.db_table if name is None else model._meta.get_field(name).column
    return str(connection.ops.quote_name(raw))


@functools.cache
def _same_copy_sql(vendor: str) -> str:
    """The look-up of an identical stored copy (built once per database vendor)."""
    instance = functools.partial(_quoted, Instance)
    return (
        f"SELECT {instance('id')}, {instance('size_bytes')}, {instance('blob_key')} "
        f"FROM {_quoted(Instance)} WHERE {instance('hospital')} = %s "
        f"AND {instance('sop_instance_uid')} = %s AND {instance('sha256')} = %s"
    )


@dataclass(frozen=True)
class _Append:
    """The statements of :func:`append_to_known_series`, and the instance fields inserted."""

    select: str
    insert: str
    count_in_series: str
    count_in_study: str
    fields: list[Field[Any, Any]]


#: Instance columns the hot path sets itself, before the caller's.
_OWN_COLUMNS = ("hospital", "series", "received_at")


@functools.cache
def _append_sql(vendor: str, lock: bool, columns: tuple[str, ...]) -> _Append:
    """The statements for a database ``vendor`` (built once per process), inserting the
    instance columns ``columns`` after :data:`_OWN_COLUMNS`."""
    names = (*_OWN_COLUMNS, *columns)
    st = functools.partial(_quoted, Study)
    pa = functools.partial(_quoted, Patient)
    se = functools.partial(_quoted, Series)
    select = (
        f"SELECT st.{st('id')}, st.{st('modalities_in_study')}, "
        f"pa.{pa('patient_id')}, pa.{pa('issuer_of_patient_id')}, "
        f"pa.{pa('patient_name')}, pa.{pa('patient_birth_date')}, pa.{pa('patient_sex')}, "
        f"se.{se('id')}, se.{se('study')}, se.{se('modality')} "
        f"FROM {_quoted(Study)} st "
        f"JOIN {_quoted(Patient)} pa ON pa.{pa('id')} = st.{st('patient')} "
        f"LEFT JOIN {_quoted(Series)} se ON se.{se('hospital')} = st.{st('hospital')} "
        f"AND se.{se('series_instance_uid')} = %s "
        f"WHERE st.{st('hospital')} = %s AND st.{st('study_instance_uid')} = %s"
        + (" FOR UPDATE OF st" if lock else "")
    )
    insert = (
        f"INSERT INTO {_quoted(Instance)} "
        f"({', '.join(_quoted(Instance, name) for name in names)}) "
        f"VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT DO NOTHING RETURNING {_quoted(Instance, 'id')}"
    )

    def count_in(model: Any, extra: str) -> str:
        column = functools.partial(_quoted, model)
        return (
            f"UPDATE {_quoted(model)} SET "
            f"{column('number_of_instances')} = {column('number_of_instances')} + 1, "
            f"{column('size_bytes')} = {column('size_bytes')} + %s, {extra}"
            f"{column('updated_at')} = %s WHERE {column('id')} = %s"
        )

    return _Append(
        select,
        insert,
        count_in(Series, ""),
        count_in(Study, f"{_quoted(Study, 'modalities_in_study')} = %s, "),
        [cast("Field[Any, Any]", Instance._meta.get_field(name)) for name in names],
    )


def stored_copy(hospital: Hospital, sop_instance_uid: str, sha256: str) -> Instance | None:
    """The hospital's instance with this SOP Instance UID and these exact bytes (SHA-256),
    if it is stored: its primary key, size and blob key only."""
    with connection.cursor() as cursor:
        cursor.execute(_same_copy_sql(connection.vendor), [hospital.pk, sop_instance_uid, sha256])
        row = cursor.fetchone()
    if row is None:
        return None
    return Instance(pk=row[0], hospital_id=hospital.pk, size_bytes=row[1], blob_key=row[2])


def merged_modalities(modalities_in_study: str, modality: str) -> str:
    """ModalitiesInStudy (PS3.4 C.6.1.1.3.2) with ``modality`` added: sorted, no repeats."""
    present = {m for m in modalities_in_study.split("\\") if m}
    if not modality or modality in present:
        return modalities_in_study
    return "\\".join(sorted(present | {modality}))


def append_to_known_series(
    hospital: Hospital,
    parsed: ParsedObject,
    columns: dict[str, Any],
) -> Instance | None:
    """Insert the instance row with ``columns`` and count it in its series and study, if the
    object is the common case (module docstring); otherwise write nothing and return None.

    Must run inside the ingest's transaction.
    """
    features = connection.features
    if not features.can_return_columns_from_insert:
        return None  # an SQLite older than 3.35: the general path only
    sql = _append_sql(connection.vendor, features.has_select_for_update_of, tuple(columns))
    with connection.cursor() as cursor:
        cursor.execute(
            sql.select, [parsed.series_instance_uid, hospital.pk, parsed.study_instance_uid]
        )
        row = cursor.fetchone()
        if row is None:
            return None
        (study_id, modalities, patient_id, issuer, *demographics, series_id, owner, modality) = row
        fields = parsed.patient
        if (
            series_id is None
            or owner != study_id
            or (patient_id, issuer) != (fields["patient_id"], fields["issuer_of_patient_id"])
            or any(
                differs(archived, fields[name])
                for (name, _), archived in zip(DEMOGRAPHICS, demographics, strict=True)
            )
        ):
            return None
        now = timezone.now()
        instance = Instance(
            hospital_id=hospital.pk, series_id=series_id, received_at=now, **columns
        )
        values = [
            field.get_db_prep_save(getattr(instance, field.attname), connection)
            for field in sql.fields
        ]
        cursor.execute(sql.insert, values)
        inserted = cursor.fetchone()
        if inserted is None:
            return None  # the SOP Instance UID is taken: the general path decides
        instance.pk = inserted[0]
        size = columns["size_bytes"]
        stamp = Series._meta.get_field("updated_at").get_db_prep_save(now, connection)
        cursor.execute(sql.count_in_series, [size, stamp, series_id])
        cursor.execute(
            sql.count_in_study,
            [size, merged_modalities(modalities, modality), stamp, study_id],
        )
    return instance
