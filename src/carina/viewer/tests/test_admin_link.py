"""The archive browser (the admin, today's only UI) links each study to the viewer."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from carina.archive.ingest import Origin, ingest
from carina.archive.models import Source, Study
from carina.core.testing import write_series
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


def test_study_list_and_page_open_the_study_in_the_viewer(
    admin_client: Client, tmp_path: Path, hospital: Hospital
) -> None:
    for path in write_series(tmp_path / "ct", 2):
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))
    study = Study.objects.for_hospital(hospital).get()
    link = f"/viewer/viewer?StudyInstanceUIDs={study.study_instance_uid}"
    listing = admin_client.get("/admin/archive/study/").content.decode()
    assert f'href="{link}"' in listing and "Open in viewer" in listing
    detail = admin_client.get(f"/admin/archive/study/{study.pk}/change/").content.decode()
    assert f'href="{link}"' in detail
    assert f'href="{link}&amp;hangingprotocolId=mpr"' in detail
