from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "carina.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from carina.audit import receivers

        user_logged_in.connect(receivers.record_sign_in, dispatch_uid="carina.audit.sign_in")
        user_login_failed.connect(
            receivers.record_failed_sign_in, dispatch_uid="carina.audit.failed_sign_in"
        )
