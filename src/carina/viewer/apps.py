from django.apps import AppConfig


class ViewerConfig(AppConfig):
    name = "carina.viewer"
    label = "viewer"
    verbose_name = "Viewer (OHIF)"
