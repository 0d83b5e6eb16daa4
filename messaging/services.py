"""Every state change of the envelope queue, history blobs and state logs: one function each
(the group membership log's is in messaging/group_log.py, attachments' in
messaging/attachments.py but for the grants a send makes, written here in its commit).

Durable before acknowledged: `envelope_accept` commits one row per target device, and only
then may the consumer answer `accepted`; the channel layer is only a doorbell, rung after
commit. Rows are deleted on the recipient device's ack, or after 30 days.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from devices import events
from devices.models import Device, DeviceSocket
from messaging import queue_db
from messaging.attachments import AttachmentUnknown, attachments_expire
from messaging.models import (
    GroupMessage,
    HistoryBlob,
    QueuedEnvelope,
    SentEnvelope,
    StateEntry,
)
from messaging.schemas import STATE_MAX_PATCHES, GroupSendRequest, SendRequest
from messaging.selectors import (
    Delivery,
    group_key,
    group_not_found,
    group_state_load,
    state_head,
)
from protocol.groups import GroupState
from web.errors import AppError, BadFrame, Forbidden, NotFound

ENVELOPE_TTL = timedelta(days=30)


class MismatchedDevices(AppError):
    code = "mismatched_devices"
    status = 409


class QueueFull(AppError):
    code = "recipient_queue_full"
    status = 429


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def target_check(
    *, sender_device_id: str, devices: dict[str, bool], targets: set[str], partial: bool = False
) -> None:
    """Client fan-out must name every active device of the recipient and every other
    device of the sender, and nothing else; otherwise `mismatched_devices` says what to fix.
    A partial send (a retry request or a resend, docs/protocol.md 24.4) names some of them.
    `devices` maps every device id of both accounts to whether it is active."""
    expected = {d for d, active in devices.items() if active} - {sender_device_id}
    stale = {d for d in targets if d in devices and not devices[d]}
    extra = targets - expected - stale
    missing = set() if partial else expected - targets
    if missing or extra or stale:
        raise MismatchedDevices(
            "The devices you encrypted for are not the current ones; refresh the device lists and retry.",
            data={"missing": sorted(missing), "extra": sorted(extra), "stale": sorted(stale)},
        )


@dataclass(frozen=True)
class SendItem:
    sender_device_id: str
    send: SendRequest | GroupSendRequest


# The queue's hot path is plain SQL: the ORM's query building cost more than the queries
# (FIELD-NOTES: ORM create 151 µs and filter().delete() 355 µs a row, executemany 7 µs). It
# runs on a cursor messaging/queue_db.py hands in (the event loop's own SQLite connection, or
# Django's in its thread), so these statements are standard SQL with `%s` placeholders that
# SQLite (3.24+) and PostgreSQL both run.
_DEVICES_OF_ACCOUNTS = """
    SELECT d.id, d.user_id, d.revoked_at IS NULL, u.username, u.is_active
    FROM devices_device d
    JOIN accounts_user u ON u.id = d.user_id
    WHERE u.username IN ({names})
       OR d.user_id IN (SELECT user_id FROM devices_device WHERE id IN ({senders}))
"""
_INSERT = """
    INSERT INTO messaging_queuedenvelope
        (device_id, envelope_id, sender, sender_device_id, ciphertext, created_at, group_message_id)
    VALUES {values}
    ON CONFLICT (device_id, sender_device_id, envelope_id) DO NOTHING
    RETURNING id, device_id, sender_device_id, envelope_id
"""
_CHUNK = 500  # rows (or names) per statement: 7 parameters each, far below SQLite's limit
_INSERT_GROUP_MESSAGE = """
    INSERT INTO messaging_groupmessage (ciphertext, created_at) VALUES (%s, %s) RETURNING id
