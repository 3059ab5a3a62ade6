"""Template helpers of the web application: form fields rendered accessibly (label, hint,
inline error tied to the input), DICOM values shown for people (names, dates, sizes)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms, template
from django.utils.html import format_html

register = template.Library()


@register.inclusion_tag("ui/_field.html")
def field(bound: forms.BoundField, **options: Any) -> dict[str, Any]:
    """A form field: its label, its input (``aria-describedby`` naming the hint and the error,
    ``aria-invalid`` when it has one), its hint and its error messages."""
    described = []
    shared_hint = options.get("hint", "")
    if shared_hint:
        described.append(shared_hint)  # a hint shared by several fields, shown elsewhere
    elif bound.help_text:
        described.append(f"{bound.auto_id}-hint")
    if bound.errors:
        described.append(f"{bound.auto_id}-error")
    attrs: dict[str, Any] = {}
    if described:
        attrs["aria-describedby"] = " ".join(described)
    if bound.errors:
        attrs["aria-invalid"] = "true"
    if bound.field.required and not isinstance(bound.field.widget, forms.CheckboxInput):
        attrs["required"] = True
    choices = isinstance(bound.field.widget, forms.CheckboxSelectMultiple | forms.RadioSelect)
    return {
        "bound": bound,
        "widget": bound.as_widget(attrs=attrs),
        "checkbox": isinstance(bound.field.widget, forms.CheckboxInput),
        "group": choices,
        "described": " ".join(described),
        "class": options.get("class", ""),
        "hide_label": options.get("hide_label", False),
        "show_hint": bool(bound.help_text) and not shared_hint,
    }


@register.filter
def person_name(value: str | None) -> str:
    """A DICOM PN (``DOE^JANE^^DR``) as people read it: ``DOE, JANE DR``."""
    if not value:
        return ""
    alphabetic = str(value).split("=", 1)[0]
    parts = [p.strip() for p in alphabetic.split("^")]
    family, given = parts[0], " ".join(p for p in parts[1:] if p)
    if family and given:
        return f"{family}, {given}"
    return family or given


@register.filter
def dicom_date(value: dt.date | None) -> str:
    """A date as ISO 8601 (2026-01-31), or an empty string."""
    return value.isoformat() if value else ""


@register.filter
def dicom_time(value: dt.time | None) -> str:
    return value.strftime("%H:%M") if value else ""


@register.filter
def sex(value: str | None) -> str:
    return {"M": "Male", "F": "Female", "O": "Other"}.get(str(value or "").upper(), value or "")


@register.simple_tag
def badge(text: str, kind: str = "") -> str:
    return format_html('<span class="badge {}">{}</span>', kind, text)


@register.filter
def get(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key, "")


@register.filter
def words(value: str | None) -> str:
    """An identifier as words: ``already_present`` → ``already present``."""
    return str(value or "").replace("_", " ")
