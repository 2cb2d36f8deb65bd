from django.apps import AppConfig


class QaConfig(AppConfig):
    name = "apps.qa"
    label = "qa"
    verbose_name = "Questions and answers"
