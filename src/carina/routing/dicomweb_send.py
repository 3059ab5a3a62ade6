"""Sending a transfer's instances to a DICOMweb node with STOW-RS (PS3.18 10.5): ``POST
{url}/studies`` with a ``multipart/related; type="application/dicom"`` body of up to 50
instances (64 MiB), the node's token as ``Authorization: Bearer``. Objects are sent as
stored.

The response (PS3.18 10.5.3): 200 every instance stored; 202 some failed and 409 all failed,
each failure listed in the Failed SOP Sequence (0008,1198) with its Failure Reason
(0008,1197). No answer, 408, 429, 5xx, 401, 403 and 404 end the attempt (retried later:
the node may be down, or its token about to be fixed); a Failure Reason A7xx (*Out of
Resources*) leaves the instance to send; any other failure is lasting, with its reason.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import requests

from carina.archive.storage import get_storage
from carina.dimse.actions import dicomweb_headers
from carina.dimse.models import RemoteNode
from carina.routing import conf
from carina.routing.runner import ItemOutcome, Record, ToSend

#: Failure Reason values (PS3.18 Table I.2-1, PS3.4 B.2.3).
FAILURE_REASONS = {
    0x0110: "Processing failure",
    0x0122: "SOP Class not supported",
    0x0124: "Not authorized",
    0xA700: "Out of resources",
    0xA900: "Data set does not match SOP Class",
    0xC000: "Cannot understand",
    0xC122: "Referenced Transfer Syntax not supported",
}
#: HTTP statuses that end the attempt (it is retried later).
RETRY_STATUSES = frozenset({401, 403, 404, 408, 429})


def _batches(items: list[ToSend]) -> Iterator[list[ToSend]]:
    batch: list[ToSend] = []
    size = 0
    for item in items:
        if batch and (len(batch) >= conf.STOW_BATCH or size + item.size > conf.STOW_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.size
    if batch:
        yield batch


def _body(batch: list[ToSend], boundary: str) -> bytes:
    parts: list[bytes] = []
    storage = get_storage()
    for item in batch:
        with contextlib.closing(storage.open(item.stored.blob_key)) as handle:
            data = handle.read()
        parts.append(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def _failures(response: requests.Response) -> dict[str, int]:
    """SOP Instance UID → Failure Reason, from the Failed SOP Sequence of the answer."""
    try:
        answer: Any = response.json()
    except ValueError:
        return {}
    if isinstance(answer, list):
        answer = answer[0] if answer else {}
    if not isinstance(answer, dict):
        return {}
    failed: dict[str, int] = {}
    for entry in answer.get("00081198", {}).get("Value", []) or []:
        uid = (entry.get("00081155", {}).get("Value") or [""])[0]
        reason = (entry.get("00081197", {}).get("Value") or [0xC000])[0]
        if uid:
            failed[str(uid)] = int(reason)
    return failed


def _reason(code: int) -> str:
    return f"STOW-RS Failure Reason 0x{code:04X} ({FAILURE_REASONS.get(code, 'failure')})"


def send_stow(node: RemoteNode, items: list[ToSend], record: Record) -> str:
    """Send ``items`` to ``node``; see the module's docstring."""
    url = f"{node.dicomweb_url}/studies"
    for batch in _batches(items):
        boundary = uuid.uuid4().hex
        headers = {
            **dicomweb_headers(node),
            "Accept": "application/dicom+json",
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        }
        try:
            body = _body(batch, boundary)
        except OSError as exc:
            return f"cannot read the stored objects: {exc}"
        try:
            response = requests.post(
                url, data=body, headers=headers, timeout=conf.network_timeout()
            )
        except requests.RequestException as exc:
            return f"cannot reach {url}: {exc.__class__.__name__}: {exc}"
        status = response.status_code
        if status in RETRY_STATUSES or status >= 500:
            return f"{url} answered HTTP {status}: {response.text[:200]}"
        failures = _failures(response) if status in (200, 202, 409) else {}
        busy_reason = ""
        for item in batch:
            uid = item.stored.sop_instance_uid
            if status in (200, 202) and uid not in failures:
                outcome = ItemOutcome(item.item_id, True, size=item.size)
            elif uid in failures:
                code = failures[uid]
                busy = code & 0xFF00 == 0xA700
                outcome = ItemOutcome(item.item_id, False, busy, code, _reason(code))
            else:
                why = f"{url} answered HTTP {status}: {response.text[:200]}"
                outcome = ItemOutcome(item.item_id, False, reason=why)
            if not record(outcome):
                return ""
            if outcome.retry:
                busy_reason = busy_reason or outcome.reason
        if busy_reason:
            return busy_reason
    return ""
