"""Widen AuditEvent.target_id to hold a scope triple ("action:system:environment", up to 202
characters): API authorization decisions and deployment refusals target one, and PostgreSQL
refused the longer ones. SQLite rebuilds the table to alter a column, so the append-only
triggers are lifted around the change, as in 0003. Stored values (and their hashes) are
unchanged."""

from django.db import migrations, models

from audit.db import install_append_only, remove_append_only


def lift_triggers(apps, schema_editor):
    remove_append_only(schema_editor.connection, ("audit_auditevent",))


def restore_triggers(apps, schema_editor):
    install_append_only(schema_editor.connection, ("audit_auditevent",))


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_ledger_chain")]

    operations = [
        migrations.RunPython(lift_triggers, restore_triggers),
        migrations.AlterField(
            model_name="auditevent",
            name="target_id",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.RunPython(restore_triggers, lift_triggers),
    ]
