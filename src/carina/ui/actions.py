"""State changes the web application needs that :mod:`carina.tenancy.actions` does not offer
yet (``do_*``, atomic): a hospital's policies and removing one of its AE titles. They belong
with ``do_add_hospital``; they live here until that module gains them."""

from __future__ import annotations

from django.db import transaction

from carina.tenancy.actions import TenancyError
from carina.tenancy.models import DuplicatePolicy, Hospital, HospitalAETitle, UnknownCallingAEPolicy


def do_set_policies(
    hospital: Hospital, *, duplicate_policy: str, unknown_calling_ae_policy: str
) -> Hospital:
    """Set what the archive does with an object that arrives again with other content, and
    what the DICOM listener does with an unknown calling AE title."""
    if duplicate_policy not in DuplicatePolicy.values:
        raise TenancyError(f"Unknown duplicate policy {duplicate_policy!r}.")
    if unknown_calling_ae_policy not in UnknownCallingAEPolicy.values:
        raise TenancyError(f"Unknown calling AE policy {unknown_calling_ae_policy!r}.")
    with transaction.atomic():
        locked = Hospital.objects.select_for_update().get(pk=hospital.pk)
        locked.duplicate_policy = duplicate_policy
        locked.unknown_calling_ae_policy = unknown_calling_ae_policy
        locked.save(update_fields=["duplicate_policy", "unknown_calling_ae_policy", "updated_at"])
    return locked


def do_remove_ae_title(hospital: Hospital, ae_title: str) -> None:
    """Stop answering to ``ae_title`` for ``hospital``; a hospital keeps at least one."""
    with transaction.atomic():
        titles = list(
            HospitalAETitle.objects.select_for_update()
            .filter(hospital=hospital)
            .values_list("ae_title", flat=True)
        )
        if ae_title not in titles:
            raise TenancyError(f"{hospital.name} does not answer to {ae_title!r}.")
        if len(titles) == 1:
            raise TenancyError(
                f"{ae_title!r} is the only AE title of {hospital.name}; add another first, so "
                "that modalities can still reach it."
            )
        HospitalAETitle.objects.filter(hospital=hospital, ae_title=ae_title).delete()
