"""Accounts in the Django admin: memberships, personal tokens (revoke), lock-outs (unlock),
authenticator apps (remove, for a lost phone) and API sign-ins (revoke).

The admin's own sign-in form knows neither the lock-out message nor the second factor, so
``/admin/login/`` sends people to Carina's sign-in page (which every password path shares).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from carina.accounts import actions
from carina.accounts.models import ApiSignIn, Membership, PersonalToken, SignInLock, TOTPDevice


def _sign_in_page(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    if request.user.is_authenticated:
        if request.user.is_staff:
            return HttpResponseRedirect(reverse("admin:index"))
        return HttpResponseForbidden(
            "Your account may not use the administration site; ask a system administrator."
        )
    target = request.GET.get("next") or reverse("admin:index")
    return HttpResponseRedirect(f"{reverse('accounts:login')}?{urlencode({'next': target})}")


admin.site.login = _sign_in_page  # type: ignore[method-assign]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ["user", "hospital", "role"]
    list_filter = ["role", "hospital"]
    search_fields = ["user__username", "hospital__slug"]


@admin.register(SignInLock)
class SignInLockAdmin(admin.ModelAdmin[SignInLock]):
    list_display = ["username", "failures", "locked_until", "last_failure_at", "last_failure_ip"]
    search_fields = ["username"]
    readonly_fields = [
        "username",
        "failures",
        "first_failure_at",
        "last_failure_at",
        "last_failure_ip",
        "locked_until",
    ]
    actions = ["unlock"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Unlock the selected accounts")
    def unlock(self, request: HttpRequest, queryset: QuerySet[SignInLock]) -> None:
        names = list(queryset.values_list("username", flat=True))
        for name in names:
            actions.do_unlock(name)
        self.message_user(request, f"Unlocked: {', '.join(names)}.", messages.SUCCESS)


@admin.register(PersonalToken)
class PersonalTokenAdmin(admin.ModelAdmin[PersonalToken]):
    list_display = [
        "name",
        "user",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = [
        "user",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    exclude = ["key_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a user makes their own (the key is shown to them once)

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[PersonalToken]) -> None:
        for token in queryset:
            actions.do_revoke_personal_token(token)
        self.message_user(request, "Revoked.", messages.SUCCESS)


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(admin.ModelAdmin[TOTPDevice]):
    """Deleting a device turns the second factor off (a lost phone); the user sets it up
    again after signing in."""

    list_display = ["user", "confirmed", "created_at", "confirmed_at"]
    search_fields = ["user__username"]
    fields = ["user", "confirmed", "created_at", "confirmed_at"]
    readonly_fields = ["user", "confirmed", "created_at", "confirmed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ApiSignIn)
class ApiSignInAdmin(admin.ModelAdmin[ApiSignIn]):
    list_display = ["user", "created_at", "last_refreshed_at", "source_ip", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["user__username", "source_ip"]
    readonly_fields = [
        "id",
        "user",
        "created_at",
        "last_refreshed_at",
        "source_ip",
        "user_agent",
        "revoked_at",
        "revoked_reason",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected sign-ins (their tokens stop working)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiSignIn]) -> None:
        for sign_in in queryset:
            actions.do_revoke_api_sign_in(sign_in)
        self.message_user(request, "Revoked.", messages.SUCCESS)
