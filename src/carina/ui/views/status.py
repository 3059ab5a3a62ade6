"""System status (``/manage/status/``): the health checks of :mod:`carina.ops.checks`
(database, storage, task broker, DICOM listener, workers, and whatever other apps register),
each worker seen recently (its heartbeat, :mod:`carina.routing.heartbeat`), the transfer
queue, free disk space and the version — for hospital and system administrators."""

from __future__ import annotations

import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

import carina
from carina.accounts.access import Permission
from carina.ops.checks import CHECKS
from carina.routing.heartbeat import describe, is_fresh, recent_workers
from carina.routing.queue import depth
from carina.ui.access import page

#: Below this share of free space, the disk is shown as a warning.
LOW_DISK = 0.10


@dataclass(frozen=True)
class Row:
    name: str
    state: str  # ok, warn, fail
    detail: str


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize().replace("Dicom", "DICOM")


def health_rows() -> list[Row]:
    rows = []
    for check in CHECKS:
        try:
            ok, detail = check.run()
        except Exception as exc:  # a check must never break the page
            ok, detail = False, f"the check failed: {exc}"
        state = "ok" if ok else ("fail" if check.required else "warn")
        rows.append(Row(_label(check.name), state, detail))
    return rows


def disk_rows() -> list[Row]:
    """Free space where Carina writes: CARINA_HOME, and the blob folder when it is local."""
    places: dict[str, Path] = {"Data folder (CARINA_HOME)": Path(settings.CARINA_HOME)}
    storage = settings.CARINA_STORAGE
    blob_folder = getattr(storage, "path", None)
    if getattr(storage, "scheme", "") == "file" and blob_folder is not None:
        places["DICOM files"] = Path(blob_folder)
    rows = []
    seen: set[int] = set()
    for label, path in places.items():
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            device = probe.stat().st_dev
            usage = shutil.disk_usage(probe)
        except OSError as exc:
            rows.append(Row(label, "fail", f"{path}: {exc}"))
            continue
        if device in seen:
            continue
        seen.add(device)
        share = usage.free / usage.total if usage.total else 0.0
        state = "ok" if share >= LOW_DISK else "warn"
        rows.append(
            Row(
                label,
                state,
                f"{_size(usage.free)} free of {_size(usage.total)} ({share:.0%}) at {path}",
            )
        )
    return rows


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def queue_row() -> Row:
    try:
        waiting = depth()
    except Exception as exc:
        return Row("Transfer queue", "fail", f"cannot be read: {exc}")
    return Row(
        "Transfer queue",
        "ok",
        f"{waiting} transfer{'s' if waiting != 1 else ''} waiting or being sent",
    )


def worker_rows() -> list[Row]:
    """One row per worker seen within the last hour: alive (a fresh heartbeat), or a
    warning when its heartbeat stopped without a clean stop (killed, hung, machine down)."""
    now = timezone.now()
    try:
        workers = recent_workers(now)
    except Exception as exc:
        return [Row("Workers", "fail", f"cannot be read: {exc}")]
    rows = []
    for worker in workers:
        if is_fresh(worker, now):
            rows.append(Row(f"Worker {worker.hostname}", "ok", describe(worker, now)))
        else:
            rows.append(
                Row(
                    f"Worker {worker.hostname}",
                    "warn",
                    f"{describe(worker, now)}: stopped or stuck without a clean stop",
                )
            )
    return rows


def _overall(rows: list[Row]) -> str:
    if any(r.state == "fail" for r in rows):
        return "fail"
    return "warn" if any(r.state == "warn" for r in rows) else "ok"


@page(Permission.MANAGE_NODES)
def status(request: HttpRequest) -> HttpResponse:
    health = health_rows()
    workers = worker_rows()
    context: dict[str, Any] = {
        "health": health,
        "workers": workers,
        "queue": queue_row(),
        "disks": disk_rows(),
        "version": carina.__version__,
        "versions": {
            "Python": platform.python_version(),
            "Django": django.get_version(),
            "Database": django.db.connection.vendor,
        },
        "overall": _overall(health + workers),
    }
    return render(request, "ui/manage/status.html", context)
