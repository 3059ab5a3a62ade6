"""REST API routes under ``/api/`` (docs/api.md), with the OpenAPI schema at ``/api/schema/``,
Swagger UI at ``/api/docs/`` and ReDoc at ``/api/redoc/`` (served from our own static files).
"""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter  # type: ignore[import-untyped]

from carina.api.views.archive import InstanceViewSet, PatientViewSet, SeriesViewSet, StudyViewSet
from carina.api.views.hospitals import HospitalViewSet, MembershipViewSet, UserViewSet
from carina.api.views.nodes import NodeViewSet
from carina.api.views.statistics import StatisticsView
from carina.api.views.uploads import UploadViewSet

app_name = "api"

# No ".json" suffix routes: a UID's last component ("1.2.3") would read as a format.
router = DefaultRouter()
router.include_format_suffixes = False
router.register("hospitals", HospitalViewSet, basename="hospital")
router.register("users", UserViewSet, basename="user")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("patients", PatientViewSet, basename="patient")
router.register("studies", StudyViewSet, basename="study")
router.register("series", SeriesViewSet, basename="series")
router.register("instances", InstanceViewSet, basename="instance")
router.register("uploads", UploadViewSet, basename="upload")
router.register("nodes", NodeViewSet, basename="node")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path(
        "redoc/",
        SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    path("statistics/", StatisticsView.as_view(), name="statistics"),
    path("", include("carina.routing.urls")),  # transfers, rules, node test (docs/routing.md)
    *router.urls,
]
