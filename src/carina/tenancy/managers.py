"""Tenant-scoped managers: a query on hospital-owned rows must say which hospital it is for.

``Model.objects`` of every hospital-owned model returns a :class:`TenantQuerySet`. Evaluating it
(iterating, ``get``, ``count``, ``exists``, ``update``, ``delete``, …) raises
:class:`UnscopedQueryError` unless it was narrowed with :meth:`TenantQuerySet.for_hospital`, or
explicitly widened with :meth:`TenantQuerySet.all_hospitals` by system-level code (the admin site,
operations tasks). Creating rows is not restricted: a create names its hospital.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self, TypeVar

from django.db import models

if TYPE_CHECKING:
    from carina.tenancy.models import Hospital

_M = TypeVar("_M", bound=models.Model)


class UnscopedQueryError(RuntimeError):
    """A hospital-owned table was queried without a hospital scope."""


class TenantQuerySet(models.QuerySet[_M]):
    """A queryset that refuses to run until it is scoped to a hospital."""

    _carina_scoped: bool = False

    def for_hospital(self, hospital: Hospital | int) -> Self:
        """Rows of one hospital (a Hospital or its primary key)."""
        hospital_id = hospital if isinstance(hospital, int) else hospital.pk
        qs = self.filter(hospital_id=hospital_id)
        qs._carina_scoped = True
        return qs

    def all_hospitals(self) -> Self:
        """Rows of every hospital: for system-level code only (admin site, operations)."""
        qs = self._chain()  # type: ignore[attr-defined]
        qs._carina_scoped = True
        return qs

    def _clone(self) -> Self:
        clone = super()._clone()  # type: ignore[misc]
        clone._carina_scoped = self._carina_scoped
        return clone

    def _require_scope(self) -> None:
        if not self._carina_scoped:
            raise UnscopedQueryError(
                f"Query on {self.model.__name__} without a hospital scope: call "
                ".for_hospital(hospital) (or .all_hospitals() in system-level code)."
            )

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._require_scope()
        super()._fetch_all()

    def count(self) -> int:
        self._require_scope()
        return super().count()

    def exists(self) -> bool:
        self._require_scope()
        return super().exists()

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._require_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._require_scope()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._require_scope()
        return super().delete()

    def iterator(self, chunk_size: int | None = None) -> Any:
        self._require_scope()
        return super().iterator(chunk_size=chunk_size)


class TenantManager(models.Manager[_M]):
    """Default entry point for hospital-owned rows (``Model.objects``)."""

    def get_queryset(self) -> TenantQuerySet[_M]:
        return TenantQuerySet(self.model, using=self._db)

    def for_hospital(self, hospital: Hospital | int) -> TenantQuerySet[_M]:
        return self.get_queryset().for_hospital(hospital)

    def all_hospitals(self) -> TenantQuerySet[_M]:
        return self.get_queryset().all_hospitals()
