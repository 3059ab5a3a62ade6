"""Fixtures for query engine tests: index rows written directly (no blobs, no ingest), so
that each test builds exactly the archive it needs, quickly."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from pydicom.uid import generate_uid

from carina.archive.models import Instance, Patient, Series, Source, Study
from carina.archive.query import QuerySpec, run
from carina.tenancy.models import Hospital

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
_counter = itertools.count(1)


@dataclass(frozen=True)
class SeriesPlan:
    modality: str = "CT"
    instances: int = 1
    number: int | None = 1
    description: str = ""
    body_part: str = ""
    sop_class: str = CT_IMAGE
    series_uid: str | None = None
    date: dt.date | None = None


class ArchiveBuilder:
    """Writes patients, studies, series and instances with consistent counts."""

    def __init__(self, hospital: Hospital) -> None:
        self.hospital = hospital

    def study(
        self,
        *,
        hospital: Hospital | None = None,
        patient_id: str = "PID1",
        patient_name: str = "TEST^PATIENT",
        issuer: str = "",
        birth_date: dt.date | None = dt.date(1970, 1, 1),
        sex: str = "O",
        study_uid: str | None = None,
        study_date: dt.date | None = dt.date(2026, 11, 20),
        study_time: dt.time | None = dt.time(10, 15),
        accession: str = "ACC001",
        study_id: str = "1",
        description: str = "CT CHEST",
        referring: str = "",
        series: Sequence[SeriesPlan] = (SeriesPlan(),),
    ) -> Study:
        hospital = hospital or self.hospital
        patient, _ = Patient.objects.for_hospital(hospital).get_or_create(
            hospital=hospital,
            patient_id=patient_id,
            issuer_of_patient_id=issuer,
            defaults={
                "patient_name": patient_name,
                "patient_birth_date": birth_date,
                "patient_sex": sex,
            },
        )
        study = Study.objects.create(
            hospital=hospital,
            patient=patient,
            study_instance_uid=study_uid or generate_uid(),
            study_date=study_date,
            study_time=study_time,
            accession_number=accession,
            study_id=study_id,
            study_description=description,
            referring_physician_name=referring,
        )
        for plan in series:
            self.add_series(study, plan)
        return study

    def add_series(self, study: Study, plan: SeriesPlan) -> Series:
        series = Series.objects.create(
            hospital=study.hospital,
            study=study,
            series_instance_uid=plan.series_uid or generate_uid(),
            modality=plan.modality,
            series_number=plan.number,
            series_description=plan.description,
            body_part_examined=plan.body_part,
            series_date=plan.date,
            number_of_instances=plan.instances,
            size_bytes=100 * plan.instances,
        )
        for index in range(plan.instances):
            self.add_instance(series, index + 1, plan.sop_class)
        modalities = {m for m in study.modalities_in_study.split("\\") if m} | {plan.modality}
        study.modalities_in_study = "\\".join(sorted(m for m in modalities if m))
        study.number_of_series += 1
        study.number_of_instances += plan.instances
        study.size_bytes += 100 * plan.instances
        study.save()
        return series

    def add_instance(
        self, series: Series, number: int, sop_class: str, metadata: dict[str, Any] | None = None
    ) -> Instance:
        uid = generate_uid()
        return Instance.objects.create(
            hospital=series.hospital,
            series=series,
            sop_instance_uid=uid,
            sop_class_uid=sop_class,
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            instance_number=number,
            rows=128,
            columns=128,
            blob_key=f"test/{next(_counter)}-{uid}",
            size_bytes=100,
            sha256="0" * 64,
            source=Source.IMPORT,
            metadata=metadata
            or {
                "00080018": {"vr": "UI", "Value": [uid]},
                "00080008": {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]},
                "00180050": {"vr": "DS", "Value": [1.25]},
                "7FE00010": {"vr": "OW", "BulkDataURI": "7FE00010"},
            },
        )


@pytest.fixture
def archive(hospital: Hospital) -> ArchiveBuilder:
    return ArchiveBuilder(hospital)


def find(
    hospital: Hospital, level: str, keys: dict[str, str], *returns: str, **kw: Any
) -> list[Any]:
    """The matches of a relational query, as Match objects."""
    return list(run(QuerySpec(level, keys, returns, **kw), hospital))


def uids(hospital: Hospital, level: str, keys: dict[str, str], **kw: Any) -> set[str]:
    """The unique keys of the entities matching ``keys`` at ``level``."""
    unique = {
        "PATIENT": "PatientID",
        "STUDY": "StudyInstanceUID",
        "SERIES": "SeriesInstanceUID",
        "IMAGE": "SOPInstanceUID",
    }[level]
    return {m.values[unique] for m in find(hospital, level, keys, unique, **kw)}
