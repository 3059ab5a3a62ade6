from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "carina.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
        from django.db.models.signals import post_save

        from carina.accounts.models import PersonalToken
        from carina.audit import receivers

        user_logged_in.connect(receivers.record_sign_in, dispatch_uid="carina.audit.sign_in")
        user_login_failed.connect(
            receivers.record_failed_sign_in, dispatch_uid="carina.audit.failed_sign_in"
        )
        user_logged_out.connect(receivers.record_sign_out, dispatch_uid="carina.audit.sign_out")
        post_save.connect(
            receivers.record_personal_token,
            sender=PersonalToken,
            dispatch_uid="carina.audit.personal_token",
        )
