"""Worklist search speed on a large archive: one page of the worklist's study search (the
queries the page runs: the rows of the page, and the capped count of the matches) for the
free-text search, sorts and filters, on 100,000 studies.

Run ``.venv/bin/python benchmarks/worklist.py`` (``--quick``: 10,000 studies, fewer
repetitions; ``--studies N``; ``--no-postgres``; ``--pg-name NAME``).

Data: a fresh Carina (fresh ``CARINA_HOME``, fresh database, ``carina migrate``) of one
hospital with N studies of N/2 patients, written with ``bulk_create`` (untimed): names drawn
from a few hundred family and given names, accession numbers, 40 study descriptions, study
dates over five years, and every 50th study still *receiving*.

Each row runs :func:`carina.ui.worklist.studies` then :func:`carina.ui.pagination.paginate`
(50 rows, page 1), as the worklist view does, in a child process with Django set up; the
timing is the median of the repetitions after one warm-up. The row "(before)" runs the
free-text search as it was before ``Study.search_text`` (the name rule over the four values,
through the join to Patient), for comparison.

Progress goes to stderr, the table to stdout. Nothing is written to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    carina_env,
    database,
    migrate,
    pg_version,
    say,
    setup_django,
    text_table,
)

PAGE_SIZE = 50

#: (label, worklist form values); "before" rows use the former free-text filter.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("default page (newest first)", {}),
    ("q=smith (many matches)", {"q": "smith"}),
    ("q=garcia^mar (few matches)", {"q": "garcia^mar"}),
    ("q=a00012345 (one accession)", {"q": "a00012345"}),
    ("q=zzzz (no match)", {"q": "zzzz"}),
    ("q=SMITH^J* (wild card)", {"q": "SMITH^J*"}),
    ("sort by patient name", {"ordering": "patient_name"}),
    ("sort by patient name, reversed", {"ordering": "-patient_name"}),
    ("q=smith, sort by patient name", {"q": "smith", "ordering": "patient_name"}),
    ("patient_name=smith", {"patient_name": "smith"}),
    ("status=receiving", {"status": "receiving"}),
    ("status=stored", {"status": "stored"}),
    ("modality=MR", {"modality": ["MR"]}),
    ("(before) q=smith", {"q": "smith", "before": True}),
    ("(before) q=zzzz", {"q": "zzzz", "before": True}),
]

FAMILY = [
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "MARTIN",
    "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY", "MOREAU",
    "MULLER", "SCHMIDT", "SCHNEIDER", "FISCHER", "WEBER", "MEYER", "WAGNER", "BECKER",
    "ROSSI", "RUSSO", "FERRARI", "ESPOSITO", "BIANCHI", "ROMANO", "COLOMBO", "RICCI",
    "NOVAK", "KOWALSKI", "NIELSEN", "HANSEN", "JANSEN", "DE JONG", "VAN DIJK", "OBRIEN",
    "MURPHY", "KELLY", "WALSH", "SILVA", "SANTOS", "FERREIRA", "PEREIRA", "COSTA",
]  # fmt: skip
GIVEN = [
    "JOHN", "JANE", "MARY", "PETER", "ANNA", "LUCAS", "EMMA", "NOAH", "MIA", "LEO", "SOFIA",
    "MARIE", "PAUL", "CLAIRE", "MARC", "JULIA", "DAVID", "SARA", "TOM", "ELENA", "MARTA",
    "JAN", "EVA", "IVAN", "OLGA", "LUIS", "ANA", "JOSE", "MARIA", "PEDRO",
]  # fmt: skip
DESCRIPTIONS = [
    f"{m} {p}"
    for m in ("CT", "MR", "XR", "US")
    for p in ("HEAD", "CHEST", "ABDOMEN", "PELVIS", "SPINE", "KNEE", "HIP", "SHOULDER",
              "ANKLE", "WRIST")
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Child: fill the database, then time each case


def fill(studies: int, seed: int = 7) -> None:
    import datetime as dt

    from django.db import transaction
    from django.utils import timezone

    from carina.archive.models import Patient, Series, Study, search_text
    from carina.tenancy.lookups import hospital_by_slug

    hospital = hospital_by_slug("default")
    assert hospital is not None
    rng = random.Random(seed)
    patients_count = max(1, studies // 2)
    batch = 5000
    say(f"  writing {patients_count} patients and {studies} studies …")
    start = time.perf_counter()
    patients: list[Patient] = []
    for first in range(0, patients_count, batch):
        rows = [
            Patient(
                hospital=hospital,
                patient_id=f"P{n:07d}",
                patient_name=f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}",
                patient_birth_date=dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(30000)),
                patient_sex=rng.choice("MF"),
            )
            for n in range(first, min(patients_count, first + batch))
        ]
        with transaction.atomic():
            patients += Patient.objects.bulk_create(rows)
    today = timezone.localdate()
    now = timezone.now()
    study_pks: list[int] = []
    for first in range(0, studies, batch):
        rows = []
        series_rows = []
        for n in range(first, min(studies, first + batch)):
            patient = patients[n % patients_count]
            description = rng.choice(DESCRIPTIONS)
            accession = f"A{n:08d}"
            rows.append(
                Study(
                    hospital=hospital,
                    patient=patient,
                    study_instance_uid=f"1.2.826.0.1.3680043.10.1.{n}",
                    study_date=today - dt.timedelta(days=rng.randrange(5 * 365)),
                    study_time=dt.time(rng.randrange(24), rng.randrange(60)),
                    accession_number=accession,
                    study_description=description,
                    modalities_in_study=description[:2].replace("XR", "CR"),
                    number_of_series=1,
                    number_of_instances=rng.randrange(1, 400),
                    sort_patient_name=patient.patient_name,
                    search_text=search_text(
                        (patient.patient_name, patient.patient_id, accession, description)
                    ),
                )
            )
        with transaction.atomic():
            made = Study.objects.bulk_create(rows)
            study_pks += [study.pk for study in made]
            for study in made:
                series_rows.append(
                    Series(
                        hospital=hospital,
                        study=study,
                        series_instance_uid=study.study_instance_uid + ".1",
                        modality=study.modalities_in_study,
                        series_number=1,
                        number_of_instances=study.number_of_instances,
                    )
                )
            Series.objects.bulk_create(series_rows)
        say(f"    {min(studies, first + batch)}/{studies} ({time.perf_counter() - start:.1f} s)")
    # Every 50th study is receiving; the others last changed an hour ago or more.
    old = now - dt.timedelta(hours=1)
    Study.objects.for_hospital(hospital).update(updated_at=old)
    receiving = Study.objects.for_hospital(hospital).filter(pk__in=study_pks[::50])
    receiving.update(updated_at=now)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(repeat: int) -> dict[str, dict[str, float | int]]:
    from django.db import reset_queries
    from django.http import QueryDict

    from carina.archive.filters import text_q
    from carina.archive.models import Study
    from carina.tenancy.lookups import hospital_by_slug
    from carina.ui.pagination import paginate
    from carina.ui.worklist import WorklistForm, studies

    hospital = hospital_by_slug("default")
    assert hospital is not None
    results: dict[str, dict[str, float | int]] = {}
    for label, values in CASES:
        values = dict(values)
        before = values.pop("before", False)
        data = QueryDict(mutable=True)
        for key, value in values.items():
            if isinstance(value, list):
                data.setlist(key, value)
            else:
                data[key] = value

        def page(data: QueryDict = data, before: bool = before) -> int:
            form = WorklistForm(data, hospital=hospital)
            assert form.is_valid(), form.errors
            cleaned = dict(form.cleaned_data)
            if before:
                q = cleaned.pop("q")
                rows, _ = studies(hospital, cleaned)
                rows = rows.filter(
                    text_q("patient__patient_name", q)
                    | text_q("patient__patient_id", q)
                    | text_q("accession_number", q)
                    | text_q("study_description", q)
                )
            else:
                rows, errors = studies(hospital, cleaned)
                assert not errors, errors
            result = paginate(rows, 1, PAGE_SIZE)
            return result.count

        count = page()  # warm-up
        timings = []
        for _ in range(repeat):
            reset_queries()
            started = time.perf_counter()
            page()
            timings.append(time.perf_counter() - started)
        results[label] = {"ms": statistics.median(timings) * 1000, "count": count}
        say(f"    {label}: {results[label]['ms']:.1f} ms ({count} matches)")
    assert Study.objects.for_hospital(hospital).exists()
    return results


def child(studies: int, repeat: int) -> None:
    setup_django()
    fill(studies)
    print(json.dumps(measure(repeat)))


# --------------------------------------------------------------------------------------------
# Parent


def run(kind: str, studies: int, repeat: int, pg_name: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="carina-bench-worklist-") as scratch:
        home = Path(scratch)
        with database(kind, home, pg_name) as url:
            env = carina_env(home, url, ROOT / "src")
            say(f"{kind}: carina migrate …")
            migrate(env)
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(studies), "--repeat", str(repeat)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"{kind}: the measuring child failed ({done.returncode})")
            result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 studies, 3 repetitions")
    parser.add_argument("--studies", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--pg-name", default=None, help="PostgreSQL database name to use")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.repeat or 5)
        return
    studies = args.studies or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (3 if args.quick else 7)
    kinds = ["SQLite"]
    if not args.no_postgres and (version := pg_version()):
        say(f"PostgreSQL {version}")
        kinds.append("PostgreSQL")
    results = {kind: run(kind, studies, repeat, args.pg_name) for kind in kinds}
    headers = ["search (one page of 50)", *(f"{k} ms" for k in kinds), "matches"]
    rows = [
        [
            label,
            *(f"{results[k][label]['ms']:.0f}" for k in kinds),
            f"{results[kinds[0]][label]['count']:,}",
        ]
        for label, _ in CASES
    ]
    print(f"Worklist search, {studies:,} studies, median of {repeat} (ms)")
    print(text_table(headers, rows, left=1))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
