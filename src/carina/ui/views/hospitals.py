"""Hospitals, their AE titles (system administrators, ``/manage/hospitals/``) and the current
hospital's policies (its administrators, ``/manage/policies/``)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render

from carina.accounts.access import Permission
from carina.tenancy.actions import TenancyError, do_add_hospital
from carina.tenancy.models import Hospital
from carina.ui.access import page, tenant
from carina.ui.actions import do_remove_ae_title, do_set_policies
from carina.ui.forms import HospitalForm, PoliciesForm


@page(Permission.MANAGE_NODES, methods=("GET", "HEAD", "POST"))
def policies(request: HttpRequest) -> HttpResponseBase:
    hospital = tenant(request)
    if request.method == "POST":
        form = PoliciesForm(request.POST)
        if form.is_valid():
            do_set_policies(hospital, **form.cleaned_data)
            messages.success(request, f"Saved the policies of {hospital.name}.")
            return redirect("ui:policies")
        status = 400
    else:
        form = PoliciesForm(
            initial={
                "duplicate_policy": hospital.duplicate_policy,
                "unknown_calling_ae_policy": hospital.unknown_calling_ae_policy,
            }
        )
        status = 200
    titles = list(hospital.ae_titles.values_list("ae_title", flat=True))
    return render(
        request, "ui/manage/policies.html", {"form": form, "ae_titles": titles}, status=status
    )


@page(Permission.MANAGE_HOSPITALS)
def hospital_list(request: HttpRequest) -> HttpResponse:
    hospitals = Hospital.objects.order_by("name").prefetch_related("ae_titles")
    return render(request, "ui/manage/hospitals.html", {"hospitals": list(hospitals)})


@page(Permission.MANAGE_HOSPITALS, methods=("GET", "HEAD", "POST"))
def hospital_add(request: HttpRequest) -> HttpResponseBase:
    form = HospitalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            hospital, _ = do_add_hospital(data["slug"], data["name"], data["ae_titles"])
        except TenancyError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Added the hospital {hospital.name}.")
            return redirect("ui:hospitals")
    status = 400 if request.method == "POST" else 200
    return render(request, "ui/manage/hospital_form.html", {"form": form}, status=status)


@page(Permission.MANAGE_HOSPITALS, methods=("GET", "HEAD", "POST"))
def hospital_edit(request: HttpRequest, slug: str) -> HttpResponseBase:
    hospital = Hospital.objects.filter(slug=slug).first()
    if hospital is None:
        raise Http404(f"No hospital {slug!r}.")
    initial = {"slug": hospital.slug, "name": hospital.name}
    form = HospitalForm(initial=initial, hospital=hospital)
    status = 200
    if request.method == "POST":
        remove = request.POST.get("remove_ae_title")
        if remove:
            try:
                do_remove_ae_title(hospital, remove)
            except TenancyError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"{hospital.name} no longer answers to {remove}.")
            return redirect("ui:hospital-edit", slug=hospital.slug)
        form = HospitalForm(request.POST, initial=initial, hospital=hospital)
        if form.is_valid():
            data = form.cleaned_data
            try:
                do_add_hospital(hospital.slug, data["name"], data["ae_titles"])
            except TenancyError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Saved {data['name']}.")
                return redirect("ui:hospital-edit", slug=hospital.slug)
        status = 400
    titles = list(hospital.ae_titles.values_list("ae_title", flat=True))
    return render(
        request,
        "ui/manage/hospital_form.html",
        {"form": form, "hospital": hospital, "ae_titles": titles},
        status=status,
    )
