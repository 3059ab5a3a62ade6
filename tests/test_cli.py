"""The ``carina`` set-up and import commands, run as a user runs them (child processes)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from carina.accounts.models import Membership
from carina.archive.models import Instance, Study
from carina.audit.models import Action, ActorKind, AuditEvent
from carina.core.testing import child_env, run_carina, shipped_file, write_series

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def env(tmp_path: Path, settings, hospital) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return child_env(tmp_path / "home", storage_url=f"file://{settings.CARINA_STORAGE.path}")


def test_import_files_folders_and_zip_with_summary(
    tmp_path: Path, env: dict[str, str], hospital
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "cd"
    series = write_series(folder / "series1", 4)
    (folder / "DICOMDIR").write_bytes(b"index")
    archive = tmp_path / "upload.zip"
    extra = write_series(tmp_path / "zipped", 2)
    with zipfile.ZipFile(archive, "w") as zf:
        for path in extra:
            zf.write(path, f"study/{path.name}")
    result = run_carina(
        ["import", "--quiet", str(folder), str(archive), str(shipped_file("CT_small.dcm"))], env
    )
    assert result.returncode == 0, result.stderr
    assert (
        "7 stored, 0 already present, 0 replaced, 0 rejected, 1 skipped (DICOMDIR)" in result.stdout
    )
    assert Instance.objects.for_hospital(hospital).count() == 7
    source = Instance.objects.for_hospital(hospital).get(
        sha256__isnull=False, sop_instance_uid__startswith="1.3.6.1.4.1.5962"
    )
    assert source.source == "import"
    assert source.source_detail.endswith("CT_small.dcm")
    # The audit trail: one event per study imported, by the OS user running the command.
    imports = AuditEvent.objects.for_hospital(hospital).filter(action=Action.IMPORT)
    assert imports.count() == 3
    assert sorted(e.count for e in imports) == [1, 2, 4]
    assert {e.actor_kind for e in imports} == {ActorKind.CLI}
    assert all(e.actor and e.object_uid for e in imports)

    again = run_carina(["import", "--quiet", str(folder)], env)
    assert again.returncode == 0
    assert "0 stored, 4 already present" in again.stdout
    assert len(series) == 4


def test_import_rejections_name_the_file_and_fail_the_exit_code(
    tmp_path: Path, env: dict[str, str], hospital
) -> None:  # type: ignore[no-untyped-def]
    good = write_series(tmp_path / "good", 1)[0]
    bad = tmp_path / "report.txt"
    bad.write_text("not an image")
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(good, "../../etc/evil.dcm")
        zf.writestr(zipfile.ZipInfo("/abs/evil.dcm"), good.read_bytes())
        zf.writestr("ok/truncated.dcm", shipped_file("CT_small.dcm").read_bytes()[:5000])
    result = run_carina(
        ["import", str(good), str(bad), str(archive), str(tmp_path / "missing")], env
    )
    assert result.returncode == 1
    assert "1 stored, 0 already present, 0 replaced, 5 rejected" in result.stdout
    stderr = result.stderr
    assert f"rejected: {bad}: not a DICOM Part 10 file" in stderr
    assert f"rejected: {archive}!../../etc/evil.dcm: unsafe name in ZIP archive" in stderr
    assert f"rejected: {archive}!/abs/evil.dcm: unsafe name in ZIP archive" in stderr
    assert f"rejected: {archive}!ok/truncated.dcm: the file is truncated" in stderr
    assert f"rejected: {tmp_path / 'missing'}: no such file or folder" in stderr
    assert "100%" in stderr  # the progress bar ran
    assert Instance.objects.for_hospital(hospital).count() == 1
    assert not list(Path("/etc").glob("evil.dcm"))


def test_import_into_unknown_hospital_is_refused(env: dict[str, str]) -> None:
    result = run_carina(["import", "--hospital", "nowhere", "/dev/null"], env)
    assert result.returncode == 2
    assert "no hospital 'nowhere'" in result.stderr


def test_hospitals_add_and_import_into_it(tmp_path: Path, env: dict[str, str]) -> None:
    added = run_carina(
        ["hospitals", "add", "north", "--name", "North Clinic", "--ae", "NORTH"], env
    )
    assert added.returncode == 0, added.stderr
    assert "Added hospital 'north' (North Clinic); AE titles: NORTH." in added.stdout
    again = run_carina(
        ["hospitals", "add", "north", "--name", "North Clinic", "--ae", "NORTH"], env
    )
    assert "Updated hospital 'north'" in again.stdout
    clash = run_carina(["hospitals", "add", "south", "--name", "South", "--ae", "NORTH"], env)
    assert clash.returncode == 2
    assert "AE title 'NORTH' already belongs to hospital 'north'" in clash.stderr
    path = write_series(tmp_path / "s", 1)[0]
    assert run_carina(["import", "--hospital", "north", str(path)], env).returncode == 0
    assert Study.objects.all_hospitals().get().hospital.slug == "north"
    listed = run_carina(["hospitals", "list"], env)
    assert "north\tNorth Clinic\tNORTH" in listed.stdout


def test_createadmin_system_and_hospital_admins(env: dict[str, str]) -> None:
    result = run_carina(["createadmin", "--username", "root", "--password", "Sup3r-secret!x"], env)
    assert result.returncode == 0, result.stderr
    user = get_user_model().objects.get(username="root")
    assert user.is_superuser and user.is_staff
    assert user.check_password("Sup3r-secret!x")

    result = run_carina(["createadmin", "--username", "root", "--password", "0ther-secret!y"], env)
    assert "Updated user 'root'" in result.stdout
    user.refresh_from_db()
    assert user.check_password("0ther-secret!y")

    result = run_carina(
        [
            "createadmin",
            "--username",
            "ana",
            "--password",
            "Rad-pass-2026!",
            "--hospital",
            "default",
            "--role",
            "radiologist",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    membership = Membership.objects.get(user__username="ana")
    assert (membership.hospital.slug, membership.role) == ("default", "radiologist")
    assert not membership.user.is_superuser

    weak = run_carina(["createadmin", "--username", "bob", "--password", "123"], env)
    assert weak.returncode == 2
    assert "Password refused" in weak.stderr
    assert not get_user_model().objects.filter(username="bob").exists()
    bad_role = run_carina(
        [
            "createadmin",
            "--username",
            "bob",
            "--password",
            "Rad-pass-2026!",
            "--hospital",
            "default",
            "--role",
            "janitor",
        ],
        env,
    )
    assert "Unknown role 'janitor'" in bad_role.stderr
