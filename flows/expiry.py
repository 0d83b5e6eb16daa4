"""The periodic job of `manage.py expire_devices`, one function for the command and tests."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from accounts.challenges import challenges_expire
from devices.linking import link_sessions_expire
from devices.prekeys import prekey_claims_expire
from devices.presence import sockets_reap
from flows.removal import companions_of_idle_primaries_remove


def devices_expire(*, now: datetime | None = None) -> dict[str, int]:
    """Drop expired link sessions, challenges and prekey claims; log out the companions of
    long-idle primaries; reap the socket rows of server processes that stopped beating.
    Returns what each step removed, in that order."""
    moment = now or timezone.now()
    return {
        "link_sessions": link_sessions_expire(now=moment),
        "challenges": challenges_expire(now=moment),
        "companions_logged_out": companions_of_idle_primaries_remove(now=moment),
        "prekey_claims": prekey_claims_expire(now=moment),
        "sockets_reaped": sockets_reap(now=moment),
    }
