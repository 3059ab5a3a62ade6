"""The CARINA_* loader: defaults, typed values, and clear refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from carina.config.env import ConfigError, load_env


def test_defaults_are_the_embedded_mode(tmp_path: Path) -> None:
    env = load_env({"CARINA_HOME": str(tmp_path)})
    assert (env.http_host, env.http_port) == ("127.0.0.1", 8000)
    assert (env.dicom_host, env.dicom_port, env.ae_title) == ("0.0.0.0", 11112, "CARINA")
    assert env.dicom_processes == 2
    assert env.sqlite_path == tmp_path / "carina.sqlite3"
    assert env.storage.scheme == "file"
    assert env.storage.path == tmp_path / "blobs"


def test_sqlite_url_names_an_absolute_file() -> None:
    env = load_env({"CARINA_DATABASE_URL": "sqlite:////srv/carina/db.sqlite3"})
    assert env.sqlite_path == Path("/srv/carina/db.sqlite3")


def test_server_mode_values_are_parsed() -> None:
    env = load_env(
        {
            "CARINA_DATABASE_URL": "postgres://carina@db.local:5432/pacs",
            "CARINA_STORAGE_URL": "s3://images/archive?endpoint_url=http://127.0.0.1:9000&region=eu",
            "CARINA_BROKER_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert env.sqlite_path is None
    assert (env.storage.scheme, env.storage.bucket, env.storage.prefix) == (
        "s3",
        "images",
        "archive",
    )
    assert env.storage.endpoint_url == "http://127.0.0.1:9000"
    assert env.storage.region == "eu"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CARINA_HTTP_PROT": "80"}, "Unknown setting(s) CARINA_HTTP_PROT"),
        ({"CARINA_HTTP_PORT": "eighty"}, "CARINA_HTTP_PORT='eighty' is not a port number"),
        ({"CARINA_DICOM_PORT": "70000"}, "a port is between 1 and 65535"),
        ({"CARINA_HTTP_PORT": "11112"}, "both 11112"),
        ({"CARINA_AE_TITLE": "A_VERY_LONG_AE_TITLE"}, "not a valid DICOM AE title"),
        ({"CARINA_AE_TITLE": "BAD\\AE"}, "not a valid DICOM AE title"),
        ({"CARINA_DATABASE_URL": "mysql://x/y"}, "use postgres://"),
        ({"CARINA_DATABASE_URL": "sqlite:///relative.db"}, "needs an absolute path"),
        ({"CARINA_STORAGE_URL": "ftp://x"}, "must be file:// or s3://"),
        ({"CARINA_STORAGE_URL": "s3://"}, "name the bucket"),
        ({"CARINA_STORAGE_URL": "s3://b?endpoint=x"}, "unknown option(s) endpoint"),
        ({"CARINA_STORAGE_URL": "file://relative"}, "needs an absolute path"),
        ({"CARINA_BROKER_URL": "kafka://x"}, "use redis://"),
        ({"CARINA_DEBUG": "maybe"}, "use true or false"),
        ({"CARINA_LOG_LEVEL": "LOUD"}, "CARINA_LOG_LEVEL='LOUD'"),
        ({"CARINA_WEB_WORKERS": "0"}, "between 1 and 64"),
        ({"CARINA_DICOM_PROCESSES": "0"}, "CARINA_DICOM_PROCESSES"),
        ({"CARINA_DICOM_PROCESSES": "two"}, "CARINA_DICOM_PROCESSES"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_env(environ)
    assert message in str(caught.value)


def test_start_up_stops_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "carina", "migrate"],
        env={"PATH": "/usr/bin:/bin", "CARINA_HOME": str(tmp_path), "CARINA_HTTP_PORT": "x"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "carina: configuration error: CARINA_HTTP_PORT='x' is not a port number" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