"""
_GROUP_STATES = "SELECT id, state FROM messaging_group WHERE id IN ({marks})"
# The rows an ack deletes, and then the group messages whose last row that was (25.9).
_ACK = "DELETE FROM messaging_queuedenvelope WHERE device_id = %s AND id IN ({marks}) RETURNING group_message_id"
_ORPHANS = """
    DELETE FROM messaging_groupmessage WHERE id IN ({marks})
    AND NOT EXISTS (SELECT 1 FROM messaging_queuedenvelope q WHERE q.group_message_id = messaging_groupmessage.id)
"""
_REMEMBER = """
    INSERT INTO messaging_sentenvelope (sender_device_id, envelope_id, accepted_at)
    VALUES {values}
    ON CONFLICT (sender_device_id, envelope_id) DO NOTHING
    RETURNING sender_device_id, envelope_id
"""
# A send's attachments (19.5): those named that are complete uploads of the sender's account,
# then one grant per target device (a resend of the envelope grants nothing twice).
_ATTACHMENTS_OF_ACCOUNT = """
    SELECT id FROM messaging_attachment
    WHERE id IN ({marks}) AND account_id = %s AND completed_at IS NOT NULL
"""
_GRANT = """
    INSERT INTO messaging_attachmentgrant (attachment_id, device_id, fetched_at) VALUES {values}
    ON CONFLICT (attachment_id, device_id) DO NOTHING
"""
_QUEUE_SIZES = """
    SELECT device_id, COUNT(*) FROM messaging_queuedenvelope
    WHERE device_id IN ({marks}) GROUP BY device_id
"""


def _chunks(items: list, size: int = _CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def _remember(cursor, keys: list[tuple[str, str]], moment: datetime) -> set[tuple[str, str]]:
    """Record (sender device, envelope id) in the replay memory; return the keys that were
    new. A key already there was accepted before (within the replay window): a resend."""
    created = queue_db.datetime_param(moment)
    fresh: set[tuple[str, str]] = set()
    for chunk in _chunks(keys):
        cursor.execute(
            _REMEMBER.format(values=", ".join(["(%s, %s, %s)"] * len(chunk))),
            [v for key in chunk for v in (*key, created)],
        )
        fresh.update((row[0], row[1]) for row in cursor.fetchall())
    return fresh


def _insert(
    cursor, rows: list[tuple], moment: datetime, group_messages: dict[int, bytes]
) -> list[tuple[str, Delivery]]:
    """Insert queue rows (a resent envelope inserts nothing); return (device id, delivery)
    for each row actually inserted, with its queue position. `group_messages`: the
    ciphertexts of the group messages rows point at, by id."""
    by_key = {(r[0], r[3], r[1]): r for r in rows}
    inserted = []
    for chunk in _chunks(rows):
        cursor.execute(
            _INSERT.format(values=", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))),
            [v for r in chunk for v in r],
        )
        for seq, device_id, sender_device_id, envelope_id in cursor.fetchall():
            row = by_key[(device_id, sender_device_id, envelope_id)]
            inserted.append(
                (
                    device_id,
                    Delivery(
                        seq=seq,
                        envelope_id=envelope_id,
                        sender=row[2],
                        sender_device=sender_device_id,
                        ciphertext=row[4],
                        sent_at=moment,
                        group=None if row[6] is None else group_messages[row[6]],
                    ),
                )
            )
    inserted.sort(key=lambda pair: pair[1].seq)
    return inserted


@dataclass
class _Accounts:
    """The device lists a batch of sends is checked against, read in one statement."""

    user_of_device: dict[str, int]
    active_user_named: dict[str, int]
    devices_of_user: dict[int, dict[str, bool]]
    username_of_user: dict[int, str]

    @classmethod
    def read(cls, cursor, items: list[SendItem], groups: dict[bytes, GroupState]) -> _Accounts:
        """`groups`: the stored state of each group sent to, whose members are read."""
        found = cls({}, {}, {}, {})
        for chunk in _chunks(items):
            names = sorted({name for i in chunk for name in _accounts_named(i, groups)})
            senders = sorted({i.sender_device_id for i in chunk})
            if not names:
                names = [""]  # no account is named "": IN () is not SQL
            cursor.execute(
                _DEVICES_OF_ACCOUNTS.format(names=_marks(len(names)), senders=_marks(len(senders))),
                [*names, *senders],
            )
            for device_id, user_id, active, username, user_active in cursor.fetchall():
                found.user_of_device[device_id] = user_id
                found.devices_of_user.setdefault(user_id, {})[device_id] = bool(active)
                found.username_of_user[user_id] = username
                if user_active:
                    found.active_user_named[username] = user_id
        return found

    def devices(self, item: SendItem) -> tuple[dict[str, bool], str]:
        """Every device of the recipient and of the sender (id: whether active), and the
        sender's username; NotFound or Forbidden as the send is refused."""
        recipient = self.active_user_named.get(item.send.recipient)
        if recipient is None:
            raise NotFound(f"No account named {item.send.recipient!r}.", code="account_not_found")
        sender = self.user_of_device.get(item.sender_device_id)
        devices = {**self.devices_of_user[recipient], **self.devices_of_user.get(sender, {})}
        if sender is None or not devices.get(item.sender_device_id):
            raise Forbidden("This device was logged out.", code="device_revoked")
        return devices, self.username_of_user[sender]

    def group_devices(
        self, item: SendItem, state: GroupState | None
    ) -> tuple[dict[str, bool], str]:
        """Every device of every member's account (id: whether active), and the sender's
        username; Forbidden for a logged-out sender, NotFound unless it is a member."""
        sender = self.user_of_device.get(item.sender_device_id)
        if sender is None or not self.devices_of_user[sender].get(item.sender_device_id):
            raise Forbidden("This device was logged out.", code="device_revoked")
        username = self.username_of_user[sender]
        if state is None or username not in state.members:
            raise group_not_found()
        devices: dict[str, bool] = {}
        for member in state.members:
            user = self.active_user_named.get(member)
            if user is not None:
                devices.update(self.devices_of_user[user])
        return devices, username


