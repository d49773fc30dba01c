"""Chain the ledger: sequence numbers and hashes, signed checkpoints and published keys.

Events written before this migration are chained here, in id order, with the triggers lifted
only for the duration of the backfill.
"""

from django.db import migrations, models

from audit import merkle
from audit.canonical import GENESIS, canonical_bytes, event_payload
from audit.db import install_append_only, remove_append_only


def lift_triggers(apps, schema_editor):
    remove_append_only(schema_editor.connection, ("audit_auditevent",))


def chain_existing(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    prev = GENESIS
    for number, event in enumerate(AuditEvent.objects.order_by("id").iterator(), start=1):
        event.sequence = number
        event.prev_hash = prev
        event.leaf_hash = merkle.leaf_hash(canonical_bytes(event_payload(event))).hex()
        event.save(update_fields=["sequence", "prev_hash", "leaf_hash"])
        prev = event.leaf_hash


def restore_triggers(apps, schema_editor):
    install_append_only(schema_editor.connection, ("audit_auditevent",))


def protect_checkpoints(apps, schema_editor):
    install_append_only(schema_editor.connection, ("audit_checkpoint",))


def unprotect_checkpoints(apps, schema_editor):
    remove_append_only(schema_editor.connection, ("audit_checkpoint",))


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]

    operations = [
        migrations.RunPython(lift_triggers, restore_triggers),
        migrations.AddField(
            model_name="auditevent",
            name="sequence",
            field=models.BigIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(
                default="", help_text="Leaf hash of the previous event.", max_length=64
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="leaf_hash",
            field=models.CharField(
                default="", help_text="SHA-256(0x00 || canonical event).", max_length=64
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="pipeline",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="occurred_at",
            field=models.DateTimeField(db_index=True, help_text="Database time."),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.BigIntegerField(
                help_text="Gapless, from 1, in commit order.", unique=True
            ),
        ),
        migrations.AlterModelOptions(name="auditevent", options={"ordering": ["sequence"]}),
        migrations.CreateModel(
            name="SigningKey",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key_id", models.CharField(max_length=16, unique=True)),
                (
                    "public_key",
                    models.CharField(help_text="Raw 32-byte public key, hex.", max_length=64),
                ),
                ("created_at", models.DateTimeField()),
                ("retired_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={"ordering": ["created_at"]},
        ),
        migrations.CreateModel(
            name="Checkpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("tree_size", models.BigIntegerField()),
                ("root_hash", models.CharField(max_length=64)),
                ("signed_at", models.DateTimeField()),
                ("key_id", models.CharField(max_length=16)),
                (
                    "signature",
                    models.CharField(help_text="Ed25519 signature, hex.", max_length=128),
                ),
            ],
            options={"ordering": ["tree_size", "id"], "get_latest_by": "tree_size"},
        ),
        migrations.RunPython(restore_triggers, lift_triggers),
        migrations.RunPython(protect_checkpoints, unprotect_checkpoints),
    ]
