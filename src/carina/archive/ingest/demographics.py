"""Patient demographics an object states, and when they differ from the archived patient's
(docs/ingest.md, "Patient demographics"): such differences are recorded, never written over
the archived values."""

from __future__ import annotations

from typing import Any

#: The demographics compared, as (Patient field, DICOM keyword).
DEMOGRAPHICS = (
    ("patient_name", "PatientName"),
    ("patient_birth_date", "PatientBirthDate"),
    ("patient_sex", "PatientSex"),
)


def differs(archived: Any, received: Any) -> bool:
    """Whether a received demographic differs from the archived one. An empty received value
    never differs. A date may be archived as a date or, read with raw SQL from SQLite, as its
    ISO text."""
    if received in (None, ""):
        return False
    if archived is None:
        return True
    if hasattr(received, "isoformat"):
        return str(archived) != received.isoformat()
    return bool(archived != received)