def _accounts_named(item: SendItem, groups: dict[bytes, GroupState]) -> frozenset[str]:
    """The accounts whose devices a send is checked against: its recipient, or the members
    of the group it goes to (none for a group the server does not hold)."""
    if isinstance(item.send, SendRequest):
        return frozenset({item.send.recipient})
    state = groups.get(item.send.group_id)
    return state.members if state is not None else frozenset()


def _group_states(cursor, items: list[SendItem]) -> dict[bytes, GroupState]:
    """The stored state of every group these items send to, by group id."""
    wanted = {
        group_key(i.send.group_id): i.send.group_id
        for i in items
        if isinstance(i.send, GroupSendRequest)
    }
    found: dict[bytes, GroupState] = {}
    keys = sorted(wanted)
    for chunk in _chunks(keys):
        cursor.execute(_GROUP_STATES.format(marks=_marks(len(chunk))), chunk)
        for key, state in cursor.fetchall():
            found[wanted[key]] = group_state_load(state)
    return found


def _check_group_send(
    cursor,
    item: SendItem,
    accounts: _Accounts,
    groups: dict[bytes, GroupState],
    group_messages: dict[int, bytes],
    *,
    moment: datetime,
) -> list[tuple]:
    """Validate one group send (docs/protocol.md 25.9); store its message once and return
    one queue row per target that points at it."""
    send = item.send
    assert isinstance(send, GroupSendRequest)
    devices, username = accounts.group_devices(item, groups.get(send.group_id))
    if (send.sender, send.sender_device) != (username, item.sender_device_id):
        raise BadFrame(
            "'message' names another sender than this device.", data={"field": "message"}
        )
    target_check(sender_device_id=item.sender_device_id, devices=devices, targets=set(send.targets))
    if _queue_full(cursor, list(send.targets), moment=moment):
        raise QueueFull("A recipient device has too many undelivered messages; try again later.")
    if send.attachments:
        _grant(
            cursor, accounts.user_of_device[item.sender_device_id], send.attachments, send.targets
        )
    created = queue_db.datetime_param(moment)
    cursor.execute(_INSERT_GROUP_MESSAGE, [send.message, created])
    [(message_id,)] = cursor.fetchall()
    group_messages[message_id] = send.message
    return [
        (
            device_id,
            send.envelope_id,
            username,
            item.sender_device_id,
            send.keys.get(device_id),
            created,
            message_id,
        )
        for device_id in send.targets
    ]


