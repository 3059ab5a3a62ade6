"""``/api/audit/…`` (mounted by carina.config.urls; docs/api.md, "Audit trail").

Only reads are routed: ``GET`` of the list, of one event and of the CSV export.
"""

from django.urls import path

from carina.audit.api import AuditEventViewSet

app_name = "audit"
urlpatterns = [
    path("", AuditEventViewSet.as_view({"get": "list"}), name="list"),
    path("export.csv", AuditEventViewSet.as_view({"get": "export"}), name="export"),
    path("<int:pk>/", AuditEventViewSet.as_view({"get": "retrieve"}), name="event"),
]
