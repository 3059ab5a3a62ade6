from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "carina.audit"
    label = "audit"
    verbose_name = "Audit trail"
