"""Computed Django settings: the last layer over ``carina.config.env`` (PS: no logic lives here
that the loader could hold; this module only turns validated values into Django's names)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
from pathlib import Path

import dj_database_url
import django_stubs_ext

from carina.config.env import ConfigError, load_env

try:
    CARINA = load_env()
except ConfigError as exc:  # stop start-up with the reason, not a traceback
    sys.stderr.write(f"carina: configuration error: {exc}\n")
    raise SystemExit(2) from exc

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
CARINA_HOME: Path = CARINA.home
CARINA_HOME.mkdir(parents=True, exist_ok=True)
# Metrics (/metrics, carina.ops.metrics): every process counts into files here and a scrape
# adds them up (prometheus-client's multiprocess mode; set before prometheus_client loads).
CARINA_METRICS_DIR = CARINA_HOME / "metrics"
CARINA_METRICS_DIR.mkdir(exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(CARINA_METRICS_DIR)


def _secret_key() -> str:
    """Use ``CARINA_SECRET_KEY`` or a key generated once and kept in ``CARINA_HOME``."""
    if CARINA.secret_key:
        return CARINA.secret_key
    path = CARINA_HOME / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = CARINA.debug
ALLOWED_HOSTS = CARINA.allowed_hosts or ["127.0.0.1", "localhost", "[::1]", CARINA.http_host]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",  # one filter class per model, for the API and the UI (carina.api)
    "drf_spectacular",  # OpenAPI schema of the REST API (/api/schema/)
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc files, served locally (no CDN)
    # Refresh tokens used once (rotation) or given back at logout are refused (docs/accounts.md).
    "rest_framework_simplejwt.token_blacklist",
    "carina.core",
    "carina.tenancy",
    "carina.accounts",
    "carina.archive",
    "carina.ops",
    "carina.dimse",
    "carina.audit",
    "carina.dicomweb",
    "carina.viewer",
    "carina.api",
    "carina.routing",  # destinations, transfers, forwarding rules (docs/routing.md)
    "carina.ui",  # the web application at / (docs/ui.md)
]

MIDDLEWARE = [
    # X-Request-ID accepted or made, answered and put on log lines and audit events; HTTP
    # metrics; 413 for bodies over their limit before anything reads them (docs/operations.md).
    "carina.core.request_id.RequestIDMiddleware",
    "carina.ops.metrics.HttpMetricsMiddleware",
    "carina.ops.limits.RequestBodyLimitMiddleware",
    "carina.ops.limits.RejectNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "carina.config.urls"
WSGI_APPLICATION = "carina.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The UI's frame: hospital switcher, role and permissions (docs/ui.md).
                "carina.ui.context_processors.ui",
            ],
        },
    },
]

if CARINA.sqlite_path is None:
    DATABASES = {
        "default": dj_database_url.parse(
            CARINA.database_url, conn_max_age=60, conn_health_checks=True
        )
    }
else:
    # Embedded default: SQLite in WAL mode, safe for several processes (web, DICOM listener,
    # worker). IMMEDIATE transactions take the write lock at BEGIN, so two writers queue on the
    # busy timeout instead of failing with "database is locked" on lock upgrade.
    # synchronous=FULL: a commit is on disk before Carina acknowledges the object.
    # Connections are kept between requests (CONN_MAX_AGE): opening one runs the PRAGMAs, and
    # closing the last one checkpoints the WAL, which cost more than most requests' own work.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(CARINA.sqlite_path),
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                "timeout": 60,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL;PRAGMA synchronous=FULL;PRAGMA foreign_keys=ON;"
                    "PRAGMA busy_timeout=60000"
                ),
            },
            "TEST": {"NAME": str(CARINA_HOME / "test-carina.sqlite3")},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Passwords: Django's model backend, refusing accounts locked after repeated failures.
AUTHENTICATION_BACKENDS = ["carina.accounts.backends.LockoutModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Static files (admin, UI) are served by WhiteNoise straight from the installed packages, so
# `carina serve` needs no collectstatic step and no separate web server.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

# Carina's own settings, read by the apps.
CARINA_AE_TITLE = CARINA.ae_title
CARINA_STORAGE = CARINA.storage
CARINA_STAGING_DIR = CARINA_HOME / "staging"
CARINA_LOG_DIR = CARINA_HOME / "logs"
CARINA_LOG_DIR.mkdir(exist_ok=True)
CARINA_HTTP_HOST = CARINA.http_host
CARINA_HTTP_PORT = CARINA.http_port
CARINA_DICOM_HOST = CARINA.dicom_host
CARINA_DICOM_PORT = CARINA.dicom_port
CARINA_DICOM_MAX_ASSOCIATIONS = CARINA.dicom_max_associations
CARINA_DICOM_PROCESSES = CARINA.dicom_processes
CARINA_DICOM_MAX_PDU = CARINA.dicom_max_pdu
CARINA_DICOM_TLS = CARINA.dicom_tls
#: Values longer than this (bytes) are left out of the stored DICOM JSON and replaced by a
#: BulkDataURI (PS3.18 F.2.6); pixel data always is.
CARINA_BULKDATA_THRESHOLD = 1024
#: Rendition cache (thumbnails, previews): files here, or Redis when CARINA_CACHE_URL is set.
CARINA_CACHE_URL = CARINA.cache_url
CARINA_CACHE_DIR = CARINA_HOME / "cache"
#: Rendition cache bounds: total size of the file cache (least recently used evicted beyond
#: it) and the lifetime of a Redis entry.
CARINA_CACHE_MAX_BYTES = 1 << 30
CARINA_CACHE_TTL = 7 * 24 * 3600
CARINA_CACHE_PREFIX = "carina:rendition:"
#: QIDO-RS: the default and largest page (PS3.18 8.3.4.4); beyond it a Warning header says
#: that matches were left out.
CARINA_QIDO_MAX_RESULTS = 10_000
#: STOW-RS: the largest request body accepted (413 beyond it).
CARINA_STOW_MAX_BYTES = 20 << 30
#: The rewritten OHIF build (`make viewer`); by default beside the source checkout.
CARINA_VIEWER_DIR = CARINA.viewer_dir or BASE_DIR.parent.parent / "build" / "viewer"
#: Background work (Celery, carina.config.celery): Redis (or AMQP) when CARINA_BROKER_URL
#: is set; otherwise the broker-less embedded queue in this folder (docs/routing.md).
CARINA_BROKER_URL = CARINA.broker_url
CARINA_QUEUE_DIR = CARINA_HOME / "queue"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# The session cookie is what OHIF sends with every DICOMweb request (same origin). Lax, not
# Strict: a link from the RIS or an e-mail must arrive signed in.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Sign-in and tokens (docs/accounts.md): personal API tokens, JWT access tokens, HTTP Basic
# (only when CARINA_HTTP_BASIC is on), the session cookie.
CARINA_HTTP_BASIC = CARINA.http_basic
#: This many failed password sign-ins within CARINA_LOCKOUT_MINUTES lock the account for as long.
CARINA_LOCKOUT_FAILURES = CARINA.lockout_failures
CARINA_LOCKOUT_MINUTES = CARINA.lockout_minutes

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "carina.accounts.drf.PersonalTokenAuthentication",
        "carina.accounts.drf.JWTAuthentication",
        "carina.accounts.drf.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The REST API (carina.api, docs/api.md): OpenAPI with every error documented, pages
    # whose count stays cheap on large archives, and django-filter FilterSets.
    "DEFAULT_SCHEMA_CLASS": "carina.api.schema.CarinaAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "carina.api.pagination.CappedLimitOffsetPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Request rates (carina.ops.throttling, docs/api.md "Limits"): 429 with Retry-After.
    # DICOMweb is not a DRF view and not throttled (a viewer fetches hundreds of frames).
    "DEFAULT_THROTTLE_CLASSES": [
        "carina.ops.throttling.AnonRateThrottle",
        "carina.ops.throttling.UserRateThrottle",
        "carina.ops.throttling.ScopedWriteRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": "120/min", "user": "1200/min", "upload": "60/min"},
    "NUM_PROXIES": 0,  # the caller is REMOTE_ADDR: X-Forwarded-For is not trusted
}

# The request counters of the throttles, shared by the web workers: files under CARINA_HOME,
# or Redis with CARINA_CACHE_URL (then shared by every machine).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CARINA.cache_url,
            "KEY_PREFIX": "carina:throttle",
        }
        if CARINA.cache_url
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(CARINA_HOME / "throttle"),
            "OPTIONS": {"MAX_ENTRIES": 5000},
        }
    ),
}
# Request bodies (carina.ops.limits): JSON and form data up to Django's
# DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MiB); a multipart upload up to this many bytes in all
# (at most DATA_UPLOAD_MAX_NUMBER_FILES = 100 files); 413 beyond.
CARINA_UPLOAD_MAX_BYTES = 20 << 30

# OpenAPI (drf-spectacular): Swagger UI at /api/docs/ and ReDoc at /api/redoc/ load their
# files from the drf-spectacular-sidecar package (our own /static/), never from a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Carina PACS REST API",
    "DESCRIPTION": "Hospitals, users, the archive (patients, studies, series, instances), "
    "downloads, uploads, DICOM nodes and statistics, scoped to the caller's hospital "
    "(docs/api.md).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        # Several models have a "status" (carina.routing: transfers and their instances).
        "TransferStatusEnum": "carina.routing.models.TransferStatus",
        "TransferItemStatusEnum": "carina.routing.models.ItemStatus",
        "RoleEnum": "carina.accounts.models.Role",
    },
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": dt.timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": dt.timedelta(days=1),
    "ROTATE_REFRESH_TOKENS": True,
    # A rotated refresh token is refused afterwards; using it again revokes its sign-in.
    "BLACKLIST_AFTER_ROTATION": True,
    # Tokens issued before a password change are refused.
    "CHECK_REVOKE_TOKEN": True,
    "SIGNING_KEY": SECRET_KEY,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # [request_id]: the X-Request-ID of the request, or the DICOM association's ID; "-"
    # outside any (carina.core.request_id).
    "filters": {"request_id": {"()": "carina.core.request_id.RequestIDFilter"}},
    "formatters": {
        "plain": {
            "class": "carina.core.request_id.RequestIDFormatter",
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        },
        # Every process (web, DICOM listener, worker, CLI) appends to the same file; lines are
        # written with O_APPEND, and logrotate may move the file (WatchedFileHandler reopens).
        "file": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(CARINA_LOG_DIR / "carina.log"),
            "formatter": "plain",
            "filters": ["request_id"],
        },
    },
    "loggers": {"carina": {"handlers": ["console", "file"], "level": CARINA.log_level}},
}
