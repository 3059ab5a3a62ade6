"""STOW-RS (PS3.18 10.5) as clients use it: dicomweb-client, raw multipart bodies good and
bad, big objects streamed, who may store, and what the response tells the sender."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings as django_settings
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from carina.accounts.actions import do_create_admin
from carina.archive.models import Instance, Series, Study
from carina.archive.storage import get_storage
from carina.audit.models import Action, AuditEvent, Outcome
from carina.core.testing import child_env, free_port, make_ct_slice, wait_http
from carina.dicomweb.multipart_reader import (
    MultipartError,
    MultipartReader,
    PayloadTooLargeError,
)
from carina.dicomweb.tests.conftest import PASSWORD, client_for, token_for
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)


BOUNDARY = "carina-test-0f3cf5c0"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'
FAILED = "00081198"
REFERENCED = "00081199"
RETRIEVE_URL = "00081190"
FAILURE_REASON = "00081197"
TEXT_VALUE = "0040A160"
SOP_INSTANCE = "00081155"


def dicom_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct(study_uid: str | None = None, index: int = 0, **kwargs: Any) -> Dataset:
    return make_ct_slice(
        study_uid=study_uid or generate_uid(),
        series_uid=kwargs.pop("series_uid", None) or generate_uid(),
        index=index,
        size=kwargs.pop("size", 32),
        **kwargs,
    )


def multipart(
    parts: list[bytes | tuple[str | None, bytes]],
    boundary: str = BOUNDARY,
    *,
    leading_crlf: bool = True,
    close: bool = True,
) -> bytes:
    """A multipart/related body; a part is its bytes, or (its Content-Type or None, bytes)."""
    out = io.BytesIO()
    for index, part in enumerate(parts):
        content_type, data = part if isinstance(part, tuple) else ("application/dicom", part)
        if index or leading_crlf:
            out.write(b"\r\n")
        out.write(f"--{boundary}\r\n".encode())
        if content_type is not None:
            out.write(f"Content-Type: {content_type}\r\n".encode())
        out.write(b"\r\n")
        out.write(data)
    if close:
        out.write(f"\r\n--{boundary}--".encode())
    return out.getvalue()


def post(
    http: requests.Session,
    url: str,
    body: bytes,
    content_type: str = CONTENT_TYPE,
    **headers: str,
) -> requests.Response:
    return http.post(
        url,
        data=body,
        headers={"Content-Type": content_type, **headers},
        timeout=60,
    )


def sop_uids(response_json: dict[str, Any], key: str) -> list[str]:
    items = response_json.get(key, {}).get("Value", [])
    return [item.get(SOP_INSTANCE, {}).get("Value", [""])[0] for item in items]


def stored_uids(hospital: Hospital) -> set[str]:
    return set(Instance.objects.for_hospital(hospital).values_list("sop_instance_uid", flat=True))


def store_events(hospital: Hospital) -> list[AuditEvent]:
    return list(AuditEvent.objects.for_hospital(hospital).filter(action=Action.WEB_STORE))


@pytest.fixture
def stow_url(live_server: Any) -> str:
    return f"{live_server.url}/dicomweb/studies"


# --- Storing with dicomweb-client ------------------------------------------------------------


def test_dicomweb_client_stores_a_series(
    dicomweb: DICOMwebClient, hospital: Hospital, live_server: Any
) -> None:
    study_uid, series_uid = generate_uid(), generate_uid()
    datasets = [ct(study_uid, i, series_uid=series_uid) for i in range(3)]
    answer = dicomweb.store_instances(datasets=datasets)
    referenced = answer.ReferencedSOPSequence
    assert [item.ReferencedSOPInstanceUID for item in referenced] == [
        ds.SOPInstanceUID for ds in datasets
    ]
    assert all(item.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2" for item in referenced)
    # dicomweb-client sends "Host: localhost" without the port; the URLs follow the Host.
    assert referenced[0].RetrieveURL.endswith(
        f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{datasets[0].SOPInstanceUID}"
    )
    assert answer.RetrieveURL.startswith("http://localhost")
    assert answer.RetrieveURL.endswith(f"/dicomweb/studies/{study_uid}")
    assert "FailedSOPSequence" not in answer
    study = Study.objects.for_hospital(hospital).get(study_instance_uid=study_uid)
    assert (study.number_of_series, study.number_of_instances) == (1, 3)
    assert set(Instance.objects.for_hospital(hospital).values_list("source", flat=True)) == {"stow"}
    assert set(Instance.objects.for_hospital(hospital).values_list("source_detail", flat=True)) == {
        "reader"
    }
    # What was stored is what was sent, byte for byte; dicomweb-client (pydicom) writes a
    # data set made in memory without the 128-byte preamble and DICM prefix: Carina adds them.
    sent = io.BytesIO()
    dcmwrite(sent, datasets[1])
    assert sent.getvalue()[128:132] != b"DICM"
    row = Instance.objects.for_hospital(hospital).get(sop_instance_uid=datasets[1].SOPInstanceUID)
    with get_storage().open(row.blob_key) as blob:
        assert blob.read() == bytes(128) + b"DICM" + sent.getvalue()
    [event] = store_events(hospital)
    assert (event.outcome, event.count, event.object_uid) == (Outcome.SUCCESS, 3, study_uid)
    assert event.actor == "reader" and event.patient_id == "PID001"


def test_storing_into_a_named_study(dicomweb: DICOMwebClient, hospital: Hospital) -> None:
    study_uid = generate_uid()
    answer = dicomweb.store_instances(datasets=[ct(study_uid)], study_instance_uid=study_uid)
    assert len(answer.ReferencedSOPSequence) == 1
    assert Study.objects.for_hospital(hospital).filter(study_instance_uid=study_uid).exists()


def test_an_instance_of_another_study_is_refused_on_a_study_url(
    http: requests.Session, stow_url: str, hospital: Hospital
) -> None:
    target = generate_uid()
    good, stranger = ct(target), ct(generate_uid())
    response = post(http, f"{stow_url}/{target}", multipart([dicom_bytes(good)]))
    assert response.status_code == 200

    response = post(
        http, f"{stow_url}/{target}", multipart([dicom_bytes(ct(target, 1)), dicom_bytes(stranger)])
    )
    assert response.status_code == 202
    body = response.json()
    [failed] = body[FAILED]["Value"]
    assert failed[SOP_INSTANCE]["Value"] == [stranger.SOPInstanceUID]
    assert failed[FAILURE_REASON]["Value"] == [0xC409]
    assert f"not to study {target}" in failed[TEXT_VALUE]["Value"][0]

    response = post(http, f"{stow_url}/{target}", multipart([dicom_bytes(ct(generate_uid()))]))
    assert response.status_code == 409
    assert response.json()[FAILED]["Value"][0][FAILURE_REASON]["Value"] == [0xC409]
    assert stranger.SOPInstanceUID not in stored_uids(hospital)
    assert Study.objects.for_hospital(hospital).count() == 1


# --- Good and bad parts ---------------------------------------------------------------------


def test_good_parts_are_stored_and_bad_ones_listed_with_reasons(
    http: requests.Session, stow_url: str, hospital: Hospital
) -> None:
    first, last = ct(), ct()
    whole = dicom_bytes(ct())
    body = multipart(
        [
            dicom_bytes(first),
            b"Dear radiologist, please find the images attached.\n",
            whole[: len(whole) // 2],  # a truncated object
            ("text/plain", b"not an image"),
            dicom_bytes(last),
        ]
    )
    response = post(http, stow_url, body)
    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/dicom+json"
    answer = response.json()
    assert sop_uids(answer, REFERENCED) == [first.SOPInstanceUID, last.SOPInstanceUID]
    failures = answer[FAILED]["Value"]
    assert [f[FAILURE_REASON]["Value"][0] for f in failures] == [0xC000, 0xC000, 0xC000]
    texts = [f[TEXT_VALUE]["Value"][0] for f in failures]
    assert texts[0].startswith("part 2: not a DICOM Part 10 file")
    assert texts[1].startswith("part 3: ") and "truncated" in texts[1]
    assert texts[2] == (
        "part 4: its Content-Type is 'text/plain'; only application/dicom parts "
        "(DICOM Part 10 files) are stored here"
    )
    assert stored_uids(hospital) == {first.SOPInstanceUID, last.SOPInstanceUID}
    # Nothing else is left behind: two blobs, an empty staging folder.
    assert len(list(get_storage().iter_keys())) == 2
    assert list(Path(django_settings.CARINA_STAGING_DIR).glob("*")) == []
    [event] = store_events(hospital)
    assert (event.outcome, event.count) == (Outcome.PARTIAL, 2)
    assert event.detail.startswith("2 instance(s) stored, 3 failed: part 2: not a DICOM")
    # Pydicom reads the answer as a data set a program can act on.
    assert Dataset.from_json(answer).FailedSOPSequence[2].FailureReason == 0xC000


def test_all_parts_bad_is_409(http: requests.Session, stow_url: str, hospital: Hospital) -> None:
    response = post(http, stow_url, multipart([b"hello", b"\x00" * 200]))
    assert response.status_code == 409
    answer = response.json()
    assert len(answer[FAILED]["Value"]) == 2
    assert REFERENCED not in answer
    assert answer[RETRIEVE_URL] == {"vr": "UR"}
    assert stored_uids(hospital) == set()
    assert store_events(hospital)[0].outcome == Outcome.FAILURE


def test_a_duplicate_is_a_success_and_says_so(
    http: requests.Session, stow_url: str, hospital: Hospital
) -> None:
    ds = ct()
    assert post(http, stow_url, multipart([dicom_bytes(ds)])).status_code == 200
    again = post(http, stow_url, multipart([dicom_bytes(ds)]))
    assert again.status_code == 200
    [item] = again.json()[REFERENCED]["Value"]
    assert item[TEXT_VALUE]["Value"] == [
        "part 1: already stored with identical content; nothing changed"
    ]
    assert Instance.objects.for_hospital(hospital).count() == 1
    # Same UID, different content: the hospital's policy (reject) refuses it.
    ds.SeriesDescription = "changed"
    conflict = post(http, stow_url, multipart([dicom_bytes(ds)]))
    assert conflict.status_code == 409
    [failed] = conflict.json()[FAILED]["Value"]
    assert failed[FAILURE_REASON]["Value"] == [0xC010]
    assert failed[SOP_INSTANCE]["Value"] == [ds.SOPInstanceUID]
    assert "already stored with different content" in failed[TEXT_VALUE]["Value"][0]


def test_unknown_transfer_syntax_is_reported_as_c122(http: requests.Session, stow_url: str) -> None:
    raw = dicom_bytes(ct()).replace(b"1.2.840.10008.1.2.1\x00", b"1.2.3.4.5.6.7.8.9.0\x00", 1)
    response = post(http, stow_url, multipart([raw]))
    assert response.status_code == 409
    assert response.json()[FAILED]["Value"][0][FAILURE_REASON]["Value"] == [0xC122]


# --- Framing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "leading_crlf"),
    [
        (f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"', True),
        (f"multipart/related; type=application/dicom; boundary={BOUNDARY}", False),
        (f'Multipart/Related; boundary={BOUNDARY}; type="application/dicom"', True),
        (f"multipart/related; boundary={BOUNDARY}", False),  # no type: parts say it
    ],
)
def test_quoted_unquoted_boundaries_with_or_without_a_leading_crlf(
    http: requests.Session, stow_url: str, content_type: str, leading_crlf: bool, hospital: Hospital
) -> None:
    ds = ct()
    body = multipart([dicom_bytes(ds)], leading_crlf=leading_crlf)
    assert body.startswith(b"\r\n--") == leading_crlf
    response = post(http, stow_url, body, content_type)
    assert response.status_code == 200, response.text
    assert stored_uids(hospital) == {ds.SOPInstanceUID}


def test_a_preamble_epilogue_padding_and_parts_without_headers_are_accepted(
    http: requests.Session, stow_url: str, hospital: Hospital
) -> None:
    one, two = ct(), ct()
    body = (
        b"This is a preamble.\r\n"
        + f"--{BOUNDARY}  \r\n\r\n".encode()  # padding, no header fields
        + dicom_bytes(one)
        + f"\r\n--{BOUNDARY}\r\n".encode()
        + b"Content-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\n"
        + b"Content-Location: two\r\n\r\n"
        + dicom_bytes(two)
        + f"\r\n--{BOUNDARY}--\r\nAn epilogue.\r\n".encode()
    )
    response = post(http, stow_url, body)
    assert response.status_code == 200, response.text
    assert stored_uids(hospital) == {one.SOPInstanceUID, two.SOPInstanceUID}


@pytest.mark.parametrize(
    ("content_type", "fragment"),
    [
        ("application/octet-stream", "is not supported"),
        ("application/dicom", "is not supported"),
        (
            f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}',
            "metadata and bulk data form",
        ),
        (
            f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}',
            "metadata and bulk data form",
        ),
    ],
)
def test_a_wrong_content_type_is_415(
    http: requests.Session, stow_url: str, content_type: str, fragment: str, hospital: Hospital
) -> None:
    response = post(http, stow_url, multipart([dicom_bytes(ct())]), content_type)
    assert response.status_code == 415
    assert fragment in response.json()["error"]
    assert stored_uids(hospital) == set()


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (multipart([b"x"]), 'multipart/related; type="application/dicom"', "no boundary"),
        (multipart([b"x"]), f'{CONTENT_TYPE[:-1]}-other"', "does not contain the boundary"),
        (b"", CONTENT_TYPE, "empty"),
        (f"--{BOUNDARY}--".encode(), CONTENT_TYPE, "no parts"),
        (
            f"--{BOUNDARY}\r\nContent-Type application/dicom\r\n\r\nx".encode(),
            CONTENT_TYPE,
            "malformed header",
        ),
        (f"--{BOUNDARY}garbage\r\n\r\nx".encode(), CONTENT_TYPE, "not followed by a line break"),
    ],
)
def test_a_malformed_body_is_400(
    http: requests.Session, stow_url: str, body: bytes, content_type: str, fragment: str
) -> None:
    response = post(http, stow_url, body, content_type)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert fragment in response.json()["error"]


def test_a_part_without_its_closing_boundary(
    http: requests.Session, stow_url: str, hospital: Hospital
) -> None:
    good, cut = ct(), ct()
    alone = post(http, stow_url, multipart([dicom_bytes(cut)], close=False))
    assert alone.status_code == 400
    assert "before the part's closing boundary" in alone.json()["error"]
    assert stored_uids(hospital) == set()

    after_a_good_one = post(
        http, stow_url, multipart([dicom_bytes(good), dicom_bytes(cut)], close=False)
    )
    assert after_a_good_one.status_code == 202
    answer = after_a_good_one.json()
    assert sop_uids(answer, REFERENCED) == [good.SOPInstanceUID]
    [failed] = answer[FAILED]["Value"]
    assert failed[TEXT_VALUE]["Value"][0].startswith("part 2: the body ends before")
    assert stored_uids(hospital) == {good.SOPInstanceUID}
    assert list(Path(django_settings.CARINA_STAGING_DIR).glob("*")) == []


def test_a_body_over_the_limit_is_413(
    http: requests.Session, stow_url: str, settings: Any, hospital: Hospital
) -> None:
    settings.CARINA_STOW_MAX_BYTES = 10_000
    response = post(http, stow_url, multipart([dicom_bytes(ct(size=128))]))
    assert response.status_code == 413
    assert "limit of 10000 bytes" in response.json()["error"]
    assert stored_uids(hospital) == set()


def test_xml_only_is_406(http: requests.Session, stow_url: str, hospital: Hospital) -> None:
    response = post(http, stow_url, multipart([dicom_bytes(ct())]), Accept="application/dicom+xml")
    assert response.status_code == 406
    assert stored_uids(hospital) == set()
    ok = post(http, stow_url, multipart([dicom_bytes(ct())]), Accept="application/dicom+json")
    assert ok.status_code == 200


@pytest.mark.slow
def test_a_20_mb_object_is_streamed_to_storage(
    http: requests.Session, stow_url: str, hospital: Hospital, tmp_path: Path
) -> None:
    big = ct(size=3200)  # 3200 x 3200 x 16 bits = 20.5 MB of pixel data
    body_file = tmp_path / "body.bin"
    body_file.write_bytes(multipart([dicom_bytes(big), dicom_bytes(ct())]))
    assert body_file.stat().st_size > 20_000_000
    with body_file.open("rb") as body:  # requests streams a file with its Content-Length
        response = http.post(
            stow_url, data=body, headers={"Content-Type": CONTENT_TYPE}, timeout=300
        )
    assert response.status_code == 200, response.text
    row = Instance.objects.for_hospital(hospital).get(sop_instance_uid=big.SOPInstanceUID)
    assert row.size_bytes > 20_000_000
    assert (row.rows, row.columns) == (3200, 3200)
    with get_storage().open(row.blob_key) as blob:
        stored = dcmread(blob)
    assert stored.PixelData == big.PixelData
    assert list(Path(django_settings.CARINA_STAGING_DIR).glob("*")) == []


# --- Who may store, and where it goes ---------------------------------------------------------


def test_a_physician_may_not_store(live_server: Any, stow_url: str, hospital: Hospital) -> None:
    do_create_admin("doctor", PASSWORD, hospital, role="physician")
    token = token_for(live_server.url, "doctor")
    response = requests.post(
        stow_url,
        data=multipart([dicom_bytes(ct())]),
        headers={"Content-Type": CONTENT_TYPE, "Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 403
    assert "Physician / viewer" in response.json()["error"]
    assert stored_uids(hospital) == set()
    [event] = store_events(hospital)
    assert (event.actor, event.outcome) == ("doctor", Outcome.FAILURE)


def test_stored_objects_belong_to_the_senders_hospital_only(
    dicomweb: DICOMwebClient,
    outsider_dicomweb: DICOMwebClient,
    hospital: Hospital,
    other_hospital: Hospital,
) -> None:
    mine, theirs = ct(), ct()
    dicomweb.store_instances(datasets=[mine])
    outsider_dicomweb.store_instances(datasets=[theirs])
    assert stored_uids(hospital) == {mine.SOPInstanceUID}
    assert stored_uids(other_hospital) == {theirs.SOPInstanceUID}
    assert (
        not Study.objects.for_hospital(other_hospital)
        .filter(study_instance_uid=mine.StudyInstanceUID)
        .exists()
    )
    # The same UIDs sent by the other hospital make a separate copy, not a duplicate.
    outsider_dicomweb.store_instances(datasets=[mine])
    assert Series.objects.for_hospital(other_hospital).count() == 2
    assert Instance.objects.for_hospital(hospital).count() == 1


def _signed_in_session(base_url: str, username: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base_url}/accounts/login/", timeout=30)
    response = session.post(
        f"{base_url}/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base_url}/accounts/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302
    return session


def test_a_session_cookie_caller_must_come_from_this_site(
    live_server: Any, reader: Any, stow_url: str, hospital: Hospital
) -> None:
    session = _signed_in_session(live_server.url, "reader")
    body = multipart([dicom_bytes(ct())])
    missing = post(session, stow_url, body)
    assert missing.status_code == 403
    assert "Origin or Referer" in missing.json()["error"]
    forged = post(session, stow_url, body, Origin="https://evil.example")
    assert forged.status_code == 403
    assert "https://evil.example" in forged.json()["error"]
    assert stored_uids(hospital) == set()
    same_site = post(session, stow_url, body, Origin=live_server.url)
    assert same_site.status_code == 200
    by_referer = post(
        session, stow_url, multipart([dicom_bytes(ct())]), Referer=f"{live_server.url}/viewer/"
    )
    session.close()
    assert by_referer.status_code == 200
    assert len(stored_uids(hospital)) == 2


def test_a_bearer_caller_needs_no_origin(http: requests.Session, stow_url: str) -> None:
    response = post(http, stow_url, multipart([dicom_bytes(ct())]), Origin="https://evil.example")
    assert response.status_code == 200


@pytest.mark.slow
def test_a_chunked_upload_through_the_production_server(
    tmp_path: Path, settings: Any, reader: Any, hospital: Hospital
) -> None:
    """dicomweb-client sends bodies over 1 MB with chunked transfer encoding; gunicorn
    (``carina web``) de-chunks them and Carina reads its stream (Django alone would see an
    empty body)."""
    port = free_port()
    env = child_env(
        tmp_path / "home",
        storage_url=f"file://{settings.CARINA_STORAGE.path}",
        CARINA_HTTP_HOST="127.0.0.1",
        CARINA_HTTP_PORT=str(port),
        CARINA_WEB_WORKERS="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "carina", "web"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_http(f"{base}/api/health/live/", timeout=60) == 200
        client = client_for(base, "reader")
        series_uid, study_uid = generate_uid(), generate_uid()
        datasets = [ct(study_uid, i, series_uid=series_uid, size=512) for i in range(5)]
        assert sum(len(dicom_bytes(ds)) for ds in datasets) > 2_000_000  # over chunk_size
        answer = client.store_instances(datasets=datasets)
        assert len(answer.ReferencedSOPSequence) == 5
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert Instance.objects.for_hospital(hospital).count() == 5


def test_the_development_server_refuses_a_chunked_body_with_411(
    http: requests.Session, stow_url: str
) -> None:
    def chunks() -> Iterator[bytes]:
        yield multipart([dicom_bytes(ct())])

    response = http.post(
        stow_url, data=chunks(), headers={"Content-Type": CONTENT_TYPE}, timeout=30
    )
    assert response.status_code == 411
    assert "Content-Length" in response.json()["error"]


# --- The reader on its own --------------------------------------------------------------------


class Trickle:
    """A body that arrives a few bytes at a time (boundaries straddle every read)."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, self._step) if size >= 0 else self._step)


