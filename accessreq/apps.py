from django.apps import AppConfig


class AccessreqConfig(AppConfig):
    name = "accessreq"
    verbose_name = "Access catalog and requests"
