"""Sign-in pages: user name and password, then (for accounts with an authenticator app) its
code; sign-out (docs/accounts.md, "The sign-in page")."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView

from carina.accounts.actions import do_clear_sign_in_failures
from carina.accounts.errors import AccountLockedError, WrongSecondFactorError
from carina.accounts.forms import CodeForm, SignInForm
from carina.accounts.signin import check_second_factor, second_factor_of

#: The session key of a sign-in waiting for its second factor: user id, time, next page.
PENDING = "carina_pending_sign_in"
#: How long the code page waits after the password was accepted.
PENDING_SECONDS = 300
BACKEND = "carina.accounts.backends.LockoutModelBackend"


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    form_class = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if second_factor_of(user) is not None:
            self.request.session[PENDING] = {
                "user": user.pk,
                "at": time.time(),
                "next": self.get_redirect_url(),
            }
            return redirect("accounts:login-code")
        do_clear_sign_in_failures(user.get_username())
        return super().form_valid(form)


@method_decorator([sensitive_post_parameters(), never_cache], name="dispatch")
class SecondFactorView(FormView):  # type: ignore[type-arg]
    """The second step for accounts with an authenticator app."""

    template_name = "registration/login_code.html"
    form_class = CodeForm

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        pending = request.session.get(PENDING)
        if not pending or pending.get("at", 0) < time.time() - PENDING_SECONDS:
            request.session.pop(PENDING, None)
            return redirect("accounts:login")
        user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
        if user is None:
            request.session.pop(PENDING, None)
            return redirect("accounts:login")
        self.user = user
        self.next_page = str(pending.get("next") or "")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form: CodeForm) -> HttpResponse:
        try:
            check_second_factor(self.request, self.user, form.cleaned_data["otp"])
        except AccountLockedError as exc:
            self.request.session.pop(PENDING, None)
            form.add_error(None, exc.message)
            return self.render_to_response(self.get_context_data(form=form, locked=True))
        except WrongSecondFactorError as exc:
            form.add_error("otp", exc.message)
            return self.form_invalid(form)
        self.request.session.pop(PENDING, None)
        do_clear_sign_in_failures(self.user.get_username())
        login(self.request, self.user, backend=BACKEND)
        return HttpResponseRedirect(self._success_url())

    def _success_url(self) -> str:
        if self.next_page and url_has_allowed_host_and_scheme(
            self.next_page,
            allowed_hosts={self.request.get_host()},
            require_https=self.request.is_secure(),
        ):
            return self.next_page
        return str(settings.LOGIN_REDIRECT_URL)


class SignOutView(auth_views.LogoutView):
    template_name = "registration/logged_out.html"
