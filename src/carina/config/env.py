"""Typed loader of the ``CARINA_*`` environment variables.

This is the middle layer of the settings: embedded defaults → these variables → computed Django
settings (``carina.config.settings``). Every variable is declared here; an unknown ``CARINA_*``
name, a value of the wrong type or a contradictory combination stops start-up with a message
that names the variable and says what to do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class ConfigError(Exception):
    """A ``CARINA_*`` variable is unknown, malformed or contradicts another."""


#: AE title: 1–16 characters of the default character repertoire, no backslash or control
#: characters, not all spaces (PS3.5 6.2, VR AE).
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")


def validate_ae_title(value: str, what: str = "AE title") -> str:
    """Return ``value`` stripped of padding if it is a valid AE title, else raise ConfigError."""
    stripped = value.strip()
    if not stripped or not _AE_TITLE.match(stripped):
        raise ConfigError(
            f"{what} {value!r} is not a valid DICOM AE title: use 1 to 16 printable ASCII "
            "characters without a backslash (PS3.5 6.2)."
        )
    return stripped


@dataclass(frozen=True)
class StorageLocation:
    """Where DICOM blobs live: a folder (``file``) or an S3-compatible bucket (``s3``)."""

    scheme: str
    path: Path | None = None
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None


def parse_storage_url(url: str, home: Path) -> StorageLocation:
    """Parse ``CARINA_STORAGE_URL``: ``file:///abs/path`` or ``s3://bucket/prefix?endpoint_url=…``.

    S3 options in the query string: ``endpoint_url``, ``region``, ``access_key_id``,
    ``secret_access_key`` (credentials otherwise come from the usual ``AWS_*`` variables).
    """
    if not url:
        return StorageLocation(scheme="file", path=home / "blobs")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if not parts.path.startswith("/"):
            raise ConfigError(f"CARINA_STORAGE_URL={url!r}: a file URL needs an absolute path.")
        return StorageLocation(scheme="file", path=Path(parts.path))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError(f"CARINA_STORAGE_URL={url!r}: name the bucket, as s3://BUCKET.")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        known = {"endpoint_url", "region", "access_key_id", "secret_access_key"}
        unknown = set(query) - known
        if unknown:
            raise ConfigError(
                f"CARINA_STORAGE_URL: unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}."
            )
        return StorageLocation(
            scheme="s3",
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=query.get("endpoint_url"),
            region=query.get("region"),
            access_key_id=query.get("access_key_id"),
            secret_access_key=query.get("secret_access_key"),
        )
    raise ConfigError(
        f"CARINA_STORAGE_URL={url!r}: the scheme must be file:// or s3:// "
        "(see docs/configuration.md)."
    )


def _port(name: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a port number.") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={raw!r}: a port is between 1 and 65535.")
    return port


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name}={raw!r}: use true or false.")


#: Every variable Carina reads, with its embedded default. The docs table in
#: docs/configuration.md lists the same names.
DEFAULTS: dict[str, str] = {
    "CARINA_HOME": "./var",
    "CARINA_HTTP_HOST": "127.0.0.1",
    "CARINA_HTTP_PORT": "8000",
    "CARINA_DICOM_HOST": "0.0.0.0",
    "CARINA_DICOM_PORT": "11112",
    "CARINA_AE_TITLE": "CARINA",
    "CARINA_DATABASE_URL": "",
    "CARINA_STORAGE_URL": "",
    "CARINA_BROKER_URL": "",
    "CARINA_SECRET_KEY": "",
    "CARINA_DEBUG": "false",
    "CARINA_LOG_LEVEL": "INFO",
    "CARINA_ALLOWED_HOSTS": "",
    "CARINA_WEB_WORKERS": "2",
    "CARINA_DICOM_MAX_ASSOCIATIONS": "32",
    "CARINA_DICOM_PROCESSES": "2",
    "CARINA_DICOM_MAX_PDU": "262144",
    "CARINA_DICOM_TLS_CERT": "",
    "CARINA_DICOM_TLS_KEY": "",
    "CARINA_DICOM_TLS_CA": "",
    "CARINA_CACHE_URL": "",
    "CARINA_VIEWER_DIR": "",
    "CARINA_HTTP_BASIC": "false",
    "CARINA_LOCKOUT_FAILURES": "5",
    "CARINA_LOCKOUT_MINUTES": "15",
}

_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


@dataclass(frozen=True)
class DicomTLS:
    """TLS for the DICOM listener (PS3.15 B.1, the TLS secure transport connection profile):
    the listener's certificate and key, and optionally the CA whose certificates callers must
    present."""

    cert: Path
    key: Path
    ca: Path | None = None


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}.")
    return value


def _dicom_tls(raw: Mapping[str, str]) -> DicomTLS | None:
    cert, key, ca = (
        raw["CARINA_DICOM_TLS_CERT"].strip(),
        raw["CARINA_DICOM_TLS_KEY"].strip(),
        raw["CARINA_DICOM_TLS_CA"].strip(),
    )
    if not cert and not key:
        if ca:
            raise ConfigError(
                "CARINA_DICOM_TLS_CA is set without CARINA_DICOM_TLS_CERT and "
                "CARINA_DICOM_TLS_KEY: client certificates are only checked over TLS."
            )
        return None
    if not (cert and key):
        raise ConfigError(
            "Set both CARINA_DICOM_TLS_CERT and CARINA_DICOM_TLS_KEY to serve DICOM over TLS "
            "(or neither for plain TCP)."
        )
    paths = {"CARINA_DICOM_TLS_CERT": cert, "CARINA_DICOM_TLS_KEY": key}
    if ca:
        paths["CARINA_DICOM_TLS_CA"] = ca
    for name, value in paths.items():
        if not Path(value).is_file():
            raise ConfigError(f"{name}={value!r}: no such file.")
    return DicomTLS(Path(cert), Path(key), Path(ca) if ca else None)


@dataclass(frozen=True)
class CarinaEnv:
    """The validated ``CARINA_*`` settings."""

    home: Path
    http_host: str
    http_port: int
    dicom_host: str
    dicom_port: int
    ae_title: str
    database_url: str
    storage: StorageLocation
    storage_url: str
    broker_url: str
    secret_key: str
    debug: bool
    log_level: str
    allowed_hosts: list[str] = field(default_factory=list)
    web_workers: int = 2
    dicom_max_associations: int = 32
    dicom_processes: int = 2
    dicom_max_pdu: int = 262_144
    dicom_tls: DicomTLS | None = None
    #: Where renditions (thumbnails, previews) are cached: "" = files under CARINA_HOME/cache,
    #: or redis://HOST:PORT/DB.
    cache_url: str = ""
    #: The OHIF viewer files made by `make viewer` (served at /viewer/).
    viewer_dir: Path | None = None
    #: Accept HTTP Basic credentials (DICOM tools that know nothing else); docs/accounts.md.
    http_basic: bool = False
    #: Failed password sign-ins within ``lockout_minutes`` that lock an account for
    #: ``lockout_minutes`` (docs/accounts.md, "Lock-out").
    lockout_failures: int = 5
    lockout_minutes: int = 15

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None in server mode (PostgreSQL)."""
        if not self.database_url:
            return self.home / "carina.sqlite3"
        parts = urlsplit(self.database_url)
        return Path("/" + parts.path.lstrip("/")) if parts.scheme == "sqlite" else None


