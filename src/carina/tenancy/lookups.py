"""Read-only look-ups on hospitals."""

from __future__ import annotations

from carina.tenancy.models import Hospital, HospitalAETitle

DEFAULT_HOSPITAL_SLUG = "default"


def hospital_for_called_ae(ae_title: str) -> Hospital | None:
    """The hospital that answers to ``ae_title`` (PS3.8 7.1.1.4, Called AE Title), if any."""
    row = (
        HospitalAETitle.objects.filter(ae_title=ae_title.strip()).select_related("hospital").first()
    )
    return row.hospital if row else None


def hospital_by_slug(slug: str) -> Hospital | None:
    """The hospital with ``slug``, or None."""
    return Hospital.objects.filter(slug=slug).first()
