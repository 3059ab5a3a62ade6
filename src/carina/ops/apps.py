from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "carina.ops"
    label = "ops"
    verbose_name = "Operations"
