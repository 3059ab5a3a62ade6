"""Set-up commands: ``createadmin``, ``hospitals add``, ``hospitals list`` (idempotent)."""

from __future__ import annotations

import sys

from carina.accounts.actions import AccountError, do_create_admin
from carina.tenancy.actions import TenancyError, do_add_hospital
from carina.tenancy.lookups import hospital_by_slug
from carina.tenancy.models import Hospital


def fail(message: str) -> int:
    """Print an error for a person and return the exit code."""
    sys.stderr.write(f"carina: {message}\n")
    return 2


def createadmin(username: str, password: str, slug: str | None, role: str | None) -> int:
    hospital = None
    if slug is not None:
        hospital = hospital_by_slug(slug)
        if hospital is None:
            return fail(f"no hospital {slug!r}; add it with: carina hospitals add {slug} …")
    try:
        user, created = do_create_admin(username, password, hospital, role)
    except AccountError as exc:
        return fail(str(exc))
    scope = f"of hospital {slug!r}" if slug else "(system administrator, every hospital)"
    print(f"{'Created' if created else 'Updated'} user {user.username!r} {scope}.")
    return 0


def hospitals_add(slug: str, name: str, ae_titles: list[str]) -> int:
    try:
        hospital, created = do_add_hospital(slug, name, ae_titles)
    except TenancyError as exc:
        return fail(str(exc))
    titles = ", ".join(hospital.ae_titles.values_list("ae_title", flat=True)) or "none"
    print(f"{'Added' if created else 'Updated'} hospital {slug!r} ({name}); AE titles: {titles}.")
    return 0


def hospitals_list() -> int:
    for hospital in Hospital.objects.prefetch_related("ae_titles"):
        titles = ", ".join(t.ae_title for t in hospital.ae_titles.all()) or "-"
        print(f"{hospital.slug}\t{hospital.name}\t{titles}")
    return 0
