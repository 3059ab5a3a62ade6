from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "carina.routing"
    label = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from carina.ops.checks import register
        from carina.routing import receivers  # noqa: F401 (connects the signal receivers)
        from carina.routing.heartbeat import check_workers

        # Information only: never a readiness failure (docs/routing.md, "Worker liveness").
        register("workers", check_workers, required=False)
