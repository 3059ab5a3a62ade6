"""Celery tasks of operations (scheduled by beat, ``carina.config.celery``)."""

from __future__ import annotations

from typing import Any

from carina.archive.planner import refresh_planner_statistics
from carina.config.celery import app

#: Celery's name of the hourly refresh (the beat schedule names it).
REFRESH_PLANNER_STATISTICS = "carina.ops.refresh_planner_statistics"

# Registered explicitly: Celery's decorator is untyped.
refresh_statistics: Any = app.task(name=REFRESH_PLANNER_STATISTICS, ignore_result=True)(
    refresh_planner_statistics
)
