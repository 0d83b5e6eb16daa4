"""Periodic job: drop envelopes, history blobs and remembered envelope ids older than 30 days,
and attachments past their retention or unfinished for a day (docs/architecture.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from messaging.services import queue_expire


class Command(BaseCommand):
    help = (
        "Drop queued envelopes, history blobs and remembered envelope ids older than 30 days,"
        " and expired attachments."
    )

    def handle(self, *args: object, **options: object) -> None:
        expired = queue_expire()
        self.stdout.write(f"expired: {expired.envelopes}")
        self.stdout.write(f"expired attachments: {expired.attachments}")