def load_env(environ: Mapping[str, str] | None = None) -> CarinaEnv:
    """Read, check and type the ``CARINA_*`` variables of ``environ`` (default ``os.environ``)."""
    source = os.environ if environ is None else environ
    unknown = sorted(k for k in source if k.startswith("CARINA_") and k not in DEFAULTS)
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) {', '.join(unknown)}. Known settings: "
            f"{', '.join(sorted(DEFAULTS))} (see docs/configuration.md)."
        )
    raw = {k: source.get(k, default) for k, default in DEFAULTS.items()}

    home = Path(raw["CARINA_HOME"]).expanduser().resolve()
    http_port = _port("CARINA_HTTP_PORT", raw["CARINA_HTTP_PORT"])
    dicom_port = _port("CARINA_DICOM_PORT", raw["CARINA_DICOM_PORT"])
    if http_port == dicom_port:
        raise ConfigError(
            f"CARINA_HTTP_PORT and CARINA_DICOM_PORT are both {http_port}: "
            "the web server and the DICOM listener need different ports."
        )
    ae_title = validate_ae_title(raw["CARINA_AE_TITLE"], "CARINA_AE_TITLE")

    database_url = raw["CARINA_DATABASE_URL"].strip()
    if database_url and urlsplit(database_url).scheme not in {"postgres", "postgresql", "sqlite"}:
        raise ConfigError(
            f"CARINA_DATABASE_URL={database_url!r}: use postgres://USER@HOST:PORT/NAME (or "
            "sqlite:////absolute/path); leave it unset for the embedded SQLite database under "
            "CARINA_HOME."
        )
    if database_url.startswith("sqlite:") and not database_url.startswith("sqlite:////"):
        raise ConfigError(
            f"CARINA_DATABASE_URL={database_url!r}: a SQLite URL needs an absolute path, "
            "as sqlite:////absolute/path/carina.sqlite3."
        )
    broker_url = raw["CARINA_BROKER_URL"].strip()
    if broker_url and urlsplit(broker_url).scheme not in {"redis", "rediss", "amqp"}:
        raise ConfigError(
            f"CARINA_BROKER_URL={broker_url!r}: use redis://HOST:PORT/DB (or amqp://)."
        )
    log_level = raw["CARINA_LOG_LEVEL"].upper()
    if log_level not in _LOG_LEVELS:
        raise ConfigError(
            f"CARINA_LOG_LEVEL={raw['CARINA_LOG_LEVEL']!r}: use one of "
            f"{', '.join(sorted(_LOG_LEVELS))}."
        )
    web_workers = _int("CARINA_WEB_WORKERS", raw["CARINA_WEB_WORKERS"], 1, 64)
    dicom_processes = _int("CARINA_DICOM_PROCESSES", raw["CARINA_DICOM_PROCESSES"], 1, 64)
    max_associations = _int(
        "CARINA_DICOM_MAX_ASSOCIATIONS", raw["CARINA_DICOM_MAX_ASSOCIATIONS"], 1, 1000
    )
    # PS3.8 D.1: 0 means unlimited; otherwise at least the smallest useful PDU.
    max_pdu = _int("CARINA_DICOM_MAX_PDU", raw["CARINA_DICOM_MAX_PDU"], 0, 2**32 - 1)
    if 0 < max_pdu < 4096:
        raise ConfigError("CARINA_DICOM_MAX_PDU must be 0 (no limit) or at least 4096 bytes.")

    storage_url = raw["CARINA_STORAGE_URL"].strip()
    cache_url = raw["CARINA_CACHE_URL"].strip()
    if cache_url and urlsplit(cache_url).scheme not in {"redis", "rediss"}:
        raise ConfigError(
            f"CARINA_CACHE_URL={cache_url!r}: use redis://HOST:PORT/DB, or leave it unset to "
            "cache renditions as files under CARINA_HOME/cache."
        )
    viewer_dir = raw["CARINA_VIEWER_DIR"].strip()
    lockout_failures = _int("CARINA_LOCKOUT_FAILURES", raw["CARINA_LOCKOUT_FAILURES"], 1, 1000)
    lockout_minutes = _int("CARINA_LOCKOUT_MINUTES", raw["CARINA_LOCKOUT_MINUTES"], 1, 10080)
    return CarinaEnv(
        home=home,
        http_host=raw["CARINA_HTTP_HOST"],
        http_port=http_port,
        dicom_host=raw["CARINA_DICOM_HOST"],
        dicom_port=dicom_port,
        ae_title=ae_title,
        database_url=database_url,
        storage=parse_storage_url(storage_url, home),
        storage_url=storage_url,
        broker_url=broker_url,
        secret_key=raw["CARINA_SECRET_KEY"],
        debug=_bool("CARINA_DEBUG", raw["CARINA_DEBUG"]),
        log_level=log_level,
        allowed_hosts=[h.strip() for h in raw["CARINA_ALLOWED_HOSTS"].split(",") if h.strip()],
        web_workers=web_workers,
        dicom_max_associations=max_associations,
        dicom_processes=dicom_processes,
        dicom_max_pdu=max_pdu,
        dicom_tls=_dicom_tls(raw),
        cache_url=cache_url,
        viewer_dir=Path(viewer_dir).expanduser().resolve() if viewer_dir else None,
        http_basic=_bool("CARINA_HTTP_BASIC", raw["CARINA_HTTP_BASIC"]),
        lockout_failures=lockout_failures,
        lockout_minutes=lockout_minutes,
    )
