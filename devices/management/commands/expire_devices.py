"""Periodic job: run every few minutes (cron or a systemd timer), see docs/architecture.md."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from flows.expiry import devices_expire


class Command(BaseCommand):
    help = (
        "Drop expired link sessions, challenges and prekey claims; log out companions of"
        " long-inactive primaries; reap the socket rows of server processes that stopped"
        " beating."
    )

    def handle(self, *args: object, **options: object) -> None:
        counts = devices_expire()
        self.stdout.write(
            ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in counts.items())
        )
