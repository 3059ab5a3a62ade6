from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "carina.tenancy"
    label = "tenancy"
    verbose_name = "Hospitals"
