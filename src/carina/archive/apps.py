from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "carina.archive"
    label = "archive"
    verbose_name = "Archive"

    def ready(self) -> None:
        import pydicom.config

        # Values that break VR rules are kept as received and reported by the validators that
        # matter (UIDs, transfer syntax), not as a warning per element in the logs.
        pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
