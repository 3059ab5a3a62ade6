"""``Study.search_text`` (the free-text search's column) and ``Study.sort_patient_name``
(the sort by patient name), with their indexes, filled for the studies already archived
(docs/ui.md, "Search speed"); and an index for the study status."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

SEPARATOR = "\x1f"
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
BATCH = 2000


def _text(values: tuple[str, ...]) -> str:
    # As carina.archive.models.search_text at the time of this migration.
    cleaned = (v.translate(ASCII_LOWER).replace(SEPARATOR, "") for v in values)
    return SEPARATOR + "".join(v + SEPARATOR for v in cleaned)


def backfill(apps: Any, schema_editor: Any) -> None:
    Study = apps.get_model("archive", "Study")
    rows = Study._default_manager.using(schema_editor.connection.alias).order_by("pk")
    last = 0
    while True:
        batch = list(
            rows.filter(pk__gt=last).select_related("patient").only(
                "pk",
                "accession_number",
                "study_description",
                "patient__patient_name",
                "patient__patient_id",
            )[:BATCH]
        )
        if not batch:
            return
        for study in batch:
            study.sort_patient_name = study.patient.patient_name
            study.search_text = _text(
                (
                    study.patient.patient_name,
                    study.patient.patient_id,
                    study.accession_number,
                    study.study_description,
                )
            )
        Study._default_manager.using(schema_editor.connection.alias).bulk_update(
            batch, ["search_text", "sort_patient_name"]
        )
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("archive", "0001_initial"),
        ("tenancy", "0002_default_hospital"),
    ]

    operations = [
        migrations.AddField(
            model_name="study",
            name="search_text",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.AddIndex(
            model_name="study",
            index=models.Index(fields=["hospital", "updated_at"], name="archive_stu_hospita_bd6d4d_idx"),
        ),
        migrations.AddField(
            model_name="study",
            name="sort_patient_name",
            field=models.CharField(blank=True, default="", editable=False, max_length=324),
        ),
        migrations.AddIndex(
            model_name="study",
            index=models.Index(fields=["hospital", "search_text"], name="study_search_text"),
        ),
        migrations.AddIndex(
            model_name="study",
            index=models.Index(fields=["hospital", "sort_patient_name"], name="study_patient_name"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