def _check_send(cursor, item: SendItem, accounts: _Accounts, *, moment: datetime) -> list[tuple]:
    """Validate one send against the current device lists; return its queue rows."""
    send = item.send
    assert isinstance(send, SendRequest)
    devices, sender_username = accounts.devices(item)
    target_check(
        sender_device_id=item.sender_device_id,
        devices=devices,
        targets=set(send.targets),
        partial=send.partial,
    )
    if _queue_full(cursor, list(send.targets), moment=moment):
        raise QueueFull("A recipient device has too many undelivered messages; try again later.")
    if send.attachments:
        _grant(
            cursor, accounts.user_of_device[item.sender_device_id], send.attachments, send.targets
        )
    created = queue_db.datetime_param(moment)
    return [
        (
            device_id,
            send.envelope_id,
            sender_username,
            item.sender_device_id,
            ciphertext,
            created,
            None,
        )
        for device_id, ciphertext in send.targets.items()
    ]


def _grant(cursor, user_id: int, blob_ids: tuple[str, ...], device_ids: Iterable[str]) -> None:
    """Grant each target device every attachment the send names; refused (before anything is
    stored) unless each is a complete upload of the sender's account."""
    cursor.execute(
        _ATTACHMENTS_OF_ACCOUNT.format(marks=_marks(len(blob_ids))), [*blob_ids, user_id]
    )
    found = {row[0] for row in cursor.fetchall()}
    for blob_id in blob_ids:
        if blob_id not in found:
            raise AttachmentUnknown(
                f"No complete attachment {blob_id!r} of your account; upload it first.",
                data={"blob_id": blob_id},
            )
    grants = [(blob_id, device_id) for blob_id in blob_ids for device_id in device_ids]
    for chunk in _chunks(grants):
        cursor.execute(
            _GRANT.format(values=", ".join(["(%s, %s, NULL)"] * len(chunk))),
            [v for grant in chunk for v in grant],
        )


_queue_checked: dict[str, tuple[float, bool]] = {}
QUEUE_CHECK_SECONDS = 5.0


def _queue_full(cursor, device_ids: list[str], *, moment: datetime) -> bool:
    """Whether a target's queue is at PARLEY_QUEUE_LIMIT. Counting is O(queue), so each
    device is counted at most every few seconds per process: the limit is a soft bound."""
    now = moment.timestamp()
    stale = [
        d for d in device_ids if now - _queue_checked.get(d, (0.0, False))[0] >= QUEUE_CHECK_SECONDS
    ]
    if stale:
        cursor.execute(_QUEUE_SIZES.format(marks=_marks(len(stale))), stale)
        counts = dict(cursor.fetchall())
        for d in stale:
            _queue_checked[d] = (now, counts.get(d, 0) >= settings.PARLEY_QUEUE_LIMIT)
    return any(_queue_checked[d][1] for d in device_ids)


@dataclass(frozen=True)
class Committed:
    results: list[list[str] | AppError]  # per send: its target device ids, or why it was refused
    inserted: list[tuple[str, Delivery]]  # (device id, delivery) of every new row, in queue order
    # devices of `inserted` with a socket held by another server process than `process_id`
    elsewhere: set[str] = field(default_factory=set)