class Generated:
    """A body of ``size`` bytes of content in one part, made while it is read."""

    def __init__(self, size: int) -> None:
        head = f"\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        self._pieces = iter([head, *self._content(size), f"\r\n--{BOUNDARY}--".encode()])
        self._pending = b""

    @staticmethod
    def _content(size: int) -> Iterator[bytes]:
        block = bytes(range(256)) * 4096  # 1 MiB
        for _ in range(size // len(block)):
            yield block

    def read(self, size: int = -1) -> bytes:
        while len(self._pending) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._pending += piece
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


def test_the_reader_finds_boundaries_that_straddle_reads() -> None:
    parts = [b"one\r\n-", b"", b"\r\n--" + BOUNDARY[:-1].encode() + b"three"]
    reader = MultipartReader(Trickle(multipart(list(parts))), BOUNDARY)
    assert [part.read() for part in reader] == parts
    assert reader.parts_read == 3


def test_the_reader_keeps_memory_flat_for_a_large_part() -> None:
    size = 96 << 20
    received = 0
    tracemalloc.start()
    try:
        for part in MultipartReader(Generated(size), BOUNDARY):
            assert part.headers == {"content-type": "application/dicom"}
            while chunk := part.read(1 << 20):
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert peak < 16 << 20, f"peak {peak} bytes while reading {size} bytes"


def test_the_reader_stops_at_its_limit() -> None:
    reader = MultipartReader(Generated(8 << 20), BOUNDARY, limit=3 << 20)
    with pytest.raises(PayloadTooLargeError, match="limit of 3145728 bytes"):
        for part in reader:
            part.drain()


def test_the_reader_names_the_part_that_is_cut_short() -> None:
    body = multipart([b"complete", b"cut"], close=False)
    reader = iter(MultipartReader(io.BytesIO(body), BOUNDARY))
    assert next(reader).read() == b"complete"
    with pytest.raises(MultipartError, match="part 2: the body ends before"):
        next(reader).read()


def test_the_reader_refuses_a_body_that_does_not_start_with_the_boundary() -> None:
    body = b"x" * (100 * 1024) + multipart([b"late"])
    with pytest.raises(MultipartError, match="does not start with the boundary"):
        list(MultipartReader(io.BytesIO(body), BOUNDARY))
    short_preamble = b"x" * 1000 + multipart([b"on time"])
    assert [p.read() for p in MultipartReader(io.BytesIO(short_preamble), BOUNDARY)] == [b"on time"]
