"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Carina PACS administration"
admin.site.site_title = "Carina PACS"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", include("carina.ops.urls")),
]
