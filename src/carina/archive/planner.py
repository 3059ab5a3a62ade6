"""The query planner's statistics of the embedded database.

SQLite chooses an index without knowing how many rows each value selects unless ``ANALYZE``
stored statistics (``sqlite_stat1``). Without them, an equality on ``hospital_id`` looks as
selective as one on ``series_id`` or ``patient_id``, and SQLite may walk every row of the
hospital: at 100,000 studies an exact PatientID search took 390 ms and a series thumbnail
180 ms instead of a few (BENCHMARKS.md, DICOMweb). :func:`refresh_planner_statistics` gathers
them (``ANALYZE`` with ``analysis_limit``: an estimate from a sample of each index, so it
takes milliseconds, not a scan). It runs after ``carina migrate``, after ``carina import``
and every hour from beat (``carina.ops.refresh_planner_statistics``). PostgreSQL keeps its
own statistics (autovacuum's ANALYZE), so there it does nothing.

A connection reads the statistics with the schema and keeps them until the schema changes,
and Carina keeps connections open (``CONN_MAX_AGE``, 10 minutes): a web server started
before a refresh went on planning without statistics (seen in ``benchmarks/dicomweb.py``,
whose server starts before the data is loaded). So the refresh also changes the
schema (a table created and dropped at once), which makes every connection read the schema,
and with it the new statistics, before its next statement.
"""

from __future__ import annotations

from django.db import connection, transaction

#: Rows of each index that ANALYZE samples (SQLite's ``PRAGMA analysis_limit``).
ANALYSIS_LIMIT = 1000
#: Created and dropped after ANALYZE: the schema change other connections notice.
_SCHEMA_TOUCH = "carina_planner_statistics_refreshed"


def refresh_planner_statistics() -> bool:
    """Refresh SQLite's planner statistics; False (nothing done) on another database."""
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        # One write transaction: two refreshes at once (an import and the hourly one) take
        # turns instead of dropping each other's table.
        with transaction.atomic():
            cursor.execute("ANALYZE")
            cursor.execute(f"CREATE TABLE {_SCHEMA_TOUCH} (refreshed INTEGER)")
            cursor.execute(f"DROP TABLE {_SCHEMA_TOUCH}")
    return True
