"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from carina.ops.views import prometheus_metrics

admin.site.site_header = "Carina PACS administration"
admin.site.site_title = "Carina PACS"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", include("carina.ops.urls")),
    path("api/auth/", include("carina.accounts.api_urls")),
    # The audit trail, read only (docs/audit.md); before "api/" so that it wins.
    path("api/audit/", include("carina.audit.urls")),
    # Prometheus metrics (docs/operations.md, "Metrics").
    path("metrics", prometheus_metrics, name="metrics"),
    # The REST API (docs/api.md), with its OpenAPI schema at /api/schema/.
    path("api/", include("carina.api.urls")),
    path("accounts/", include("carina.accounts.urls")),
    path("dicomweb/", include("carina.dicomweb.urls")),
    path("viewer/", include("carina.viewer.urls")),
    # The web application (docs/ui.md): the worklist at /, studies, upload, dashboard,
    # administration. Last, so that the prefixes above win.
    path("", include("carina.ui.urls")),
]

# Error pages in the UI's frame; JSON under /api/ and /dicomweb/ (docs/ui.md).
handler403 = "carina.ui.views.errors.permission_denied"
handler404 = "carina.ui.views.errors.page_not_found"
handler500 = "carina.ui.views.errors.server_error"
# 413 for oversized bodies (carina.ops.limits); Django's 400 otherwise.
handler400 = "carina.ops.limits.bad_request"
