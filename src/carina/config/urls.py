"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Carina PACS administration"
admin.site.site_title = "Carina PACS"

urlpatterns = [
    # Until the web application exists, the front page is the archive browser in the admin.
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/health/", include("carina.ops.urls")),
    path("api/auth/", include("carina.accounts.api_urls")),
    # The REST API (docs/api.md), with its OpenAPI schema at /api/schema/.
    path("api/", include("carina.api.urls")),
    path("accounts/", include("carina.accounts.urls")),
    path("dicomweb/", include("carina.dicomweb.urls")),
    path("viewer/", include("carina.viewer.urls")),
]
