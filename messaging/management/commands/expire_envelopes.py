"""Periodic job: drop envelopes, history blobs and remembered envelope ids older than 30 days
(docs/architecture.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from messaging.services import queue_expire


class Command(BaseCommand):
    help = "Drop queued envelopes, history blobs and remembered envelope ids older than 30 days."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(f"expired: {queue_expire()}")
