"""The server keeps only the UTC day a device was last seen (for expiry); the exact last use
moves to the account's end-to-end-encrypted synced state, written by each device itself."""

from datetime import UTC

from django.db import migrations, models


def to_day(apps, schema_editor):
    Device = apps.get_model("devices", "Device")
    for device in Device.objects.only("pk", "last_used_at").iterator():
        Device.objects.filter(pk=device.pk).update(
            last_seen_on=device.last_used_at.astimezone(UTC).date()
        )


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0004_server_process_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="device",
            name="last_seen_on",
            field=models.DateField(null=True),
        ),
        migrations.RunPython(to_day, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="device",
            name="last_seen_on",
            field=models.DateField(),
        ),
        migrations.RemoveField(
            model_name="device",
            name="last_used_at",
        ),
    ]
