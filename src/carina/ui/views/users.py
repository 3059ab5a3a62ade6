"""Users and roles of the current hospital (``/manage/users/``), through
:mod:`carina.accounts.membership_actions` (the same rules as ``/api/users/``: a hospital
never loses its last administrator; a hospital administrator changes only accounts that
belong to no hospital they do not manage, and never a system administrator)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render

from carina.accounts.access import Permission, has_permission
from carina.accounts.actions import do_disable_totp, do_unlock
from carina.accounts.lockout import locked_until
from carina.accounts.membership_actions import (
    MembershipError,
    do_add_member,
    do_create_member,
    do_remove_member,
    do_set_role,
    do_update_user,
)
from carina.accounts.models import Membership, TOTPDevice
from carina.ui.access import page, tenant
from carina.ui.forms import AddMemberForm, UserCreateForm, UserEditForm


def _membership(request: HttpRequest, user_id: int) -> Membership:
    membership = (
        Membership.objects.filter(hospital=tenant(request), user_id=user_id)
        .select_related("user")
        .first()
    )
    if membership is None:
        raise Http404(f"No user {user_id} in {tenant(request).name}.")
    return membership


def check_manageable(request: HttpRequest, user: Any) -> None:
    """Refuse (403) a change a hospital administrator may not make to ``user``."""
    if request.user.is_superuser:
        return
    if user.is_superuser:
        raise PermissionDenied("Only a system administrator may change a system administrator.")
    for membership in Membership.objects.filter(user=user).select_related("hospital"):
        if not has_permission(request.user, membership.hospital, Permission.MANAGE_USERS):
            raise PermissionDenied(
                f"{user.get_username()} also belongs to {membership.hospital.name}, which you do "
                "not manage; ask a system administrator to change this account."
            )


@page(Permission.MANAGE_USERS)
def user_list(request: HttpRequest) -> HttpResponse:
    members = (
        Membership.objects.filter(hospital=tenant(request))
        .select_related("user")
        .order_by("user__username")
    )
    with_app = set(
        TOTPDevice.objects.filter(
            confirmed=True, user__memberships__hospital=tenant(request)
        ).values_list("user_id", flat=True)
    )
    return render(request, "ui/manage/users.html", {"members": list(members), "with_app": with_app})


@page(Permission.MANAGE_USERS, methods=("GET", "HEAD", "POST"))
def user_add(request: HttpRequest) -> HttpResponseBase:
    """Create an account in this hospital, or add an existing one to it."""
    hospital = tenant(request)
    create = UserCreateForm(prefix="new")
    add = AddMemberForm(prefix="existing")
    status = 200
    if request.method == "POST":
        if request.POST.get("form") == "existing":
            add = AddMemberForm(request.POST, prefix="existing")
            if add.is_valid():
                try:
                    do_add_member(hospital, add.cleaned_data["username"], add.cleaned_data["role"])
                except MembershipError as exc:
                    add.add_error("username", str(exc))
                else:
                    messages.success(
                        request,
                        f"Added {add.cleaned_data['username'].get_username()} to {hospital.name}.",
                    )
                    return redirect("ui:users")
        else:
            create = UserCreateForm(request.POST, prefix="new")
            if create.is_valid():
                data = create.cleaned_data
                try:
                    do_create_member(
                        hospital,
                        data["username"],
                        data["password"],
                        data["role"],
                        email=data.get("email", ""),
                        first_name=data.get("first_name", ""),
                        last_name=data.get("last_name", ""),
                    )
                except MembershipError as exc:
                    create.add_error(None, str(exc))
                else:
                    messages.success(request, f"Created the account {data['username']}.")
                    return redirect("ui:users")
        status = 400
    return render(request, "ui/manage/user_add.html", {"create": create, "add": add}, status=status)


@page(Permission.MANAGE_USERS, methods=("GET", "HEAD", "POST"))
def user_edit(request: HttpRequest, user_id: int) -> HttpResponseBase:
    membership = _membership(request, user_id)
    user = membership.user
    status = 200
    initial = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "role": membership.role,
        "is_active": user.is_active,
    }
    form = UserEditForm(initial=initial, user=user)
    if request.method == "POST":
        check_manageable(request, user)
        action = request.POST.get("action", "save")
        if action == "disable_totp":
            do_disable_totp(user)
            messages.success(request, f"Turned off the authenticator app of {user.username}.")
            return redirect("ui:user-edit", user_id=user.pk)
        if action == "unlock":
            do_unlock(user.username)
            messages.success(request, f"Unlocked {user.username}.")
            return redirect("ui:user-edit", user_id=user.pk)
        form = UserEditForm(request.POST, user=user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                do_update_user(
                    user,
                    email=data.get("email", ""),
                    first_name=data.get("first_name", ""),
                    last_name=data.get("last_name", ""),
                    is_active=bool(data.get("is_active")),
                    password=data.get("password") or None,
                )
                do_set_role(membership, data["role"])
            except MembershipError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Saved {user.username}.")
                return redirect("ui:users")
        status = 400
    context = {
        "form": form,
        "member": user,
        "membership": membership,
        "has_app": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        "locked_until": locked_until(user.username),
    }
    return render(request, "ui/manage/user_edit.html", context, status=status)


@page(Permission.MANAGE_USERS, methods=("GET", "HEAD", "POST"))
def user_remove(request: HttpRequest, user_id: int) -> HttpResponseBase:
    membership = _membership(request, user_id)
    if request.method == "POST":
        check_manageable(request, membership.user)
        try:
            do_remove_member(membership)
        except MembershipError as exc:
            messages.error(request, str(exc))
            return redirect("ui:user-edit", user_id=user_id)
        messages.success(
            request, f"Removed {membership.user.username} from {tenant(request).name}."
        )
        return redirect("ui:users")
    return render(request, "ui/manage/user_remove.html", {"membership": membership})
