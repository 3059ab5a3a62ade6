"""Health checks (docs/operations.md, "Health endpoints"): each answers ``(ok, detail)``.

A **required** check (database, storage) failing makes Carina unable to serve: ``ready/``
and ``/api/health/`` answer 503. An **optional** one (the task broker, the DICOM listener)
failing leaves the web part working: ``ready/`` does not run it (a load balancer keeps
sending requests), ``/api/health/`` answers 200 with status ``degraded`` and the detail.

Other apps add their checks with :func:`register` (the task queue of carina.routing, say).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from carina.archive.storage import get_storage

Check = Callable[[], tuple[bool, str]]
#: Seconds a check of a network service waits for it.
TIMEOUT = 2.0


@dataclass(frozen=True)
class HealthCheck:
    name: str
    run: Check
    #: Whether Carina cannot serve without it (503), or only works less (``degraded``).
    required: bool


def check_database() -> tuple[bool, str]:
    """The database answers a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return False, f"database unreachable: {exc}"
    return True, connection.vendor


def check_storage() -> tuple[bool, str]:
    """The blob store is reachable and writable (the folder exists and is writable; an S3
    bucket takes and deletes an empty object)."""
    try:
        get_storage().probe()
    except Exception as exc:
        return False, f"storage unavailable: {exc}"
    return True, get_storage().describe()


def broker_url() -> str:
    return str(getattr(settings, "CARINA_BROKER_URL", None) or settings.CARINA.broker_url)


def without_password(url: str) -> str:
    """``url`` with its password masked (for logs, health answers and pages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def check_broker() -> tuple[bool, str]:
    """The task broker answers: Redis ``PING``, or a TCP connection to an AMQP broker. The
    embedded default has no broker to check."""
    url = broker_url()
    if not url:
        return True, "embedded task queue (no broker needed)"
    shown = without_password(url)
    parts = urlsplit(url)
    try:
        if parts.scheme in {"redis", "rediss"}:
            import redis

            client = redis.Redis.from_url(
                url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT
            )
            try:
                client.ping()
            finally:
                client.close()
        else:
            with socket.create_connection(
                (parts.hostname or "localhost", parts.port or 5672), TIMEOUT
            ):
                pass
    except Exception as exc:
        return False, f"broker {shown} unreachable: {exc}"
    return True, shown


def listener_address() -> tuple[str, int]:
    """Where this machine's DICOM listener should accept connections."""
    host = str(settings.CARINA_DICOM_HOST)
    if host in {"", "0.0.0.0"}:
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, int(settings.CARINA_DICOM_PORT)


def check_dicom_listener() -> tuple[bool, str]:
    """The DICOM listener accepts TCP connections on CARINA_DICOM_HOST:CARINA_DICOM_PORT.

    A connection closed before any A-ASSOCIATE-RQ, not a C-ECHO: an echo would need a calling
    AE title the hospital accepts and would leave two audit events at every poll."""
    host, port = listener_address()
    try:
        with socket.create_connection((host, port), TIMEOUT):
            pass
    except OSError as exc:
        return False, f"DICOM listener not reachable on {host}:{port}: {exc.strerror or exc}"
    return True, f"accepting connections on {host}:{port} (AE title {settings.CARINA_AE_TITLE})"


CHECKS: list[HealthCheck] = [
    HealthCheck("database", check_database, required=True),
    HealthCheck("storage", check_storage, required=True),
    HealthCheck("broker", check_broker, required=False),
    HealthCheck("dicom_listener", check_dicom_listener, required=False),
]


def register(name: str, check: Check, *, required: bool = False) -> None:
    """Add (or replace) a check run by the health endpoints."""
    CHECKS[:] = [c for c in CHECKS if c.name != name]
    CHECKS.append(HealthCheck(name, check, required))


__all__ = [
    "CHECKS",
    "Check",
    "HealthCheck",
    "check_broker",
    "check_database",
    "check_dicom_listener",
    "check_storage",
    "register",
    "without_password",
]
