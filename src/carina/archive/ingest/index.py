"""Index one stored object in a single short transaction (PS3.4 C.6.1 hierarchy).

The study row is locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serializes writers with
IMMEDIATE transactions) before series and instance rows change, so counts and
ModalitiesInStudy stay exact when several processes ingest into the same study at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum

from carina.archive.ingest.demographics import DEMOGRAPHICS, differs
from carina.archive.ingest.errors import DuplicateConflictError, HierarchyConflictError
from carina.archive.ingest.hot_path import append_to_known_series, merged_modalities
from carina.archive.ingest.parse import ParsedObject
from carina.archive.models import DemographicsMismatch, Instance, Patient, Series, Study
from carina.tenancy.models import DuplicatePolicy, Hospital


@dataclass(frozen=True)
class IndexOutcome:
    """What the indexing transaction did."""

    instance: Instance
    #: "stored", "already_present" or "replaced".
    status: str
    #: Blob key that is no longer referenced and must be deleted after commit.
    obsolete_blob_key: str | None = None


def _record_mismatches(hospital: Hospital, patient: Patient, parsed: ParsedObject) -> None:
    """Record each demographic the object states differently from the archived patient."""
    fields = parsed.patient
    for attr, keyword in DEMOGRAPHICS:
        archived, received = getattr(patient, attr), fields[attr]
        if differs(archived, received):
            DemographicsMismatch.objects.create(
                hospital=hospital,
                patient=patient,
                sop_instance_uid=parsed.sop_instance_uid,
                attribute=keyword,
                archived_value="" if archived is None else str(archived),
                received_value=str(received),
            )


def resolve_patient(hospital: Hospital, parsed: ParsedObject) -> Patient:
    """The patient row for the object; demographics that differ are recorded, not overwritten."""
    fields = parsed.patient
    patient, created = Patient.objects.for_hospital(hospital).get_or_create(
        hospital=hospital,
        patient_id=fields["patient_id"],
        issuer_of_patient_id=fields["issuer_of_patient_id"],
        defaults={
            "patient_name": fields["patient_name"],
            "patient_birth_date": fields["patient_birth_date"],
            "patient_sex": fields["patient_sex"],
        },
    )
    if not created:
        _record_mismatches(hospital, patient, parsed)
    return patient


def select_locked_study(hospital: Hospital, study_uid: str) -> Study | None:
    """The hospital's study ``study_uid`` (with its patient), its row locked until the end of
    the transaction; ``None`` when there is none."""
    return (
        Study.objects.for_hospital(hospital)
        .select_for_update(of=("self",))
        .select_related("patient")
        .filter(study_instance_uid=study_uid)
        .first()
    )


def _locked_study(hospital: Hospital, parsed: ParsedObject, name: str) -> Study:
    """The object's study, locked for this transaction, created (with its patient) if new.

    An existing study costs one query: its patient comes with it and is checked in memory
    (same PatientID and issuer, and demographics: differences are recorded).
    """
    study = select_locked_study(hospital, parsed.study_instance_uid)
    known = study is not None
    if study is None:
        patient = resolve_patient(hospital, parsed)
        try:
            with transaction.atomic():
                Study.objects.create(
                    hospital=hospital,
                    patient=patient,
                    study_instance_uid=parsed.study_instance_uid,
                    **parsed.study,
                )
        except IntegrityError:
            pass  # another process created it a moment ago; lock theirs
        study = select_locked_study(hospital, parsed.study_instance_uid)
        assert study is not None
    owner = study.patient
    fields = parsed.patient
    if (owner.patient_id, owner.issuer_of_patient_id) != (
        fields["patient_id"],
        fields["issuer_of_patient_id"],
    ):
        raise HierarchyConflictError(
            name,
            f"study {parsed.study_instance_uid} belongs to patient "
            f"{owner.patient_id!r} ({owner.patient_name}), but this object names patient "
            f"{fields['patient_id']!r}; correct the PatientID or the StudyInstanceUID",
        )
    if known:
        _record_mismatches(hospital, owner, parsed)
    return study


def _series(
    hospital: Hospital, study: Study, parsed: ParsedObject, name: str
) -> tuple[Series, bool]:
    series, created = Series.objects.for_hospital(hospital).get_or_create(
        hospital=hospital,
        series_instance_uid=parsed.series_instance_uid,
        defaults={"study": study, **parsed.series},
    )
    if series.study_id != study.pk:
        raise HierarchyConflictError(
            name,
            f"series {parsed.series_instance_uid} belongs to another study than "
            f"{parsed.study_instance_uid}",
        )
    return series, created


def _add_modality(study: Study, modality: str) -> None:
    study.modalities_in_study = merged_modalities(study.modalities_in_study, modality)


def recompute_modalities(study: Study) -> None:
    """Set ModalitiesInStudy from the study's remaining series (after a series went)."""
    study.modalities_in_study = "\\".join(
        sorted({m for m in study.series.values_list("modality", flat=True) if m})
    )


