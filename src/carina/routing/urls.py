"""Routing's API routes, included under ``/api/`` by :mod:`carina.api.urls`."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter  # type: ignore[import-untyped]

from carina.routing.api import NodeTestView, RuleViewSet, TransferViewSet

router = DefaultRouter()
router.include_format_suffixes = False
router.include_root_view = False
router.register("transfers", TransferViewSet, basename="transfer")
router.register("rules", RuleViewSet, basename="rule")

urlpatterns = [
    path("nodes/<str:pk>/test/", NodeTestView.as_view(), name="node-test"),
    *router.urls,
]
