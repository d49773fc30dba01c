from django.apps import AppConfig


class AccessreqConfig(AppConfig):
    name = "accessreq"
    verbose_name = "Access catalog and requests"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(_ensure_default_policies, sender=self)


def _ensure_default_policies(**kwargs: object) -> None:
    """Every risk tier has an approval policy after migrate (and after test flushes)."""
    from django.db import connections

    from accessreq.policy import ensure_default_policies

    connection = connections[str(kwargs.get("using", "default"))]
    if "accessreq_policystage" in connection.introspection.table_names():
        ensure_default_policies()
