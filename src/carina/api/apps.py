from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "carina.api"
    label = "api"
    verbose_name = "REST API"
