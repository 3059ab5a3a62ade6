from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "carina.core"
    label = "core"
    verbose_name = "Carina core"
