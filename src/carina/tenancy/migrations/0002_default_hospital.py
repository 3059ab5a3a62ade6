"""The first hospital: slug ``default``, answering to CARINA_AE_TITLE, accepting unknown
calling AE titles so that a first run works (DESIGN.md, contract)."""

from django.conf import settings
from django.db import migrations


def create_default(apps, schema_editor):
    Hospital = apps.get_model("tenancy", "Hospital")
    HospitalAETitle = apps.get_model("tenancy", "HospitalAETitle")
    hospital, _ = Hospital.objects.get_or_create(
        slug="default",
        defaults={"name": "Default hospital", "unknown_calling_ae_policy": "accept"},
    )
    if not HospitalAETitle.objects.filter(ae_title=settings.CARINA_AE_TITLE).exists():
        HospitalAETitle.objects.create(hospital=hospital, ae_title=settings.CARINA_AE_TITLE)


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]
    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
