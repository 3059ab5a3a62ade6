"""Fixtures for DICOMweb tests: users of two hospitals, a live Carina web server
(pytest-django's ``live_server``) and ``dicomweb-client`` sessions signed in with a Bearer
token, and helpers that store objects through the ingest pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from carina.accounts.actions import do_create_admin
from carina.archive.ingest.pipeline import IngestResult, Origin, ingest
from carina.archive.models import Source
from carina.core.testing import make_ct_slice, write_series
from carina.dicomweb.auditing import forget_viewings
from carina.tenancy.models import Hospital

PASSWORD = "Carina-test-pw-1"


@pytest.fixture(autouse=True)
def _fresh_viewing_audit() -> None:
    """Each test starts with no image fetch remembered (auditing.record_viewing)."""
    forget_viewings()


@pytest.fixture(autouse=True)
def _close_keep_alive_connections(request: pytest.FixtureRequest) -> Iterator[None]:
    """Close the test's HTTP sessions afterwards: the live server's request thread of a
    keep-alive connection holds a database connection (kept 60 s on PostgreSQL) until then."""
    yield
    for value in request.node.funcargs.values():
        session = getattr(value, "_session", value)
        if isinstance(session, requests.Session):
            session.close()


@pytest.fixture
def reader(hospital: Hospital) -> Any:
    """A radiologist of the default hospital."""
    user, _ = do_create_admin("reader", PASSWORD, hospital, role="radiologist")
    return user


@pytest.fixture
def outsider(other_hospital: Hospital) -> Any:
    """A radiologist of the other hospital only."""
    user, _ = do_create_admin("outsider", PASSWORD, other_hospital, role="radiologist")
    return user


def token_for(base_url: str, username: str) -> str:
    response = requests.post(
        f"{base_url}/api/auth/token/",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access"])


def client_for(base_url: str, username: str) -> DICOMwebClient:
    """A dicomweb-client signed in as ``username`` with a Bearer token."""
    return DICOMwebClient(
        url=f"{base_url}/dicomweb",
        headers={"Authorization": f"Bearer {token_for(base_url, username)}"},
    )


@pytest.fixture
def dicomweb(live_server: Any, reader: Any) -> DICOMwebClient:
    """dicomweb-client for the default hospital's radiologist."""
    return client_for(live_server.url, "reader")


@pytest.fixture
def outsider_dicomweb(live_server: Any, outsider: Any) -> DICOMwebClient:
    return client_for(live_server.url, "outsider")


@pytest.fixture
def http(live_server: Any, reader: Any) -> requests.Session:
    """A plain requests session with the reader's Bearer token, for raw HTTP checks."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_for(live_server.url, 'reader')}"
    return session


Store = Callable[..., list[IngestResult]]


@pytest.fixture
def store(tmp_path: Path, hospital: Hospital) -> Store:
    """``store(paths_or_datasets, hospital=…)``: ingest objects as STOW would."""
    counter = iter(range(1_000_000))

    def _store(
        objects: Iterable[Path | Dataset], hospital: Hospital = hospital
    ) -> list[IngestResult]:
        results = []
        for obj in objects:
            if isinstance(obj, Dataset):
                path = tmp_path / f"obj{next(counter):06d}.dcm"
                obj.save_as(path, enforce_file_format=True)
                obj = path
            results.append(
                ingest(obj, hospital=hospital, origin=Origin(Source.IMPORT, "test"), name=obj.name)
            )
        return results

    return _store


@pytest.fixture
def ct_series(tmp_path: Path, store: Store) -> Callable[..., list[IngestResult]]:
    """``ct_series(count, **make_ct_slice kwargs)``: a stored synthetic CT series."""

    def _series(
        count: int = 3, hospital: Hospital | None = None, **kwargs: Any
    ) -> list[IngestResult]:
        folder = tmp_path / f"series{len(list(tmp_path.glob('series*')))}"
        paths = write_series(folder, count, **kwargs)
        return store(paths, **({"hospital": hospital} if hospital else {}))

    return _series


__all__ = ["PASSWORD", "client_for", "make_ct_slice", "token_for"]
