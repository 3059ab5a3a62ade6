"""Lock-out: whether a user name may try a password now (docs/accounts.md, "Lock-out").
Counting failures and unlocking are in :mod:`carina.accounts.actions`."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from carina.accounts.models import SignInLock


def lock_key(username: str) -> str:
    """The name as the lock-out keeps it (as typed, cut to the column's size)."""
    return username[:150]


def locked_until(username: str) -> dt.datetime | None:
    """The end of the lock on ``username``, or ``None`` when it may sign in."""
    until = (
        SignInLock.objects.filter(username=lock_key(username), locked_until__gt=timezone.now())
        .values_list("locked_until", flat=True)
        .first()
    )
    return until
