from django.apps import AppConfig


class DimseConfig(AppConfig):
    name = "carina.dimse"
    label = "dimse"
    verbose_name = "DICOM network"

    def ready(self) -> None:
        from carina.dimse.transport import configure_pynetdicom

        configure_pynetdicom()
