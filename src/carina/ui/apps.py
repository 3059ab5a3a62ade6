from django.apps import AppConfig


class UiConfig(AppConfig):
    name = "carina.ui"
    label = "ui"
    verbose_name = "Web application"
