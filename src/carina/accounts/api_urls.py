"""``/api/auth/…`` (mounted by carina.config.urls; docs/accounts.md)."""

from django.urls import path

from carina.accounts import api

app_name = "auth"
urlpatterns = [
    path("token/", api.TokenObtainView.as_view(), name="token"),
    path("token/refresh/", api.TokenRefreshView.as_view(), name="token-refresh"),
    path("logout/", api.LogoutView.as_view(), name="logout"),
    path("me/", api.MeView.as_view(), name="me"),
    path("personal-tokens/", api.PersonalTokenListView.as_view(), name="personal-tokens"),
    path(
        "personal-tokens/<int:pk>/",
        api.PersonalTokenDetailView.as_view(),
        name="personal-token",
    ),
    path("totp/", api.TOTPView.as_view(), name="totp"),
    path("totp/confirm/", api.TOTPConfirmView.as_view(), name="totp-confirm"),
    path("totp/disable/", api.TOTPDisableView.as_view(), name="totp-disable"),
    path("password/", api.PasswordView.as_view(), name="password"),
]
