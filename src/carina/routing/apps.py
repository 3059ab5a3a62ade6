from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "carina.routing"
    label = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from carina.routing import receivers  # noqa: F401 (connects the signal receivers)