def envelopes_commit(
    cursor,
    *,
    sends: list[SendItem],
    acks: list[tuple[str, list[int]]],
    process_id: str = "",
    now: datetime | None = None,
) -> Committed:
    """Group commit, run in one transaction (messaging/queue_db.py's `write`): store the rows
    of every valid send and delete every acknowledged row. A resent envelope id stores nothing
    twice (idempotent): the replay memory answers it `accepted` for ENVELOPE_TTL, also after
    its rows were acked. Also tells which receiving devices have a socket held by another
    process than `process_id` (the caller's): only their doorbells need the channel layer."""
    moment = _now(now)
    results: list[list[str] | AppError] = []
    rows: list[tuple] = []
    keys = list(dict.fromkeys((i.sender_device_id, i.send.envelope_id) for i in sends))
    fresh = _remember(cursor, keys, moment) if keys else set()
    new = [i for i in sends if (i.sender_device_id, i.send.envelope_id) in fresh]
    groups = _group_states(cursor, new) if new else {}
    accounts = _Accounts.read(cursor, new, groups) if new else None
    group_messages: dict[int, bytes] = {}
    refused: dict[tuple[str, str], AppError] = {}
    for item in sends:
        key = (item.sender_device_id, item.send.envelope_id)
        if key in refused:  # the same send twice in one batch: the same answer
            results.append(refused[key])
            continue
        if key not in fresh:  # accepted before: nothing to store
            results.append(sorted(item.send.targets))
            continue
        fresh.discard(key)
        try:
            assert accounts is not None
            if isinstance(item.send, GroupSendRequest):
                rows += _check_group_send(
                    cursor, item, accounts, groups, group_messages, moment=moment
                )
            else:
                rows += _check_send(cursor, item, accounts, moment=moment)
            results.append(sorted(item.send.targets))
        except AppError as error:
            results.append(error)
            refused[key] = error
    if refused:  # refused sends are not remembered: the corrected retry keeps its id
        cursor.executemany(
            "DELETE FROM messaging_sentenvelope WHERE sender_device_id = %s AND envelope_id = %s",
            list(refused),
        )
    inserted = _insert(cursor, rows, moment, group_messages) if rows else []
    _delete_acked(cursor, acks)
    return Committed(
        results=results,
        inserted=inserted,
        elsewhere=_sockets_elsewhere(cursor, {d for d, _ in inserted}, process_id),
    )


def _delete_acked(cursor, acks: list[tuple[str, list[int]]]) -> None:
    """Delete each device's acknowledged rows, and a group message with its last row."""
    emptied: set[int] = set()
    for device_id, seqs in acks:
        for chunk in _chunks(sorted(set(seqs))):
            cursor.execute(_ACK.format(marks=_marks(len(chunk))), [device_id, *chunk])
            emptied.update(row[0] for row in cursor.fetchall() if row[0] is not None)
    for chunk in _chunks(sorted(emptied)):
        cursor.execute(_ORPHANS.format(marks=_marks(len(chunk))), chunk)


def _sockets_elsewhere(cursor, device_ids: set[str], process_id: str) -> set[str]:
    """Read in the commit's transaction: a socket that opens later reads its queue after its
    row is written, so it finds these rows there (on SQLite the two writes cannot interleave;
    on PostgreSQL a row written between this read and the commit is left to the sweeper)."""
    if not device_ids:
        return set()
    marks = ", ".join(["%s"] * len(device_ids))
    cursor.execute(
        f"SELECT DISTINCT device_id FROM {DeviceSocket._meta.db_table}"
        f" WHERE process_id <> %s AND device_id IN ({marks})",
        [process_id, *sorted(device_ids)],
    )
    return {row[0] for row in cursor.fetchall()}


def queue_drop_for_device(*, device: Device) -> int:
    """A logged-out device's queue is dropped: nobody will ever fetch it."""
    deleted, _ = QueuedEnvelope.objects.filter(device=device).delete()
    return deleted


@dataclass(frozen=True)
class Expired:
    envelopes: int  # and history blobs
    attachments: int


