"""Blob keys are derived from validated, hashed identifiers, never from raw tag text."""

from __future__ import annotations

import hashlib
import secrets


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("ascii")).hexdigest()


def blob_key(
    hospital_id: int, study_uid: str, series_uid: str, sop_uid: str, content_sha256: str
) -> str:
    """A new storage key for one attempt to store an object.

    ``{hospital}/{ss}/{study}/{series}/{sop}-{content}-{nonce}.dcm`` where each part is a
    SHA-256 prefix of the UID (``ss`` spreads studies over 256 folders), ``content`` a prefix of
    the object's SHA-256 and ``nonce`` random. Every attempt writes its own key, so an object
    is never rewritten in place, and a failed attempt can delete its blob without touching the
    blob of a concurrent attempt that stores the same bytes.
    """
    study = _digest(study_uid)
    return (
        f"{hospital_id}/{study[:2]}/{study[:24]}/{_digest(series_uid)[:24]}/"
        f"{_digest(sop_uid)[:40]}-{content_sha256[:16]}-{secrets.token_hex(4)}.dcm"
    )
