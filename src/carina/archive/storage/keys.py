"""Blob keys are derived from validated, hashed identifiers, never from raw tag text."""

from __future__ import annotations

import hashlib


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("ascii")).hexdigest()


def blob_key(
    hospital_id: int, study_uid: str, series_uid: str, sop_uid: str, content_sha256: str
) -> str:
    """The storage key of one object version.

    ``{hospital}/{ss}/{study}/{series}/{sop}-{content}.dcm`` where each part is a SHA-256 prefix
    of the UID (``ss`` spreads studies over 256 folders). The content hash makes a replaced
    object a new key, so an object is never rewritten in place.
    """
    study = _digest(study_uid)
    return (
        f"{hospital_id}/{study[:2]}/{study[:24]}/{_digest(series_uid)[:24]}/"
        f"{_digest(sop_uid)[:40]}-{content_sha256[:16]}.dcm"
    )
