"""Health checks: each returns (ok, detail). Later parts (broker, DICOM listener) add theirs."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection

from carina.archive.storage import get_storage

Check = Callable[[], tuple[bool, str]]


def check_database() -> tuple[bool, str]:
    """The database answers a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return False, f"database unreachable: {exc}"
    return True, connection.vendor


def check_storage() -> tuple[bool, str]:
    """The blob store is reachable and writable."""
    try:
        get_storage().probe()
    except Exception as exc:
        return False, f"storage unavailable: {exc}"
    return True, get_storage().describe()


READINESS_CHECKS: dict[str, Check] = {"database": check_database, "storage": check_storage}
