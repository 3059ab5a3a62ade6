from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "carina.api"
    label = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        # The OpenAPI descriptions of Carina's authentication classes (drf-spectacular).
        from carina.accounts import schema  # noqa: F401
