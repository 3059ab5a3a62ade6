"""Routing's tunables: Django settings when set (tests shorten them), else these defaults
(docs/routing.md, "Retries" and "Background work")."""

from __future__ import annotations

import datetime as dt

from django.conf import settings

#: Attempts before a transfer fails (the first one included).
MAX_ATTEMPTS = 6
#: The wait before the second attempt; it doubles for each further one, up to MAX_DELAY.
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 1800.0
#: A sending transfer's lease: renewed after each instance; a transfer whose lease ran out
#: (its worker died on another machine) is resumed by the sweep.
LEASE_SECONDS = 300.0
#: A queued transfer whose message was sent this long ago without a worker taking it is
#: enqueued again (the message may be lost).
REENQUEUE_SECONDS = 600.0
#: The forwarding sweep checks again the instances received this long before its last run
#: (a transaction may commit after a later one).
SCAN_LAG_SECONDS = 120.0
#: Instances sent per STOW-RS request, and the most bytes per request.
STOW_BATCH = 50
STOW_BATCH_BYTES = 64 << 20
#: Seconds to wait for a destination (association, each response, an HTTP answer).
NETWORK_TIMEOUT = 60.0


def _get(name: str, default: float) -> float:
    return float(getattr(settings, f"CARINA_ROUTING_{name}", default))


def max_attempts() -> int:
    return int(_get("MAX_ATTEMPTS", MAX_ATTEMPTS))


def retry_delay(attempt: int) -> dt.timedelta:
    """The wait after failed attempt number ``attempt`` (1, 2, …): exponential backoff."""
    base = _get("RETRY_BASE_SECONDS", RETRY_BASE_SECONDS)
    cap = _get("RETRY_MAX_SECONDS", RETRY_MAX_SECONDS)
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))


def lease() -> dt.timedelta:
    return dt.timedelta(seconds=_get("LEASE_SECONDS", LEASE_SECONDS))


def reenqueue_after() -> dt.timedelta:
    return dt.timedelta(seconds=_get("REENQUEUE_SECONDS", REENQUEUE_SECONDS))


def scan_lag() -> dt.timedelta:
    return dt.timedelta(seconds=_get("SCAN_LAG_SECONDS", SCAN_LAG_SECONDS))


def network_timeout() -> float:
    return _get("NETWORK_TIMEOUT", NETWORK_TIMEOUT)


#: A worker writes its heartbeat this often, and is alive while its last one is younger
#: than HEARTBEAT_FRESH_SECONDS (a few missed beats are tolerated: a busy database).
HEARTBEAT_SECONDS = 10.0
HEARTBEAT_FRESH_SECONDS = 45.0


def heartbeat_interval() -> float:
    return _get("HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)


def heartbeat_fresh() -> dt.timedelta:
    return dt.timedelta(seconds=_get("HEARTBEAT_FRESH_SECONDS", HEARTBEAT_FRESH_SECONDS))
