"""The per-device queue of opaque envelopes, history blobs, attachments and each account's
state log. The server never sees what is inside any of them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from devices.models import Device


class GroupMessage(models.Model):
    """A group message stored once for every device it goes to (docs/protocol.md 25.9): the
    queue rows of its targets point at it; deleted with the last of them."""

    ciphertext = models.BinaryField(max_length=70000)
    created_at = models.DateTimeField(db_index=True)


class QueuedEnvelope(models.Model):
    """One ciphertext waiting for one device; deleted when that device acknowledges it.
    The primary key is the device's queue position (`seq` on the wire). A row of a group
    send points at its GroupMessage, and holds a ciphertext only when a pairwise
    distribution rode along for this device."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="queue")
    envelope_id = models.CharField(max_length=64)
    sender = models.CharField(max_length=32)
    sender_device_id = models.CharField(max_length=32)
    ciphertext = models.BinaryField(max_length=70000, null=True)
    group_message = models.ForeignKey(
        GroupMessage, on_delete=models.CASCADE, null=True, related_name="rows"
    )
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "sender_device_id", "envelope_id"],
                name="unique_envelope_per_device",
            )
        ]
        indexes = [models.Index(fields=["device", "id"])]


class SentEnvelope(models.Model):
    """The replay memory: an envelope id a sender device had accepted, kept for the
    retention window (30 days) so a resend stores nothing even after its rows were acked."""

    pk = models.CompositePrimaryKey("sender_device_id", "envelope_id")
    sender_device_id = models.CharField(max_length=32)
    envelope_id = models.CharField(max_length=64)
    accepted_at = models.DateTimeField(db_index=True)


class HistoryBlob(models.Model):
    """An encrypted history bundle (one secretstream) for one new device; deleted once fetched."""

    id = models.CharField(primary_key=True, max_length=32)
    from_device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    to_device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    data = models.BinaryField()
    created_at = models.DateTimeField()


class Attachment(models.Model):
    """One encrypted file (docs/protocol.md 19.5): a ciphertext blob of `size` bytes uploaded
    in pieces by one device, stored as files `<id>/<index>` in the `attachments` storage.
    Complete once every piece is stored; deleted when every device granted it has fetched it,
    or by the expiry job."""

    id = models.CharField(primary_key=True, max_length=22)  # the blob id: 16 bytes, base64url
    uploader_device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    # The account whose quota it counts against (the uploader's).
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    size = models.PositiveBigIntegerField()  # ciphertext bytes, as declared
    pieces_stored = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True)


class AttachmentGrant(models.Model):
    """A device a send named an attachment to (its target); it may fetch the blob, and once
    every grant is fetched the attachment is deleted."""

    attachment = models.ForeignKey(Attachment, on_delete=models.CASCADE, related_name="grants")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    fetched_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            # A resend of the same envelope grants nothing twice (ON CONFLICT DO NOTHING).
            models.UniqueConstraint(fields=["attachment", "device"], name="unique_attachment_grant")
        ]


class StateEntry(models.Model):
    """One entry of an account's state log (docs/protocol.md section 19.3): an opaque blob its
    devices wrote at a version, a patch or a snapshot standing for the whole state. Versions
    are dense from 1; once a snapshot is stored, the entries below it are deleted."""

    PATCH = "patch"
    SNAPSHOT = "snapshot"
    KINDS = [(PATCH, "patch"), (SNAPSHOT, "snapshot")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=8, choices=KINDS)
    blob = models.BinaryField()
    # Not a foreign key: the entry is the account's, and outlives its author's removal.
    author_device_id = models.CharField(max_length=32)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # The compare-and-swap's backstop: two writes at one version cannot both commit.
            models.UniqueConstraint(fields=["user", "version"], name="unique_state_version")
        ]


class Group(models.Model):
    """A group's membership log as the server holds it (docs/protocol.md section 25): the
    state after its latest entry, the JSON of protocol.groups.GroupState.to_dict() in UTF-8
    (bytes, not a JSON column: a group's name may hold U+0000, which PostgreSQL's jsonb
    refuses). Its row is what writes to the group queue on; the entries are in GroupEntry."""

    id = models.CharField(primary_key=True, max_length=22)  # the 16-byte group id, base64url
    state = models.BinaryField()


class GroupEntry(models.Model):
    """One signed entry of a group's membership log, stored in its wire form (section 25.1):
    seq is dense from 0 and each entry names the hash of the one before it."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="entries")
    seq = models.PositiveBigIntegerField()
    entry = models.BinaryField(max_length=16384)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # The compare-and-swap's backstop, as for the state log.
            models.UniqueConstraint(fields=["group", "seq"], name="unique_group_seq")
        ]


class GroupReader(models.Model):
    """An account that may read a group's log: a member (until_seq None), or one an entry
    removed or that left, up to and including that entry (until_seq), so its devices learn it.
    Accounts are named as the entries name them (usernames), not by foreign key: an entry may
    name an account that does not exist (yet)."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="readers")
    account = models.CharField(max_length=32)  # an account id (username), checked at the write
    until_seq = models.PositiveBigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "account"], name="unique_group_reader")
        ]
