"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

admin.site.site_header = "Carina PACS administration"
admin.site.site_title = "Carina PACS"

urlpatterns = [
    # Until the web application exists, the front page is the archive browser in the admin.
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/health/", include("carina.ops.urls")),
    path("api/auth/token/", TokenObtainPairView.as_view(), name="token"),
    path("api/auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("accounts/", include("carina.accounts.urls")),
    path("dicomweb/", include("carina.dicomweb.urls")),
]
