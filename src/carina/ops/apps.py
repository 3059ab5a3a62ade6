from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "carina.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from carina.archive.signals import instance_stored
        from carina.audit.signals import events_recorded
        from carina.ops import metrics

        # Ingest and DICOM association metrics, in whichever process does the work.
        instance_stored.connect(metrics.on_instance_stored, dispatch_uid="carina.ops.ingest")
        events_recorded.connect(metrics.on_audit_events, dispatch_uid="carina.ops.associations")
