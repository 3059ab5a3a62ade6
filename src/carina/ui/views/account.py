"""The signed-in user's own account (``/account/``): hospitals and roles, password change,
the authenticator app (second factor, RFC 6238) — and the hospital switcher."""

from __future__ import annotations

from typing import Any

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters

from carina.accounts.access import SESSION_HOSPITAL, hospitals_of
from carina.accounts.actions import (
    AccountError,
    do_confirm_totp,
    do_disable_totp,
    do_set_password,
    do_start_totp,
    do_use_totp_code,
)
from carina.accounts.models import Membership, TOTPDevice
from carina.accounts.totp import provisioning_uri
from carina.ui.access import page, signed_in
from carina.ui.forms import SwitchHospitalForm


@page(permission=None)
def account(request: HttpRequest) -> HttpResponse:
    memberships = (
        Membership.objects.filter(user=signed_in(request))
        .select_related("hospital")
        .order_by("hospital__name")
    )
    device = TOTPDevice.objects.filter(user=signed_in(request), confirmed=True).first()
    return render(
        request,
        "ui/account/page.html",
        {"memberships": list(memberships), "has_app": device is not None},
    )


@sensitive_post_parameters()
@page(permission=None, methods=("GET", "HEAD", "POST"))
def password(request: HttpRequest) -> HttpResponseBase:
    """Change one's password: the current one, then the new one twice. Every API sign-in
    (JWT) of the account ends; this browser stays signed in."""
    user = signed_in(request)
    form = PasswordChangeForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            do_set_password(user, form.cleaned_data["new_password1"])
        except AccountError as exc:
            form.add_error("new_password1", str(exc))
        else:
            update_session_auth_hash(request, user)
            messages.success(request, "Your password is changed.")
            return redirect("ui:account")
    status = 400 if request.method == "POST" else 200
    return render(request, "ui/account/password.html", {"form": form}, status=status)


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The 6 digits the app shows now.",
    )


def _qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (light modules on dark would not scan: the
    code is drawn dark on white, as apps expect)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff", border=4))


@sensitive_post_parameters()
@page(permission=None, methods=("GET", "HEAD", "POST"))
def authenticator(request: HttpRequest) -> HttpResponseBase:
    """Set up, confirm or turn off the authenticator app that guards sign-in."""
    user = signed_in(request)
    device = TOTPDevice.objects.filter(user=user).first()
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "start":
            try:
                do_start_totp(user)
            except AccountError as exc:
                messages.error(request, str(exc))
            return redirect("ui:authenticator")
        if form.is_valid():
            code = form.cleaned_data["code"]
            if action == "confirm":
                try:
                    do_confirm_totp(user, code)
                except AccountError as exc:
                    form.add_error("code", str(exc))
                else:
                    messages.success(request, "The authenticator app now guards your sign-in.")
                    return redirect("ui:account")
            elif action == "disable" and device is not None and device.confirmed:
                if do_use_totp_code(device, code):
                    do_disable_totp(user)
                    messages.success(request, "The authenticator app is turned off.")
                    return redirect("ui:account")
                form.add_error("code", "That code does not match the app's current code.")
        status = 400
    context: dict[str, Any] = {"form": form, "device": device}
    if device is not None and not device.confirmed:
        uri = provisioning_uri(device.secret, user)
        context.update(
            uri=uri,
            qr=_qr_svg(uri),
            secret_groups=" ".join(
                device.secret[i : i + 4] for i in range(0, len(device.secret), 4)
            ),
        )
    return render(request, "ui/account/authenticator.html", context, status=status)


@page(permission=None, methods=("POST",))
def switch_hospital(request: HttpRequest) -> HttpResponseBase:
    """Work in another of one's hospitals: remembered in the session (the API and DICOMweb
    follow it too), then back to the page the user was on."""
    form = SwitchHospitalForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a hospital.")
        return redirect("ui:worklist")
    slug = form.cleaned_data["hospital"]
    hospital = hospitals_of(request.user).filter(slug=slug).first()
    if hospital is None:
        messages.error(request, f"You do not belong to a hospital {slug!r}.")
        return redirect("ui:worklist")
    request.session[SESSION_HOSPITAL] = hospital.slug
    messages.info(request, f"You now work in {hospital.name}.")
    target = form.cleaned_data.get("next") or ""
    if not target or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    return redirect(target)