def remove_instance(instance: Instance) -> None:
    """Delete an instance row and take it out of its series' and study's counts; a series
    left empty is deleted too (an empty study is left to the caller)."""
    series = Series.unscoped.select_for_update().get(pk=instance.series_id)
    study = Study.unscoped.select_for_update().get(pk=series.study_id)
    instance.delete()
    series.number_of_instances -= 1
    series.size_bytes -= instance.size_bytes
    study.number_of_instances -= 1
    study.size_bytes -= instance.size_bytes
    if series.number_of_instances <= 0:
        series.delete()
        study.number_of_series -= 1
        recompute_modalities(study)
    else:
        series.save(update_fields=["number_of_instances", "size_bytes", "updated_at"])
    study.save(update_fields=_STUDY_COUNTS)


def remove_series(series: Series) -> None:
    """Delete a series with its instance rows and take it out of its study's counts and
    ModalitiesInStudy (an empty study is left to the caller)."""
    study = Study.unscoped.select_for_update().get(pk=series.study_id)
    rows = Instance.unscoped.filter(series=series)
    totals = rows.aggregate(count=Count("pk"), size=Sum("size_bytes"))
    rows.delete()
    series.delete()
    study.number_of_series -= 1
    study.number_of_instances -= totals["count"] or 0
    study.size_bytes -= totals["size"] or 0
    recompute_modalities(study)
    study.save(update_fields=_STUDY_COUNTS)


_STUDY_COUNTS = [
    "number_of_instances",
    "size_bytes",
    "number_of_series",
    "modalities_in_study",
    "updated_at",
]


def index_object(
    hospital: Hospital,
    parsed: ParsedObject,
    *,
    blob_key: str,
    size_bytes: int,
    sha256: str,
    source: str,
    source_detail: str,
    name: str,
) -> IndexOutcome:
    """Insert (or confirm, or replace) the instance row and update the counts, atomically.

    The common case (a new instance in a known study and series) is
    :func:`~carina.archive.ingest.hot_path.append_to_known_series`: lock the study (with its
    patient) and read the series, insert the instance, update the series and the study. Every
    other case takes the general path below, in the same transaction.
    """
    columns = {
        "sop_instance_uid": parsed.sop_instance_uid,
        "sop_class_uid": parsed.sop_class_uid,
        "transfer_syntax_uid": parsed.transfer_syntax_uid,
        "blob_key": blob_key,
        "size_bytes": size_bytes,
        "sha256": sha256,
        "source": source,
        "source_detail": source_detail[:255],
        "metadata": parsed.metadata,
        **parsed.instance,
    }

    def insert(series: Series) -> Instance:
        with transaction.atomic():  # a savepoint: a duplicate UID must not abort the rest
            return Instance.objects.create(hospital=hospital, series=series, **columns)

    with transaction.atomic():
        appended = append_to_known_series(hospital, parsed, columns)
        if appended is not None:
            return IndexOutcome(appended, "stored")
        study = _locked_study(hospital, parsed, name)
        series, series_created = _series(hospital, study, parsed, name)
        obsolete: str | None = None
        try:
            instance = insert(series)
        except IntegrityError:
            existing = (
                Instance.objects.for_hospital(hospital)
                .select_for_update()
                .get(sop_instance_uid=parsed.sop_instance_uid)
            )
            if existing.sha256 == sha256:
                if series_created:
                    series.delete()  # created for this object only; nothing to count
                return IndexOutcome(existing, "already_present")
            if hospital.duplicate_policy != DuplicatePolicy.KEEP_NEWEST:
                raise DuplicateConflictError(
                    name,
                    f"SOP Instance UID {parsed.sop_instance_uid} is already stored with "
                    "different content; the hospital's policy is to reject such objects "
                    "(change it to 'keep newest' to replace, or give the object a new UID)",
                ) from None
            obsolete = existing.blob_key
            remove_instance(existing)
            study.refresh_from_db()
            series, series_created = _series(hospital, study, parsed, name)
            instance = insert(series)
        series.number_of_instances += 1
        series.size_bytes += size_bytes
        series.save(update_fields=["number_of_instances", "size_bytes", "updated_at"])
        study.number_of_instances += 1
        study.size_bytes += size_bytes
        if series_created:
            study.number_of_series += 1
        _add_modality(study, series.modality)
        study.save(update_fields=_STUDY_COUNTS)
    return IndexOutcome(instance, "replaced" if obsolete else "stored", obsolete)
