"""Devices and the key directory: identity keys, prekeys, signed device lists, link sessions.

The server stores public keys and signed lists only; every list is checked with protocol/
before it is stored, but clients never trust the server's checks (docs/protocol.md §4).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models


class Device(models.Model):
    """One browser (or command-line client) of an account, with its own identity key."""

    id = models.CharField(primary_key=True, max_length=32)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices"
    )
    identity_key = models.BinaryField(max_length=32, unique=True)
    is_primary = models.BooleanField(default=False)
    name = models.CharField(max_length=64)
    platform = models.CharField(max_length=128, blank=True)
    added_at = models.DateTimeField()
    # The UTC day the server last saw the device (a request, a socket): what expiry needs
    # and no more. Its exact last use the device writes to the account's synced state,
    # which the server cannot read (docs/protocol.md section 22.8).
    last_seen_on = models.DateField()
    # A revoked device is cut off at once; it stays in the signed list until the primary
    # re-signs one without it (a server-side suspension only shrinks the target set).
    revoked_at = models.DateTimeField(null=True, db_index=True)
    revoked_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class DeviceSession(models.Model):
    """The Django sessions bound to a device, so revoking the device ends them at once."""

    session_key = models.CharField(max_length=40, primary_key=True)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="sessions")


class DeviceSocket(models.Model):
    """An open WebSocket of a device ("active now"), held by one server process. The process
    deletes the row however the socket ends; the rows of a process that stopped beating (a
    killed node) count for nothing and are reaped by the others (docs/architecture.md)."""

    channel_name = models.CharField(max_length=128, primary_key=True)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="sockets")
    process_id = models.CharField(max_length=32, db_index=True)
    seen_at = models.DateTimeField()


class ServerProcess(models.Model):
    """A Daphne process holding sockets, and when it last said it was alive."""

    id = models.CharField(primary_key=True, max_length=32)
    beat_at = models.DateTimeField(db_index=True)


class SignedPrekey(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="signed_prekeys")
    key_id = models.PositiveIntegerField()
    public_key = models.BinaryField(max_length=32)
    signature = models.BinaryField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "key_id"], name="unique_signed_prekey_id")
        ]


class OneTimePrekey(models.Model):
    """Handed out at most once, then deleted."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="one_time_prekeys")
    key_id = models.PositiveIntegerField()
    public_key = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "key_id"], name="unique_one_time_prekey_id")
        ]


class KemPrekey(models.Model):
    """A one-time ML-KEM-768 prekey, signed with its last-resort flag 0 (docs/protocol.md
    27.1): handed out at most once, then deleted."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="kem_prekeys")
    key_id = models.PositiveIntegerField()
    public_key = models.BinaryField(max_length=1184)
    signature = models.BinaryField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "key_id"], name="unique_kem_prekey_id")
        ]


class LastResortKemPrekey(models.Model):
    """A device's one last-resort ML-KEM-768 prekey (signed with the flag 1): in its bundles
    when no one-time KEM prekey is left or the requester's share is used; never deleted by a
    claim, replaced by the next upload."""

    device = models.OneToOneField(
        Device, on_delete=models.CASCADE, primary_key=True, related_name="last_resort_kem_prekey"
    )
    key_id = models.PositiveIntegerField()
    public_key = models.BinaryField(max_length=1184)
    signature = models.BinaryField(max_length=64)
    created_at = models.DateTimeField()


class PrekeyClaim(models.Model):
    """One one-time prekey of `device` handed to an account other than its owner's: each
    requester account gets at most PARLEY_PREKEY_SHARE of a device's pool per
    PARLEY_PREKEY_SHARE_SECONDS (docs/protocol.md section 3.2), so nobody drains it. The
    X25519 and the KEM pool are counted apart (`kind`, 27.6)."""

    class Kind(models.TextChoices):
        X25519 = "x25519"  # a one-time prekey (OneTimePrekey)
        KEM = "kem", "KEM"  # a one-time KEM prekey (KemPrekey)

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.X25519)
    claimed_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["device", "requester", "kind", "claimed_at"])]


class DeviceList(models.Model):
    """An account-signed device list exactly as the primary published it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_lists"
    )
    version = models.PositiveBigIntegerField()
    account_key = models.BinaryField(max_length=32)
    body = models.JSONField()
    list_hash = models.BinaryField(max_length=32)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "version"], name="unique_list_version")
        ]
        ordering = ["-version"]

    def listed_device_ids(self) -> list[str]:
        """The device ids the signed list names (`body` is the list exactly as signed)."""
        return [entry["device_id"] for entry in self.body["devices"]]


def link_secret_hash(secret: str) -> bytes:
    """What a link session stores of its browser's secret cookie."""
    return hashlib.sha256(secret.encode()).digest()


class LinkSession(models.Model):
    """A new browser asking to become a companion (DESIGN §4). Short-lived and single-use,
    bound to the browser that opened it by an HttpOnly cookie (only its hash is stored).
    Its states and the moves between them: devices.linkstates."""

    class State(models.TextChoices):
        WAITING = "waiting"  # QR shown, nobody approved yet
        APPROVED = "approved"  # primary approved with a passkey and sealed the provisioning payload
        SIGNED = "signed"  # the new device returned its device signature
        LINKED = "linked"  # list v+1 published, device created; token not yet redeemed
        REDEEMED = "redeemed"  # the new browser has its own session
        CANCELLED = "cancelled"
        ACCOUNT_FULL = "account_full"  # refused: the account already has the most companions

    id = models.CharField(primary_key=True, max_length=32)
    browser_secret_hash = models.BinaryField(max_length=32)
    device_id = models.CharField(max_length=32)
    identity_key = models.BinaryField(max_length=32)
    ephemeral_key = models.BinaryField(max_length=32)
    name = models.CharField(max_length=64)
    platform = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)
    approving_device = models.ForeignKey(
        Device, null=True, on_delete=models.CASCADE, related_name="+"
    )
    server_nonce = models.BinaryField(max_length=32, null=True)
    provisioning = models.BinaryField(max_length=1024, null=True)
    device_signature = models.BinaryField(max_length=64, null=True)
    send_history = models.BooleanField(default=False)
    prekeys = models.JSONField(null=True)
    token_nonce = models.BinaryField(max_length=32, null=True)
    linked_device = models.ForeignKey(Device, null=True, on_delete=models.CASCADE, related_name="+")
