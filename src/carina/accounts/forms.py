"""The forms of the sign-in pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from carina.accounts.errors import AccountLockedError, WrongCredentialsError
from carina.accounts.signin import check_password


class SignInForm(AuthenticationForm):
    """User name and password, through the lock-out (carina.accounts.signin). The second
    factor, when the account has one, is the next page's."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = check_password(self.request, username, password)
            except AccountLockedError as exc:
                raise forms.ValidationError(exc.message, code="locked") from None
            except WrongCredentialsError:
                raise self.get_invalid_login_error() from None
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class CodeForm(forms.Form):
    otp = forms.CharField(
        label="Code from your authenticator app",
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
