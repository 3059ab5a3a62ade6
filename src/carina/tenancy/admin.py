from django.contrib import admin

from carina.tenancy.models import Hospital, HospitalAETitle


class AETitleInline(admin.TabularInline[HospitalAETitle, Hospital]):
    model = HospitalAETitle
    extra = 0


@admin.register(Hospital)
class HospitalAdmin(admin.ModelAdmin[Hospital]):
    list_display = ["name", "slug", "duplicate_policy", "unknown_calling_ae_policy"]
    search_fields = ["name", "slug"]
    inlines = [AETitleInline]
