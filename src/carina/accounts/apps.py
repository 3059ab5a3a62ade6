from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "carina.accounts"
    label = "accounts"
    verbose_name = "Accounts"
