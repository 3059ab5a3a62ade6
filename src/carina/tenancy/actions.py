"""State changes of hospitals (``do_*``), each atomic."""

from __future__ import annotations

from django.db import transaction

from carina.config.env import ConfigError, validate_ae_title
from carina.tenancy.models import Hospital, HospitalAETitle


class TenancyError(ValueError):
    """A hospital change that cannot be made, with the reason."""


def do_add_hospital(slug: str, name: str, ae_titles: list[str]) -> tuple[Hospital, bool]:
    """Create hospital ``slug`` or bring an existing one up to date (idempotent).

    Returns the hospital and whether it was created. An AE title that already belongs to
    another hospital is refused: the called AE title must pick exactly one hospital.
    """
    titles = []
    for raw in ae_titles:
        try:
            titles.append(validate_ae_title(raw))
        except ConfigError as exc:
            raise TenancyError(str(exc)) from None
    with transaction.atomic():
        hospital, created = Hospital.objects.get_or_create(slug=slug, defaults={"name": name})
        if not created and hospital.name != name:
            hospital.name = name
            hospital.save(update_fields=["name", "updated_at"])
        for title in titles:
            owner = (
                HospitalAETitle.objects.filter(ae_title=title).select_related("hospital").first()
            )
            if owner is not None and owner.hospital_id != hospital.pk:
                raise TenancyError(
                    f"AE title {title!r} already belongs to hospital {owner.hospital.slug!r}; "
                    "each AE title selects one hospital."
                )
            if owner is None:
                HospitalAETitle.objects.create(hospital=hospital, ae_title=title)
    return hospital, created
