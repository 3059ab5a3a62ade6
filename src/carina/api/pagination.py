"""Pages of API lists: ``?limit=`` and ``?offset=``, with a count that stays cheap.

Counting every match of a search over 100,000 studies on each page costs more than the page
itself, so the count stops at :data:`COUNT_CAP`: ``count`` is exact when ``count_exact`` is
true, otherwise "at least ``count``". ``next`` is given whenever a further row exists (the page
is read one row long to know), so a client can always walk to the end.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import LimitOffsetPagination  # type: ignore[import-untyped]
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]
from rest_framework.utils.urls import (  # type: ignore[import-untyped]
    remove_query_param,
    replace_query_param,
)

#: Larger offsets are read as this one (an empty page past the end).
MAX_OFFSET = 2**31 - 1
#: Counting stops here (``count_exact`` is false beyond).
COUNT_CAP = 10_000


class CappedLimitOffsetPagination(LimitOffsetPagination):
    """``limit`` (default 50, at most 1,000) and ``offset``; ``count`` capped at 10,000."""

    default_limit = 50
    max_limit = 1000
    count_cap = COUNT_CAP

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        # Beyond any real table, and within a 32-bit SQL integer on every database backend.
        self.offset = min(self.get_offset(request), MAX_OFFSET)
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        self.has_next = len(rows) > self.limit
        rows = rows[: self.limit]
        if not self.has_next and (rows or self.offset == 0):
            # The last page: the count is known without another query.
            self.count = self.offset + len(rows)
            self.count_exact = True
        else:
            capped = queryset.order_by().values("pk")[: self.count_cap + 1].count()
            self.count_exact = capped <= self.count_cap
            self.count = min(capped, self.count_cap)
        return rows

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        url = self.request.build_absolute_uri()
        url = replace_query_param(url, self.limit_query_param, self.limit)
        return str(replace_query_param(url, self.offset_query_param, self.offset + self.limit))

    def get_previous_link(self) -> str | None:
        if self.offset <= 0:
            return None
        url = self.request.build_absolute_uri()
        url = replace_query_param(url, self.limit_query_param, self.limit)
        if self.offset - self.limit <= 0:
            return str(remove_query_param(url, self.offset_query_param))
        return str(replace_query_param(url, self.offset_query_param, self.offset - self.limit))

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "count": self.count,
                "count_exact": self.count_exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["count", "count_exact", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "example": 123,
                    "description": f"Number of matches, counted up to {COUNT_CAP:,}.",
                },
                "count_exact": {
                    "type": "boolean",
                    "description": "False when there are more matches than the count says.",
                },
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page, when there is one.",
                },
                "previous": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The previous page, when there is one.",
                },
                "results": schema,
            },
        }
