"""``/api/statistics/``: the current hospital's figures (docs/api.md, "Statistics")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request  # type: ignore[import-untyped]
from rest_framework.response import Response  # type: ignore[import-untyped]

from carina.api.base import CarinaAPIView
from carina.api.serializers.statistics import StatisticsQuerySerializer, StatisticsSerializer
from carina.api.statistics import hospital_statistics
from carina.audit.models import Action, ObjectType


class StatisticsView(CarinaAPIView):
    """Totals, studies per day, modalities, storage and the latest studies."""

    @extend_schema(
        summary="Statistics of the current hospital",
        parameters=[StatisticsQuerySerializer],
        responses=StatisticsSerializer,
        tags=["statistics"],
    )
    def get(self, request: Request) -> Response:
        query = StatisticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = hospital_statistics(self.hospital, **query.validated_data)
        if data["recent_studies"]:  # names patients
            self.audit(
                action=Action.WEB_QUERY,
                object_type=ObjectType.STUDY,
                count=len(data["recent_studies"]),
            )
        return Response(StatisticsSerializer(data).data)
