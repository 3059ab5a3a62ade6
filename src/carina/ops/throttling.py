"""Request rates of the REST API (docs/api.md, "Limits"): Django REST Framework's throttles,
counted in a cache that every web worker shares, with rates read from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` at each request.

* ``anon``: requests without a signed-in user, per IP address (the token endpoint, the
  schema and its pages);
* ``user``: requests of a signed-in user, per user (per IP address without one);
* ``upload`` (and any other ``throttle_scope`` of a view): the requests of that view that
  change something (POST, PUT, PATCH, DELETE), per user; reads of the view (polling an
  upload's progress) count only towards ``user``.

A request over a rate is answered **429** with ``Retry-After`` (seconds) and
``{"detail": "Request was throttled. Expected available in N seconds."}``.

The counters live in the ``throttle`` cache of ``settings.CACHES``: files under
``CARINA_HOME/throttle`` (shared by the gunicorn workers of one machine), or Redis when
``CARINA_CACHE_URL`` is set (shared by every machine). The caller's address is
``REMOTE_ADDR``: ``X-Forwarded-For`` is not trusted (``NUM_PROXIES = 0``).
"""

from __future__ import annotations

from typing import Any

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling  # type: ignore[import-untyped]
from rest_framework.permissions import SAFE_METHODS  # type: ignore[import-untyped]
from rest_framework.settings import api_settings  # type: ignore[import-untyped]

CACHE_ALIAS = "throttle"


def counters() -> BaseCache:
    """The cache holding the request counters."""
    return caches[CACHE_ALIAS]


def reset_throttles() -> None:
    """Forget every counter (tests)."""
    counters().clear()


class _SharedCounters:
    """Counters in the shared cache; the rate read from the settings at each request (DRF
    reads them once, when its classes are imported)."""

    scope: str | None

    @property
    def cache(self) -> BaseCache:
        return counters()

    def get_rate(self) -> str | None:
        if not self.scope:
            raise ImproperlyConfigured(f"{type(self).__name__} has no scope")
        rates: dict[str, str | None] = api_settings.DEFAULT_THROTTLE_RATES
        try:
            return rates[self.scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'] has no rate for {self.scope!r}"
            ) from None


class AnonRateThrottle(_SharedCounters, throttling.AnonRateThrottle):
    """``anon``: per IP address, for requests without a signed-in user."""


class UserRateThrottle(_SharedCounters, throttling.UserRateThrottle):
    """``user``: per user (per IP address without one)."""


class ScopedWriteRateThrottle(_SharedCounters, throttling.ScopedRateThrottle):
    """The view's ``throttle_scope`` rate, for its requests that change something."""

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        allowed: bool = super().allow_request(request, view)
        return allowed


__all__ = [
    "AnonRateThrottle",
    "ScopedWriteRateThrottle",
    "UserRateThrottle",
    "counters",
    "reset_throttles",
]
