"""``carina import PATH…``: files, folders (recursively) and ZIP archives through the ingest
pipeline, with a progress bar and a closing summary. Exit code 1 when anything was rejected.

The run leaves one ``import`` audit event per study and one summarizing the rejections, written
at its end (docs/audit.md)."""

from __future__ import annotations

import getpass
import os
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from tqdm import tqdm

from carina.archive.ingest import IngestError, Origin, ingest
from carina.archive.models import Source
from carina.archive.planner import refresh_planner_statistics
from carina.audit.actions import build, do_record_many
from carina.audit.models import Action, ActorKind, AuditEvent, ObjectType, Outcome
from carina.cli.setup import fail
from carina.tenancy.lookups import hospital_by_slug
from carina.tenancy.models import Hospital

#: DICOMDIR is the index of a DICOM medium (PS3.10 8.6), not an object to archive.
SKIPPED_NAMES = frozenset({"DICOMDIR"})


@dataclass
class ImportReport:
    """Outcome counts and the reasons for each rejected item."""

    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    #: (Study Instance UID, Patient ID) → outcome counts, for the audit trail.
    studies: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)

    def reject(self, name: str, reason: str) -> None:
        self.counts["rejected"] += 1
        self.rejected.append((name, reason))


@dataclass(frozen=True)
class Item:
    """One object to import: a file, or a member of a ZIP archive."""

    name: str
    path: Path
    member: str | None = None


def _walk(paths: list[str], report: ImportReport) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path
        else:
            report.reject(raw, "no such file or folder")


def _safe_member(name: str) -> bool:
    """A ZIP member name that stays inside the archive (no absolute path, no '..')."""
    pure = PurePosixPath(name.replace("\\", "/"))
    return not pure.is_absolute() and ".." not in pure.parts and ":" not in pure.parts[0]


def expand(files: Iterator[Path], report: ImportReport) -> Iterator[Item]:
    """Files as items; ZIP archives as one item per member."""
    for path in files:
        if path.name.upper() in SKIPPED_NAMES:
            report.counts["skipped"] += 1
            continue
        if zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as archive:
                    members = [m for m in archive.infolist() if not m.is_dir()]
            except (zipfile.BadZipFile, OSError) as exc:
                report.reject(str(path), f"unreadable ZIP archive: {exc}")
                continue
            for member in members:
                name = f"{path}!{member.filename}"
                if not _safe_member(member.filename):
                    report.reject(
                        name,
                        "unsafe name in ZIP archive (absolute path or '..'); member not imported",
                    )
                elif PurePosixPath(member.filename).name.upper() in SKIPPED_NAMES:
                    report.counts["skipped"] += 1
                else:
                    yield Item(name, path, member.filename)
        else:
            yield Item(str(path), path)


def _open(item: Item) -> tuple[BinaryIO | Path, zipfile.ZipFile | None]:
    if item.member is None:
        return item.path, None
    archive = zipfile.ZipFile(item.path)
    return cast(BinaryIO, archive.open(item.member)), archive


def import_items(
    items: list[Item], hospital: Hospital, report: ImportReport, progress: bool
) -> None:
    bar = tqdm(items, unit="file", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    for item in bar:
        source, archive = _open(item)
        try:
            result = ingest(
                source,
                hospital=hospital,
                name=item.name,
                origin=Origin(Source.IMPORT, item.name[-255:]),
            )
            report.counts[result.status.value] += 1
            key = (result.study_instance_uid, result.patient_id)
            report.studies.setdefault(key, Counter())[result.status.value] += 1
        except IngestError as exc:
            report.reject(item.name, exc.reason)
        except zipfile.BadZipFile as exc:
            report.reject(item.name, f"corrupt ZIP member: {exc}")
        finally:
            if archive is not None:
                archive.close()
        bar.set_postfix(
            stored=report.counts["stored"], rejected=report.counts["rejected"], refresh=False
        )


def run_import(paths: list[str], slug: str, progress: bool = True) -> int:
    hospital = hospital_by_slug(slug)
    if hospital is None:
        return fail(f"no hospital {slug!r}; add it with: carina hospitals add {slug} …")
    report = ImportReport()
    items = list(expand(_walk(paths, report), report))
    try:
        import_items(items, hospital, report, progress)
    finally:
        record_import(hospital, report)
    if report.counts["stored"]:
        refresh_planner_statistics()  # a bulk load changes what the best query plans are
    counts = report.counts
    print(
        f"Imported into {hospital.slug}: {counts['stored']} stored, "
        f"{counts['already_present']} already present, {counts['replaced']} replaced, "
        f"{counts['rejected']} rejected, {counts['skipped']} skipped (DICOMDIR)."
    )
    for name, reason in report.rejected:
        sys.stderr.write(f"rejected: {name}: {reason}\n")
    return 1 if report.rejected else 0


def os_user() -> str:
    """Who runs the command, for the audit trail."""
    try:
        return getpass.getuser()
    except Exception:
        return f"uid {os.getuid()}"


def import_events(hospital: Hospital, report: ImportReport, actor: str) -> list[AuditEvent]:
    """One ``import`` event per study, and one summarizing the rejected items."""
    base = {
        "hospital": hospital,
        "actor": actor,
        "actor_kind": ActorKind.CLI,
        "action": Action.IMPORT,
    }
    events = []
    for (study_uid, patient_id), counts in report.studies.items():
        events.append(
            build(
                **base,
                object_type=ObjectType.STUDY,
                object_uid=study_uid,
                patient_id=patient_id,
                outcome=Outcome.SUCCESS,
                count=sum(counts.values()),
                detail=", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
            )
        )
    if report.rejected:
        shown = "; ".join(f"{name}: {reason}" for name, reason in report.rejected[:5])
        more = len(report.rejected) - 5
        events.append(
            build(
                **base,
                outcome=Outcome.FAILURE,
                count=len(report.rejected),
                detail=f"{len(report.rejected)} rejected: {shown}"
                + (f" (+{more} more)" if more > 0 else ""),
            )
        )
    return events


def record_import(hospital: Hospital, report: ImportReport) -> None:
    """Write the run's audit events (one transaction)."""
    do_record_many(import_events(hospital, report, os_user()))
