"""Forms of the administration pages and the account page. Each checks what a person can
correct (formats, ranges, names already taken) and says so beside the field; the state
change itself goes through the domain's ``do_*`` actions, whose refusals are shown too."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password

from carina.accounts.models import Role
from carina.audit.models import Action, Outcome
from carina.config.env import ConfigError, validate_ae_title
from carina.dimse.actions import sendable_syntaxes
from carina.dimse.models import Kind, RemoteNode
from carina.tenancy.models import DuplicatePolicy, Hospital, UnknownCallingAEPolicy


def _ae_title(value: str, what: str = "AE title") -> str:
    try:
        return validate_ae_title(value, what)
    except ConfigError as exc:
        raise forms.ValidationError(str(exc)) from None


class NodeForm(forms.Form):
    """A known node of the current hospital: who may call Carina, and where it may send."""

    name = forms.CharField(
        max_length=64, help_text="Short name, used by `carina send --to` and in the send dialog."
    )
    kind = forms.ChoiceField(choices=Kind.choices, initial=Kind.DIMSE, label="Kind")
    ae_title = forms.CharField(
        label="AE title",
        max_length=16,
        required=False,
        help_text="1–16 characters, no backslash (PS3.5 6.2); empty for a DICOMweb node.",
    )
    host = forms.CharField(
        max_length=255, required=False, help_text="Host name or IP address it listens on."
    )
    port = forms.IntegerField(min_value=1, max_value=65535, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    enabled = forms.BooleanField(
        required=False, initial=True, help_text="A disabled node is refused."
    )
    may_echo = forms.BooleanField(label="May verify (C-ECHO)", required=False, initial=True)
    may_store = forms.BooleanField(label="May store (C-STORE)", required=False, initial=True)
    may_query = forms.BooleanField(label="May query (C-FIND)", required=False, initial=True)
    may_retrieve = forms.BooleanField(
        label="May retrieve (C-MOVE, C-GET)", required=False, initial=True
    )
    is_move_destination = forms.BooleanField(
        label="Destination (C-MOVE and sending)", required=False, initial=True
    )
    use_tls = forms.BooleanField(label="Connect with TLS", required=False)
    max_associations = forms.IntegerField(
        label="Parallel associations", min_value=1, max_value=32, initial=2
    )
    preferred_transfer_syntax = forms.ChoiceField(label="Preferred transfer syntax", required=False)
    dicomweb_url = forms.URLField(
        label="DICOMweb URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="For a DICOMweb node: its root, e.g. https://pacs.example/dicomweb.",
    )
    dicomweb_token = forms.CharField(
        label="DICOMweb token",
        required=False,
        max_length=4000,
        widget=forms.PasswordInput(render_value=False),
        help_text="Sent as a Bearer token. Leave empty to keep the stored one.",
    )

    def __init__(
        self, *args: Any, hospital: Hospital, node: RemoteNode | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.hospital = hospital
        self.node = node
        self.fields["preferred_transfer_syntax"].choices = [  # type: ignore[attr-defined]
            ("", "As stored"),
            *((str(s), f"{s.name} ({s})") for s in sendable_syntaxes()),
        ]
        if node is not None:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "A node's name cannot change."

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError("Give the node a name.")
        if self.node is None and (
            RemoteNode.objects.for_hospital(self.hospital).filter(name=name).exists()
        ):
            raise forms.ValidationError(
                f"A node called {name!r} exists already; choose another name."
            )
        return name

    def clean_ae_title(self) -> str:
        value = str(self.cleaned_data.get("ae_title") or "").strip()
        if not value:
            return ""
        title = _ae_title(value)
        clash = RemoteNode.objects.for_hospital(self.hospital).filter(ae_title=title)
        if self.node is not None:
            clash = clash.exclude(pk=self.node.pk)
        other = clash.first()
        if other is not None:
            raise forms.ValidationError(
                f"The node {other.name!r} already has AE title {title!r}; a calling AE title "
                "must identify one node."
            )
        return title

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("kind") == Kind.DICOMWEB:
            if not cleaned.get("dicomweb_url") and not self.has_error("dicomweb_url"):
                self.add_error("dicomweb_url", "A DICOMweb node needs its DICOMweb URL.")
        else:
            if not cleaned.get("ae_title") and not self.has_error("ae_title"):
                self.add_error("ae_title", "A DICOM node needs its AE title.")
            if not str(cleaned.get("host") or "").strip() and not self.has_error("host"):
                self.add_error("host", "Give the host name or IP address the node listens on.")
            if cleaned.get("port") is None and not self.has_error("port"):
                self.add_error("port", "Give the port the node listens on (often 104 or 11112).")
        host = str(cleaned.get("host") or "").strip()
        if any(c.isspace() for c in host):
            self.add_error("host", "A host name has no spaces.")
        return cleaned


class PoliciesForm(forms.Form):
    duplicate_policy = forms.ChoiceField(
        label="An object that arrives again with different content",
        choices=DuplicatePolicy.choices,
        widget=forms.RadioSelect,
    )
    unknown_calling_ae_policy = forms.ChoiceField(
        label="An association from an AE title that is not a known node",
        choices=UnknownCallingAEPolicy.choices,
        widget=forms.RadioSelect,
    )


class HospitalForm(forms.Form):
    slug = forms.SlugField(
        max_length=64,
        help_text="Short identifier, letters, digits, - and _ (e.g. north-clinic). It cannot "
        "change later.",
    )
    name = forms.CharField(max_length=200)
    ae_titles = forms.CharField(
        label="AE titles",
        required=False,
        help_text="The called AE titles this hospital answers to, separated by spaces or "
        "commas. Each selects exactly one hospital.",
    )

    def __init__(self, *args: Any, hospital: Hospital | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hospital = hospital
        if hospital is not None:
            self.fields["slug"].disabled = True
            self.fields["ae_titles"].label = "Add AE titles"

    def clean_slug(self) -> str:
        slug = str(self.cleaned_data["slug"])
        if self.hospital is None and Hospital.objects.filter(slug=slug).exists():
            raise forms.ValidationError(f"A hospital {slug!r} exists already.")
        return slug

    def clean_ae_titles(self) -> list[str]:
        raw = str(self.cleaned_data.get("ae_titles") or "")
        titles = [t for t in raw.replace(",", " ").split() if t]
        cleaned = []
        errors = []
        for title in titles:
            try:
                cleaned.append(_ae_title(title))
            except forms.ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise forms.ValidationError(errors)
        from carina.tenancy.models import HospitalAETitle

        for title in cleaned:
            owner = (
                HospitalAETitle.objects.filter(ae_title=title).select_related("hospital").first()
            )
            if owner is not None and (
                self.hospital is None or owner.hospital_id != self.hospital.pk
            ):
                errors.append(
                    f"AE title {title!r} already belongs to {owner.hospital.name}; each AE title "
                    "selects one hospital."
                )
        if errors:
            raise forms.ValidationError(errors)
        return cleaned


def _role_choices() -> list[tuple[str, str]]:
    return list(Role.choices)


class UserCreateForm(forms.Form):
    username = forms.CharField(label="User name", max_length=150)
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=_role_choices)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not common, not only digits, not like the user name.",
    )

    def clean_username(self) -> str:
        username = str(self.cleaned_data["username"]).strip()
        if not username:
            raise forms.ValidationError("Give a user name.")
        if get_user_model().objects.filter(username=username).exists():
            raise forms.ValidationError(
                f"The user name {username!r} is taken; choose another, or add that user to "
                "this hospital below."
            )
        return username

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        password = cleaned.get("password")
        if password:
            user = get_user_model()(
                username=cleaned.get("username", ""),
                email=cleaned.get("email", ""),
                first_name=cleaned.get("first_name", ""),
                last_name=cleaned.get("last_name", ""),
            )
            try:
                validate_password(password, user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class AddMemberForm(forms.Form):
    username = forms.CharField(label="User name", max_length=150)
    role = forms.ChoiceField(choices=_role_choices)

    def clean_username(self) -> Any:
        username = str(self.cleaned_data["username"]).strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"No user {username!r}; create the account above instead.")
        return user


class UserEditForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(label="Role in this hospital", choices=_role_choices)
    is_active = forms.BooleanField(
        label="Active", required=False, help_text="An inactive account cannot sign in."
    )
    password = forms.CharField(
        label="New password",
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the current password.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = str(self.cleaned_data.get("password") or "")
        if password:
            validate_password(password, self.user)
        return password


class AuditFilterForm(forms.Form):
    """The audit trail's filters."""

    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    action = forms.ChoiceField(
        label="Action", required=False, choices=[("", "Any action"), *Action.choices]
    )
    outcome = forms.ChoiceField(
        label="Outcome", required=False, choices=[("", "Any outcome"), *Outcome.choices]
    )
    actor = forms.CharField(
        label="Who",
        required=False,
        max_length=150,
        help_text="User name or calling AE title, exact.",
    )
    patient_id = forms.CharField(
        label="Patient ID",
        required=False,
        max_length=64,
        help_text="Exact; * and ? are wild cards.",
    )
    object_uid = forms.CharField(label="Object UID", required=False, max_length=128)
    q = forms.CharField(
        label="Detail contains", required=False, max_length=200, help_text="Ignoring case."
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error(
                "date_to",
                f"The end date ({end:%Y-%m-%d}) is before the start date ({start:%Y-%m-%d}).",
            )
        return cleaned


class SwitchHospitalForm(forms.Form):
    hospital = forms.SlugField()
    next = forms.CharField(required=False)
