"""Sign-in and sign-out pages (Django's own views with Carina's template)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class SignOutView(auth_views.LogoutView):
    template_name = "registration/logged_out.html"