def queue_expire(*, now: datetime | None = None) -> Expired:
    """The expiry job: envelopes, history blobs and the replay memory older than ENVELOPE_TTL
    (a resend after that would be stored again; no client resends that late), and attachments
    past their retention or unfinished for a day."""
    cutoff = _now(now) - ENVELOPE_TTL
    deleted, _ = QueuedEnvelope.objects.filter(created_at__lt=cutoff).delete()
    # with their rows: the old ones, and those whose last row a logout dropped
    GroupMessage.objects.filter(Q(created_at__lt=cutoff) | Q(rows__isnull=True)).delete()
    blobs, _ = HistoryBlob.objects.filter(created_at__lt=cutoff).delete()
    SentEnvelope.objects.filter(accepted_at__lt=cutoff).delete()
    return Expired(envelopes=deleted + blobs, attachments=attachments_expire(now=now))


def history_store(
    *, from_device: Device, to_device_id: str, data: bytes, now: datetime | None = None
) -> HistoryBlob:
    """Keep an encrypted history bundle for one new device of the same account."""
    to_device = Device.objects.filter(
        pk=to_device_id, user_id=from_device.user_id, revoked_at__isnull=True
    ).first()
    if to_device is None or to_device.pk == from_device.pk:
        raise NotFound("No such device on your account.", code="device_not_found")
    return HistoryBlob.objects.create(
        id=secrets.token_urlsafe(16),
        from_device=from_device,
        to_device=to_device,
        data=data,
        created_at=_now(now),
    )


def history_take(*, device: Device, blob_id: str) -> bytes:
    """Hand the blob to its device once, then delete it."""
    with transaction.atomic():
        blob = HistoryBlob.objects.select_for_update().filter(pk=blob_id).first()
        if blob is None or blob.to_device_id != device.pk:
            raise NotFound("No such history bundle for this device.", code="history_not_found")
        data = bytes(blob.data)
        blob.delete()
    return data


class StateVersionConflict(AppError):
    code = "state_version_conflict"
    status = 409


class StateCompactionNeeded(AppError):
    code = "state_compaction_needed"
    status = 409


def _version_conflict(version: int, current: int) -> StateVersionConflict:
    return StateVersionConflict(
        f"The state is at version {current}, so the next write is {current + 1}, not {version};"
        " fetch, rebase and retry.",
        data={"version": current},
    )


def state_append(
    *, device: Device, version: int, kind: str, blob: bytes, now: datetime | None = None
) -> int:
    """Compare-and-swap on the account's state log: store the blob at `version` only if that
    is the current version + 1; a snapshot then drops every entry below it. After the commit
    the account's other devices get the `state.changed` doorbell. The blob is never read."""
    with transaction.atomic():
        # The account's writes queue on its row (FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE
        # transactions take the write lock), so the version read here is still current at
        # the insert: of two writes at one version, the second sees the first and is refused.
        User.objects.select_for_update().filter(pk=device.user_id).values_list("pk").get()
        head = state_head(user_id=device.user_id)
        if version != head.version + 1:
            raise _version_conflict(version, head.version)
        if kind == StateEntry.PATCH and head.version - head.snapshot_version >= STATE_MAX_PATCHES:
            raise StateCompactionNeeded(
                f"{STATE_MAX_PATCHES} patches follow the latest snapshot; write a snapshot.",
                data={"version": head.version, "max_patches": STATE_MAX_PATCHES},
            )
        try:
            with transaction.atomic():
                StateEntry.objects.create(
                    user_id=device.user_id,
                    version=version,
                    kind=kind,
                    blob=blob,
                    author_device_id=device.id,
                    created_at=_now(now),
                )
        except IntegrityError:  # the unique (account, version): the lock above never lets it
            raise _version_conflict(version, state_head(user_id=device.user_id).version) from None
        if kind == StateEntry.SNAPSHOT:
            StateEntry.objects.filter(user_id=device.user_id, version__lt=version).delete()
        events.send_on_commit(
            events.user_group(device.user_id),
            {"type": events.STATE_CHANGED, "version": version, "device_id": device.id},
        )
    return version
