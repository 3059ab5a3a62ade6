"""Pages of long lists that stay fast on large archives (100,000 studies and more).

A page is read one row long, to know whether a next page exists, and the matches are counted
only up to :data:`~carina.api.pagination.COUNT_CAP` (the REST API's cap): beyond it the page
says "10,000+". Counting every match of a search over a large archive on each page would cost
more than the page itself. Pages are numbered (offset = (page - 1) × size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from carina.api.pagination import COUNT_CAP

#: Page sizes a user may choose.
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    """One page of rows, with what the page links need."""

    rows: list[Any]
    number: int
    size: int
    has_next: bool
    #: Matches counted up to the cap; ``count_exact`` is false beyond it.
    count: int
    count_exact: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def first_index(self) -> int:
        """The 1-based position of the first row shown (0 when there is none)."""
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return (self.number - 1) * self.size + len(self.rows)

    @property
    def last_number(self) -> int | None:
        """The last page's number, when the count is exact."""
        if not self.count_exact:
            return None
        return max(1, -(-self.count // self.size))

    @property
    def count_label(self) -> str:
        return f"{self.count:,}" if self.count_exact else f"{self.count:,}+"


def paginate(queryset: QuerySet[Any], number: int, size: int) -> Page:
    """Page ``number`` (1-based) of ``queryset`` (already ordered) with ``size`` rows."""
    offset = (number - 1) * size
    rows = list(queryset[offset : offset + size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    if not has_next and (rows or offset == 0):
        count, exact = offset + len(rows), True  # the last page: no count query
    else:
        capped = queryset.order_by().values("pk")[: COUNT_CAP + 1].count()
        count, exact = min(capped, COUNT_CAP), capped <= COUNT_CAP
    return Page(rows, number, size, has_next, count, exact)
